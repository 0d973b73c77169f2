/**
 * WorkerPool options in two stages: what the caller passes (raw, some
 * optional) and what the pool runs with (validated, defaults filled, frozen).
 * Errors name the option, as in `options.size must be a positive integer`.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log.js';
import type { BackoffOptions } from './backoff.js';

export interface WorkerPoolOptions {
  /** Worker processes to keep running. */
  size: number;
  /** Pipelines one worker may host; 1..maxPipelinesLimit. */
  maxPipelinesPerWorker: number;
  /** Milliseconds from fork to 'initCompleted' before a worker is killed; also the wait for a 'start' acknowledgement. */
  handshakeTimeoutMs: number;
  /** Milliseconds between worker heartbeats; five missed ones mark a worker as hung and it is killed. */
  heartbeatIntervalMs: number;
  /** Milliseconds each stop step ('shutdown', then SIGTERM) may take before the next, harder one. */
  stopGraceMs: number;
  /** Worker entry script. Default: dist/src/worker/main.js (next to this module). Tests pass fixtures. */
  workerScript?: string;
  log: Logger;
  /** Milliseconds a pipeline has inside its worker to get media to target 0, else 'error'. Default 20000. */
  pipelineStartTimeoutMs?: number;
  /**
   * Milliseconds a playing pipeline may go without media progress (position
   * and origin bytes standing still) before its worker reports it as 'error'
   * ("stalled: …"). Default 5000.
   */
  stallTimeoutMs?: number;
  /** Respawn delay for workers that die during start-up (crash-loop guard). Default 250 ms doubling to 30 s. */
  respawnBackoff?: BackoffOptions;
  /** Random source for the respawn jitter, in [0, 1). Default Math.random. */
  random?: () => number;
  /** Extra environment for the workers, on top of this process's. */
  env?: Readonly<Record<string, string>>;
}

/**
 * Every GStreamer bus poller and appsink pull pins a libuv thread for the
 * whole life of its pipeline (gst_bus_timed_pop inside uv_queue_work, see
 * src/gst/native.ts). The margin keeps threads for the worker's own fs
 * and dns work and for pollers of stopped pipelines that have not popped
 * their last message yet.
 */
export const busThreadMargin = 4;
/** libuv's hard ceiling on UV_THREADPOOL_SIZE. */
export const maxThreadpoolSize = 1024;
/**
 * Threads a channel may pin at most: a relay's GStreamer source (its bus and
 * its appsink pull) and a second one tried beside it (a backup, a switch
 * back), plus a tap (bus, snapshot pull) and one forwarder. A VOD channel,
 * and a relay of an rtmp:// source copied as it is, pin none: the worker
 * publishes and reads RTMP on its event loop. The worker reserves what each
 * start needs (src/worker/threads.ts) and refuses a start beyond the pool;
 * this figure only sizes the pool for small workers.
 */
export const threadsPerChannel = 7;
/** Pipelines one worker may be asked to carry; its threads bound the GStreamer-backed ones among them. */
export const maxPipelinesLimit = 2000;

export interface ResolvedPoolOptions {
  readonly size: number;
  readonly maxPipelinesPerWorker: number;
  readonly handshakeTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly stopGraceMs: number;
  readonly workerScript: string;
  readonly log: Logger;
  readonly pipelineStartTimeoutMs: number;
  readonly stallTimeoutMs: number;
  readonly respawnBackoff: BackoffOptions;
  readonly random: () => number;
  readonly env: Readonly<Record<string, string>>;
  /** UV_THREADPOOL_SIZE given to each worker. */
  readonly threadpoolSize: number;
}

function int(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? (min === 1 ? 'a positive integer' : `an integer >= ${min}`) : `an integer from ${min} to ${max}`;
    throw new TypeError(`options.${name} must be ${range}`);
  }
  return v;
}

const defaultWorkerScript = resolve(dirname(fileURLToPath(import.meta.url)), '../worker/main.js');

export function resolvePoolOptions(raw: WorkerPoolOptions): ResolvedPoolOptions {
  const maxPipelinesPerWorker = int('maxPipelinesPerWorker', raw.maxPipelinesPerWorker, 1, maxPipelinesLimit);
  const backoff = raw.respawnBackoff ?? { baseMs: 250, capMs: 30_000 };
  int('respawnBackoff.baseMs', backoff.baseMs, 0);
  int('respawnBackoff.capMs', backoff.capMs, backoff.baseMs);
  if (raw.workerScript !== undefined && (typeof raw.workerScript !== 'string' || raw.workerScript === '')) {
    throw new TypeError('options.workerScript must be a non-empty path');
  }
  return Object.freeze({
    size: int('size', raw.size, 1),
    maxPipelinesPerWorker,
    handshakeTimeoutMs: int('handshakeTimeoutMs', raw.handshakeTimeoutMs, 1),
    heartbeatIntervalMs: int('heartbeatIntervalMs', raw.heartbeatIntervalMs, 1),
    stopGraceMs: int('stopGraceMs', raw.stopGraceMs, 1),
    workerScript: raw.workerScript ?? defaultWorkerScript,
    log: raw.log,
    pipelineStartTimeoutMs: int('pipelineStartTimeoutMs', raw.pipelineStartTimeoutMs ?? 20_000, 1),
    stallTimeoutMs: int('stallTimeoutMs', raw.stallTimeoutMs ?? 5000, 1),
    respawnBackoff: Object.freeze({ ...backoff }),
    random: raw.random ?? Math.random,
    env: Object.freeze({ ...raw.env }),
    threadpoolSize: Math.min(maxThreadpoolSize, threadsPerChannel * maxPipelinesPerWorker + busThreadMargin),
  });
}
