/**
 * What the worker reads from GStreamer's rtmp2src and rtmp2sink, in one
 * place for every pipeline that uses them (relay source, forwarder, tap).
 *
 * Part of src/gst/: imports native.ts only.
 */
import { NativeError, type GstElement } from './native.js';

/** The sink's out-bytes-total (RTMP framing included), or null when it has no stats. */
export function outBytes(sink: GstElement): number | null {
  // The binding renders the boxed GstStructure as its string form.
  const stats = sink.get('stats');
  if (typeof stats !== 'string') return null;
  const m = /out-bytes-total=\(guint64\)(\d+)/.exec(stats);
  return m?.[1] !== undefined ? Number(m[1]) : null;
}

/**
 * Sets an rtmp:// URL as `location` and checks GStreamer parsed it:
 * rtmp2src/rtmp2sink keep a blank location (host null) when the URL does not
 * parse, and would then connect to their defaults.
 */
export function setRtmpLocation(el: GstElement, url: string, role: string): void {
  el.set('location', url);
  if (typeof el.get('host') !== 'string' || typeof el.get('stream') !== 'string') {
    throw new NativeError('PROPERTY_REJECTED', `${role}: GStreamer could not parse the RTMP URL`);
  }
}
