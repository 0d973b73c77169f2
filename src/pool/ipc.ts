/**
 * The IPC protocol between the supervisor (src/pool) and a worker process
 * (src/worker). This file is the only code both sides share. Messages travel
 * over Node's fork() channel as JSON; each direction is a closed union,
 * validated at the receiving boundary by the parse functions below.
 */

/** What a pipeline reads. Paths and URLs arrive already validated and confined. */
export type SourceSpec =
  | {
      kind: 'file';
      /** Absolute path inside the media root. */
      path: string;
      loop: boolean;
      hasVideo: boolean;
      hasAudio: boolean;
    }
  | {
      kind: 'rtmp';
      url: string;
      connectTimeoutMs: number;
    };

/** Everything a worker needs to run one channel's pull/push pipeline. */
export interface PipelineSpec {
  channelId: string;
  source: SourceSpec;
  /** rtmp:// or rtmps:// URLs. Index 0 is the origin. */
  targets: string[];
}

/** Observed state of one pipeline inside a worker. */
export type PipelineState = 'starting' | 'playing' | 'error' | 'eos' | 'stopped';

export interface PipelineStats {
  channelId: string;
  state: PipelineState;
  /** Stream position in seconds, -1 while unknown. Rises across loops. */
  positionSeconds: number;
}

/** Supervisor → worker. */
export type ParentCommand =
  | { type: 'init'; workerId: string }
  | { type: 'start'; spec: PipelineSpec }
  | { type: 'stop'; channelId: string }
  | { type: 'shutdown' };

/** Worker → supervisor. */
export type ChildCommand =
  | { type: 'initCompleted'; pid: number; gstVersion: string }
  | { type: 'initFailed'; error: string }
  | { type: 'pipeline'; channelId: string; state: PipelineState; error?: string }
  | { type: 'heartbeat'; rssBytes: number; pipelines: PipelineStats[] };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const pipelineStates: ReadonlySet<string> = new Set<PipelineState>([
  'starting',
  'playing',
  'error',
  'eos',
  'stopped',
]);

function isPipelineState(v: unknown): v is PipelineState {
  return typeof v === 'string' && pipelineStates.has(v);
}

function isSourceSpec(v: unknown): v is SourceSpec {
  if (!isRecord(v)) return false;
  if (v['kind'] === 'file') {
    return (
      typeof v['path'] === 'string' &&
      typeof v['loop'] === 'boolean' &&
      typeof v['hasVideo'] === 'boolean' &&
      typeof v['hasAudio'] === 'boolean'
    );
  }
  if (v['kind'] === 'rtmp') {
    return typeof v['url'] === 'string' && typeof v['connectTimeoutMs'] === 'number';
  }
  return false;
}

function isPipelineSpec(v: unknown): v is PipelineSpec {
  return (
    isRecord(v) &&
    typeof v['channelId'] === 'string' &&
    isSourceSpec(v['source']) &&
    Array.isArray(v['targets']) &&
    v['targets'].length > 0 &&
    v['targets'].every((t) => typeof t === 'string')
  );
}

/** Validates a message received by a worker; null when it is not a ParentCommand. */
export function parseParentCommand(v: unknown): ParentCommand | null {
  if (!isRecord(v)) return null;
  switch (v['type']) {
    case 'init':
      return typeof v['workerId'] === 'string' ? { type: 'init', workerId: v['workerId'] } : null;
    case 'start':
      return isPipelineSpec(v['spec']) ? { type: 'start', spec: v['spec'] } : null;
    case 'stop':
      return typeof v['channelId'] === 'string' ? { type: 'stop', channelId: v['channelId'] } : null;
    case 'shutdown':
      return { type: 'shutdown' };
    default:
      return null;
  }
}

function isPipelineStats(v: unknown): v is PipelineStats {
  return (
    isRecord(v) &&
    typeof v['channelId'] === 'string' &&
    isPipelineState(v['state']) &&
    typeof v['positionSeconds'] === 'number'
  );
}

/** Validates a message received by the supervisor; null when it is not a ChildCommand. */
export function parseChildCommand(v: unknown): ChildCommand | null {
  if (!isRecord(v)) return null;
  switch (v['type']) {
    case 'initCompleted':
      return typeof v['pid'] === 'number' && typeof v['gstVersion'] === 'string'
        ? { type: 'initCompleted', pid: v['pid'], gstVersion: v['gstVersion'] }
        : null;
    case 'initFailed':
      return typeof v['error'] === 'string' ? { type: 'initFailed', error: v['error'] } : null;
    case 'pipeline': {
      if (typeof v['channelId'] !== 'string' || !isPipelineState(v['state'])) return null;
      const msg: ChildCommand = { type: 'pipeline', channelId: v['channelId'], state: v['state'] };
      if (typeof v['error'] === 'string') msg.error = v['error'];
      return msg;
    }
    case 'heartbeat':
      return typeof v['rssBytes'] === 'number' &&
        Array.isArray(v['pipelines']) &&
        v['pipelines'].every(isPipelineStats)
        ? { type: 'heartbeat', rssBytes: v['rssBytes'], pipelines: v['pipelines'] }
        : null;
    default:
      return null;
  }
}
