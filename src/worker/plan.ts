/**
 * Turns a PipelineSpec into a plan: launch text rendered from templates with
 * integers only, plus the user values (paths, URLs) as property assignments
 * that the pipeline applies after parsing. Pure, so it is testable without
 * GStreamer.
 */
import { isAbsolute } from 'node:path';
import type { PipelineSpec } from '../pool/ipc.js';
import { render, type TemplateName, type Templates } from './templates.js';

/** One property write applied after parsing; `role` names it in error messages. */
export interface PropertyAssignment {
  readonly element: string;
  readonly property: string;
  readonly value: string | number;
  readonly role: string;
  /** How to confirm GStreamer took the value (rtmp2 elements silently fall back on a bad URL). */
  readonly verify: 'readback' | 'rtmp-url' | 'none';
}

export interface PipelinePlan {
  readonly source: TemplateName;
  readonly launch: string;
  readonly properties: readonly PropertyAssignment[];
  /** The worker muxes FLV itself and pushes it into the appsrc `mux` (vod-feeder.ts). */
  readonly vod: boolean;
  /** A live source: its end is a failure to retry, not the end of the channel. */
  readonly live: boolean;
  /** One rtmp2sink per target, by target index; index 0 is the origin. */
  readonly sinks: readonly string[];
}

/** Each target costs a queue, a sink and a socket; more than this is a mistake upstream. */
export const maxTargets = 16;

const rtmpUrl = /^rtmps?:\/\/[^/\s]+\/\S+/;

export class PlanError extends Error {
  override readonly name = 'PlanError';
}

function sourceTemplate(spec: PipelineSpec): TemplateName {
  return spec.source.kind === 'rtmp' ? 'source-rtmp-av' : 'source-vod';
}

export function planPipeline(spec: PipelineSpec, templates: Templates): PipelinePlan {
  if (spec.targets.length === 0) throw new PlanError('a pipeline needs at least one target');
  if (spec.targets.length > maxTargets) throw new PlanError(`at most ${maxTargets} targets per pipeline, got ${spec.targets.length}`);
  spec.targets.forEach((url, i) => {
    if (!rtmpUrl.test(url)) throw new PlanError(`target ${i} is not an rtmp:// or rtmps:// URL with a path`);
  });

  const source = sourceTemplate(spec);
  const properties: PropertyAssignment[] = [];
  if (spec.source.kind === 'vod') {
    // The paths never reach GStreamer: the worker reads the files itself.
    if (spec.source.items.length === 0) throw new PlanError('a VOD source needs at least one item');
    if (spec.source.items.some((i) => !isAbsolute(i.path))) throw new PlanError('the source path must be absolute');
  } else {
    if (!rtmpUrl.test(spec.source.url)) throw new PlanError('the source is not an rtmp:// or rtmps:// URL with a path');
    properties.push({ element: 'src', property: 'location', value: spec.source.url, role: 'source', verify: 'rtmp-url' });
    // rtmp2src's timeout is whole seconds; round up so a short timeout never becomes 0 (= none).
    const seconds = Math.max(1, Math.ceil(spec.source.connectTimeoutMs / 1000));
    properties.push({ element: 'src', property: 'timeout', value: seconds, role: 'source', verify: 'none' });
  }

  const sinks: string[] = [];
  const parts = [render(templates[source])];
  // One target (the common case) links `mux` straight to its sink: a tee and
  // a queue would only add a thread and per-buffer hand-offs (pipelines/target-only.gst).
  const single = spec.targets.length === 1;
  if (!single) parts.push(render(templates['fanout']));
  spec.targets.forEach((url, index) => {
    parts.push(render(templates[single ? 'target-only' : index === 0 ? 'target-origin' : 'target-extra'], { index }));
    const sink = `sink${index}`;
    sinks.push(sink);
    properties.push({ element: sink, property: 'location', value: url, role: `target ${index}`, verify: 'rtmp-url' });
  });

  return {
    source,
    launch: parts.join(' '),
    properties,
    vod: spec.source.kind === 'vod',
    live: spec.source.kind === 'rtmp',
    sinks,
  };
}
