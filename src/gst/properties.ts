/**
 * Writes a plan's user values (paths, URLs, timeouts) into a parsed
 * pipeline, for the channel's output and a relay's source pipelines alike:
 * the one way user text reaches GStreamer (see src/worker/plan.ts, which
 * builds the assignments).
 *
 * Part of src/gst/: imports native.ts and rtmp2.ts only.
 */
import { NativeError, type Pipeline } from './native.js';
import { setRtmpLocation } from './rtmp2.js';

/** One property write applied after parsing; `role` names it in error messages. */
export interface PropertyAssignment {
  readonly element: string;
  readonly property: string;
  readonly value: string | number;
  readonly role: string;
  /** How to confirm GStreamer took the value (rtmp2 elements silently fall back on a bad URL). */
  readonly verify: 'readback' | 'rtmp-url' | 'none';
}

/** Throws NativeError (PROPERTY_REJECTED, NO_SUCH_ELEMENT) naming the role when GStreamer does not take a value. */
export function applyProperties(pipeline: Pipeline, properties: readonly PropertyAssignment[]): void {
  for (const p of properties) {
    const el = pipeline.element(p.element);
    if (p.verify === 'rtmp-url' && typeof p.value === 'string') {
      setRtmpLocation(el, p.value, p.role);
      continue;
    }
    el.set(p.property, p.value);
    if (p.verify === 'readback' && el.get(p.property) !== p.value) {
      throw new NativeError('PROPERTY_REJECTED', `${p.role}: GStreamer did not accept the ${p.property}`);
    }
  }
}
