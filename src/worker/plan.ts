/**
 * Turns a PipelineSpec into a plan: launch text rendered from templates with
 * integers only, plus the user values (paths, URLs) as property assignments
 * that the pipeline applies after parsing. Pure, so it is testable without
 * GStreamer.
 */
import { isAbsolute } from 'node:path';
import type { LiveProtocol, LiveSource, PipelineSpec } from '../pool/pipeline-spec.js';
import type { PropertyAssignment } from '../gst/properties.js';
import { render, type TemplateName, type Templates } from '../gst/templates.js';

/** A live source's own pipeline (relay-source.ts): the source template ending in an appsink. */
export interface SourcePlan {
  readonly source: TemplateName;
  readonly launch: string;
  readonly properties: readonly PropertyAssignment[];
}

/**
 * The channel's output: FLV published to target 0 by the worker itself
 * (rtmp-output.ts), muxed from the files (VOD) or relayed from the live
 * source's pipeline, which is planned apart (`relay`) so that it can be
 * replaced while the output keeps its publish session.
 */
export interface PipelinePlan {
  /** What feeds the output, for logs: 'vod' or the live source's template. */
  readonly source: TemplateName | 'vod';
  /** The worker muxes FLV itself from the files (vod-feeder.ts). */
  readonly vod: boolean;
  /** A live source: its end is a failure to retry, not the end of the channel. */
  readonly live: boolean;
  /** The live source's pipeline; null for VOD. */
  readonly relay: SourcePlan | null;
  /** Target 0, the origin, which the worker publishes to (other targets are forwarders). */
  readonly target: string;
}

/** Each target costs a queue, a sink and a socket; more than this is a mistake upstream. */
export const maxTargets = 16;

const srtUrl = /^srt:\/\/[^/?#\s]+:\d+\/?(\?\S*)?$/;
const rtmpUrl = /^rtmps?:\/\/[^/\s]+\/\S+/;

export class PlanError extends Error {
  override readonly name = 'PlanError';
}

function sourceTemplate(src: LiveSource): TemplateName {
  switch (src.protocol) {
    case 'rtmp':
      return 'source-rtmp-av';
    case 'rtsp':
      return src.rtspTransport === 'udp' ? 'source-rtsp-udp' : 'source-rtsp-tcp';
    case 'hls':
      return 'source-hls';
    case 'httpflv':
      return 'source-httpflv';
    case 'srt':
      return 'source-srt';
  }
}

/** A live source's URL rule per protocol (urls.ts checked it fully; this is the worker's own guard). */
const liveUrl: Readonly<Record<LiveProtocol, RegExp>> = {
  rtmp: rtmpUrl,
  rtsp: /^rtsps?:\/\/[^/\s]+/,
  hls: /^https?:\/\/[^/\s]+\/\S*\.m3u8(\?\S*)?$/,
  httpflv: /^https?:\/\/[^/\s]+\/\S*/,
  srt: /^srt:\/\/[^/\s]+/,
};

/** The live source's URL and connect timeout as properties of `src`, in each element's own unit. */
function liveProperties(src: LiveSource): PropertyAssignment[] {
  const ms = src.connectTimeoutMs;
  // Whole seconds round up so a short timeout never becomes 0 (= none).
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  const prop = (property: string, value: string | number, verify: PropertyAssignment['verify']): PropertyAssignment => ({ element: 'src', property, value, role: 'source', verify });
  switch (src.protocol) {
    case 'rtmp':
      return [prop('location', src.url, 'rtmp-url'), prop('timeout', seconds, 'none')];
    case 'rtsp':
      return [prop('location', src.url, 'readback'), prop('tcp-timeout', ms * 1000, 'none'), prop('timeout', ms * 1000, 'none')];
    case 'hls':
      return [prop('uri', src.url, 'readback')];
    case 'httpflv':
      return [prop('location', src.url, 'readback'), prop('timeout', seconds, 'none')];
    case 'srt':
      return [prop('uri', src.url, 'none'), prop('poll-timeout', ms, 'none')];
  }
}

/**
 * A live source's pipeline: its template, then the appsink that hands its
 * FLV to the worker. `transcode`: decode whatever comes and encode H.264 +
 * AAC (live-decode-*.gst, live-encode.gst) instead of remuxing.
 */
export function planLiveSource(src: LiveSource, templates: Templates, transcode: boolean): SourcePlan {
  if (!liveUrl[src.protocol].test(src.url)) throw new PlanError(`the source is not a ${src.protocol} URL`);
  const out = render(templates['relay-out']);
  if (!transcode) {
    const source = sourceTemplate(src);
    return { source, launch: `${render(templates[source])} ${out}`, properties: liveProperties(src) };
  }
  // rtmp2src has one output, which decodebin splits; every other scheme goes
  // to uridecodebin, which picks its source element and can only be given the URL.
  const head: TemplateName = src.protocol === 'rtmp' ? 'live-decode-rtmp' : 'live-decode-uri';
  const properties = head === 'live-decode-rtmp' ? liveProperties(src) : [{ element: 'dec', property: 'uri', value: decodeUri(src), role: 'source', verify: 'readback' as const }];
  return { source: head, launch: `${render(templates[head])} ${render(templates['live-encode'])} ${out}`, properties };
}

/**
 * The URI uridecodebin gets. RTSP's transport rides on the scheme, which
 * rtspsrc reads: rtspt:// is TCP only, rtspu:// UDP only (rtsps → rtspst,
 * rtspsu). Only the scheme changes; the rest is the URL as given.
 */
function decodeUri(src: LiveSource): string {
  if (src.protocol !== 'rtsp') return src.url;
  return src.url.replace(/^rtsp(s?):\/\//i, (_m, tls: string) => `rtsp${tls}${src.rtspTransport === 'udp' ? 'u' : 't'}://`);
}

export function planPipeline(spec: PipelineSpec, templates: Templates): PipelinePlan {
  if (spec.targets.length === 0) throw new PlanError('a pipeline needs at least one target');
  if (spec.targets.length > maxTargets) throw new PlanError(`at most ${maxTargets} targets per pipeline, got ${spec.targets.length}`);
  spec.targets.forEach((url, i) => {
    // The origin is RTMP; extra targets may be srt://host:port too (srt-session.ts), checked in full by media/urls.ts.
    if (!rtmpUrl.test(url) && !(i > 0 && srtUrl.test(url))) throw new PlanError(`target ${i} is not an rtmp:// or rtmps:// URL with a path${i > 0 ? ', nor srt://host:port' : ''}`);
  });

  let relay: SourcePlan | null = null;
  if (spec.source.kind === 'vod') {
    // The paths never reach GStreamer: the worker reads the files itself.
    if (spec.source.items.length === 0) throw new PlanError('a VOD source needs at least one item');
    // A missing item has no path: the slate plays in its place (host.ts).
    if (spec.source.items.some((i) => i.missing !== true && !isAbsolute(i.path))) throw new PlanError('the source path must be absolute');
  } else {
    relay = planLiveSource(spec.source, templates, spec.source.transcode === 'always');
  }

  return {
    source: relay?.source ?? 'vod',
    vod: spec.source.kind === 'vod',
    live: spec.source.kind === 'live',
    relay,
    target: spec.targets[0] ?? '',
  };
}
