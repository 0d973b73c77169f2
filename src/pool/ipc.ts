/**
 * The IPC protocol between the supervisor (src/pool) and a worker process
 * (src/worker): one closed union per direction, named by where it goes,
 * `ToWorker` and `FromWorker`. Messages travel over Node's fork() channel as
 * JSON and are validated at the receiving boundary through one parser per
 * message type; the tables below are typed so that a message cannot be added
 * to a union without its parser. What a pipeline is (the spec, states,
 * stats, events) lives in pipeline-spec.ts.
 *
 * Imports only pipeline-spec.ts and playout-spec.ts. The worker's router is src/worker/main.ts,
 * the supervisor's is src/pool/worker-handle.ts; each is one switch.
 */
import {
  isLiveSource,
  isPipelineSpec,
  isPipelineState,
  isPipelineStats,
  isPositiveInt,
  isProgrammeSpec,
  isRecord,
  isSourceEvent,
  isTapEvent,
  isVodItems,
  type LiveSource,
  type PipelineSpec,
  type PipelineState,
  type PipelineStats,
  type ProgrammeSpec,
  type SourceEvent,
  type TapEvent,
  type VodItem,
} from './pipeline-spec.js';
import { isPlayoutCommand, isPlayoutEvent, type PlayoutCommand, type PlayoutEvent } from './playout-spec.js';

/** What a worker is told at its handshake; the supervisor owns these numbers. */
export interface WorkerInit {
  workerId: string;
  /** How often the worker reports, milliseconds. */
  heartbeatIntervalMs: number;
  /** Pipelines this worker may host; it refuses more (its bus threads are sized for this). */
  maxPipelines: number;
  /** A pipeline that has not delivered media to its first target by then is failed, milliseconds. */
  startTimeoutMs: number;
  /** A playing pipeline whose position or origin bytes have not advanced for this long is failed as stalled, milliseconds. */
  stallTimeoutMs: number;
}

/** Supervisor → worker. */
export type ToWorker =
  | ({ type: 'init' } & WorkerInit)
  | { type: 'start'; spec: PipelineSpec }
  | { type: 'stop'; channelId: string }
  /** A running VOD channel's new playlist; it takes effect at the next item boundary. */
  | { type: 'playlist'; channelId: string; items: VodItem[]; loop: boolean; programme?: ProgrammeSpec }
  /**
   * A running relay's next source. `replace`: in place of the active one (a
   * reconnect, a failover). `candidate`: beside the active one, which it
   * replaces at a keyframe once it has played healthily (a switch-back);
   * with no active source it is a replace.
   */
  | { type: 'source'; channelId: string; source: LiveSource; mode: 'replace' | 'candidate' }
  /** A running VOD channel moves to another item at its next clean cut; answered by a 'playout' event with the same requestId. */
  | { type: 'playout'; channelId: string; requestId: number; command: PlayoutCommand }
  /**
   * Cluster mode: every pipeline of this worker must be stopped by `untilMs` (wall
   * clock, ms since the epoch) unless a later fence arrives first. The supervisor
   * sends one after each successful lease renewal. Wall clock rather than a relative
   * TTL: supervisor and worker share the host's clock, and a TTL would be stretched
   * by any delay between computing and delivering it (a frozen supervisor).
   */
  | { type: 'fence'; untilMs: number }
  | { type: 'shutdown' };

/** Worker → supervisor. */
export type FromWorker =
  | {
      type: 'initCompleted';
      pid: number;
      gstVersion: string;
      /** The libuv threadpool size the worker really got (bus polling holds one thread per pipeline). */
      threadpoolSize: number;
    }
  | { type: 'initFailed'; error: string }
  | {
      type: 'pipeline';
      channelId: string;
      state: PipelineState;
      error?: string;
      /** On terminal states (error, eos, stopped): the pipeline's final numbers, so none are lost between heartbeats. */
      stats?: PipelineStats;
    }
  | { type: 'tap'; channelId: string; event: TapEvent }
  | { type: 'source'; channelId: string; event: SourceEvent }
  /** A VOD channel's item went on air, or a playout command was answered. */
  | { type: 'playout'; channelId: string; event: PlayoutEvent }
  | {
      type: 'heartbeat';
      rssBytes: number;
      /** The frame duration the stutter tolerance (two frames) assumes, seconds; the worker does not decode, so it cannot know the real one. */
      frameDurationSeconds: number;
      pipelines: PipelineStats[];
    };

/** One parser per message type; each gets a record whose `type` is already K. */
type Parsers<M extends { type: string }> = { readonly [K in M['type']]: (v: Record<string, unknown>) => Extract<M, { type: K }> | null };

const toWorkerParsers: Parsers<ToWorker> = {
  init: (v) =>
    typeof v['workerId'] === 'string' &&
    isPositiveInt(v['heartbeatIntervalMs']) &&
    isPositiveInt(v['maxPipelines']) &&
    isPositiveInt(v['startTimeoutMs']) &&
    isPositiveInt(v['stallTimeoutMs'])
      ? {
          type: 'init',
          workerId: v['workerId'],
          heartbeatIntervalMs: v['heartbeatIntervalMs'],
          maxPipelines: v['maxPipelines'],
          startTimeoutMs: v['startTimeoutMs'],
          stallTimeoutMs: v['stallTimeoutMs'],
        }
      : null,
  start: (v) => (isPipelineSpec(v['spec']) ? { type: 'start', spec: v['spec'] } : null),
  stop: (v) => (typeof v['channelId'] === 'string' ? { type: 'stop', channelId: v['channelId'] } : null),
  playlist: (v) =>
    typeof v['channelId'] === 'string' && isVodItems(v['items']) && typeof v['loop'] === 'boolean' && (v['programme'] === undefined || isProgrammeSpec(v['programme']))
      ? { type: 'playlist', channelId: v['channelId'], items: v['items'], loop: v['loop'], ...(v['programme'] === undefined ? {} : { programme: v['programme'] }) }
      : null,
  source: (v) =>
    typeof v['channelId'] === 'string' && isLiveSource(v['source']) && (v['mode'] === 'replace' || v['mode'] === 'candidate')
      ? { type: 'source', channelId: v['channelId'], source: v['source'], mode: v['mode'] }
      : null,
  playout: (v) =>
    typeof v['channelId'] === 'string' && typeof v['requestId'] === 'number' && Number.isSafeInteger(v['requestId']) && isPlayoutCommand(v['command'])
      ? { type: 'playout', channelId: v['channelId'], requestId: v['requestId'], command: v['command'] }
      : null,
  fence: (v) => (typeof v['untilMs'] === 'number' && Number.isFinite(v['untilMs']) ? { type: 'fence', untilMs: v['untilMs'] } : null),
  shutdown: () => ({ type: 'shutdown' }),
};

const fromWorkerParsers: Parsers<FromWorker> = {
  initCompleted: (v) =>
    isPositiveInt(v['pid']) && typeof v['gstVersion'] === 'string' && isPositiveInt(v['threadpoolSize'])
      ? { type: 'initCompleted', pid: v['pid'], gstVersion: v['gstVersion'], threadpoolSize: v['threadpoolSize'] }
      : null,
  initFailed: (v) => (typeof v['error'] === 'string' ? { type: 'initFailed', error: v['error'] } : null),
  pipeline: (v) => {
    if (typeof v['channelId'] !== 'string' || !isPipelineState(v['state'])) return null;
    const msg: Extract<FromWorker, { type: 'pipeline' }> = { type: 'pipeline', channelId: v['channelId'], state: v['state'] };
    if (typeof v['error'] === 'string') msg.error = v['error'];
    if (v['stats'] !== undefined) {
      if (!isPipelineStats(v['stats'])) return null;
      msg.stats = v['stats'];
    }
    return msg;
  },
  tap: (v) => (typeof v['channelId'] === 'string' && isTapEvent(v['event']) ? { type: 'tap', channelId: v['channelId'], event: v['event'] } : null),
  source: (v) => (typeof v['channelId'] === 'string' && isSourceEvent(v['event']) ? { type: 'source', channelId: v['channelId'], event: v['event'] } : null),
  playout: (v) => (typeof v['channelId'] === 'string' && isPlayoutEvent(v['event']) ? { type: 'playout', channelId: v['channelId'], event: v['event'] } : null),
  heartbeat: (v) =>
    typeof v['rssBytes'] === 'number' &&
    typeof v['frameDurationSeconds'] === 'number' &&
    v['frameDurationSeconds'] > 0 &&
    Array.isArray(v['pipelines']) &&
    v['pipelines'].every(isPipelineStats)
      ? { type: 'heartbeat', rssBytes: v['rssBytes'], frameDurationSeconds: v['frameDurationSeconds'], pipelines: v['pipelines'] }
      : null,
};

function parseWith<M extends { type: string }>(parsers: Parsers<M>, v: unknown): M | null {
  if (!isRecord(v)) return null;
  const type = v['type'];
  if (typeof type !== 'string' || !Object.hasOwn(parsers, type)) return null;
  // The table is keyed by M['type'], so the parser found returns an M.
  const parse = parsers[type as M['type']] as (v: Record<string, unknown>) => M | null;
  return parse(v);
}

/** Validates a message received by a worker; null when it is not a ToWorker. */
export function parseToWorker(v: unknown): ToWorker | null {
  return parseWith(toWorkerParsers, v);
}

/** Validates a message received by the supervisor; null when it is not a FromWorker. */
export function parseFromWorker(v: unknown): FromWorker | null {
  return parseWith(fromWorkerParsers, v);
}
