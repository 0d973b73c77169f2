/**
 * One worker child process, seen from the supervisor, as an explicit state
 * machine:
 *
 *   spawning ──initCompleted──▶ ready ──stop()──▶ stopping ──exit──▶ exited
 *      │  └──initFailed / handshake timeout──▶ stopping (SIGKILL)     ▲
 *      └──────────────── exit (any state) ────────────────────────────┘
 *
 * `#to` is the only place the state changes; an illegal move throws. A worker
 * that fails its handshake is killed at once and never becomes ready, so it
 * is never pooled. Stopping is 'shutdown' → SIGTERM after stopGraceMs →
 * SIGKILL after another stopGraceMs. A ready worker that stops sending
 * heartbeats (blocked main thread) is killed too.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { VliveError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseFromWorker, type FromWorker, type ToWorker, type WorkerInit } from './ipc.js';
import type { PipelineStats } from './pipeline-spec.js';
import { busThreadMargin } from './options.js';

/**
 * V8 flags of a worker. A 1 MiB young generation: every tag's media bytes
 * live outside V8's heap, in Buffers that die within ~100 ms, and they are
 * freed only when a scavenge finds their small JS objects dead. With V8's
 * default (up to 16 MiB per semi-space) the dead bytes piled up between
 * scavenges: a process with 100 channels held 58-76 MiB PSS, against 34-39
 * MiB with 1 MiB, for the same CPU (bench/README.md).
 */
export const workerExecArgv = ['--max-semi-space-size=1'];

export type WorkerState = 'spawning' | 'ready' | 'stopping' | 'exited';

const legal: Readonly<Record<WorkerState, readonly WorkerState[]>> = {
  spawning: ['ready', 'stopping', 'exited'],
  ready: ['stopping', 'exited'],
  stopping: ['exited'],
  exited: [],
};

export interface WorkerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Person-readable: why it ended, including what the supervisor did to it. */
  readonly reason: string;
  /** True when it never became ready (died or was killed during the handshake). */
  readonly duringStart: boolean;
  /** True when the supervisor asked it to stop. */
  readonly requested: boolean;
}

export interface WorkerHandleOptions {
  readonly id: string;
  /** Path of the worker's entry script. */
  readonly script: string;
  /** The child's complete environment. */
  readonly env: NodeJS.ProcessEnv;
  /** Sent with 'init'; workerId comes from `id`. */
  readonly init: Omit<WorkerInit, 'workerId'>;
  /** Milliseconds between fork and 'initCompleted' before the child is killed. */
  readonly handshakeTimeoutMs: number;
  /** Milliseconds each of the 'shutdown' and SIGTERM steps may take before the next one. */
  readonly stopGraceMs: number;
  readonly log: Logger;
}

/** A FromWorker message of one type. */
type Msg<K extends FromWorker['type']> = Extract<FromWorker, { type: K }>;

export interface WorkerHandleEvents {
  /** A pipeline's state changed (after the handshake). */
  pipeline: [Msg<'pipeline'>];
  /** A channel's tap reported. */
  tap: [Msg<'tap'>];
  /** A relay's live source went down, came back, or a candidate failed. */
  source: [Msg<'source'>];
  /** A VOD channel's item went on air, or a playout command was answered. */
  playout: [Msg<'playout'>];
  /** The periodic report; the handle has already kept its snapshot. */
  heartbeat: [Msg<'heartbeat'>];
  state: [WorkerState];
  exit: [WorkerExit];
}

/** Missed heartbeats tolerated before a ready worker counts as hung. */
const heartbeatMissLimit = 5;

export class WorkerHandle extends EventEmitter<WorkerHandleEvents> {
  readonly id: string;
  readonly #opts: WorkerHandleOptions;
  #state: WorkerState = 'spawning';
  #child: ChildProcess | null = null;
  #pid: number | null = null;
  #gstVersion: string | null = null;
  #rssBytes = 0;
  #stats: readonly PipelineStats[] = [];
  #lastHeartbeatAt = 0;
  #watchdog: NodeJS.Timeout | null = null;
  #stopTimers: NodeJS.Timeout[] = [];
  /** Why the supervisor is ending this worker, if it is. */
  #endReason: string | null = null;
  #requested = false;
  #wasReady = false;
  readonly #exited: Promise<WorkerExit>;
  #resolveExited!: (e: WorkerExit) => void;

  constructor(opts: WorkerHandleOptions) {
    super();
    this.id = opts.id;
    this.#opts = opts;
    this.#exited = new Promise((r) => (this.#resolveExited = r));
  }

  get state(): WorkerState {
    return this.#state;
  }
  get pid(): number | null {
    return this.#pid;
  }
  get gstVersion(): string | null {
    return this.#gstVersion;
  }
  get rssBytes(): number {
    return this.#rssBytes;
  }
  /** Per-pipeline state and position from the last heartbeat. */
  get stats(): readonly PipelineStats[] {
    return this.#stats;
  }
  /** Resolves once the process has exited, however it ended. */
  get exited(): Promise<WorkerExit> {
    return this.#exited;
  }

  #to(next: WorkerState): void {
    const from = this.#state;
    if (!legal[from].includes(next)) throw new VliveError('INVALID_STATE', `worker ${this.id}: illegal move ${from} -> ${next}`);
    this.#state = next;
    this.#opts.log.info('worker state', { worker: this.id, pid: this.#pid, from, to: next });
    this.emit('state', next);
  }

  /**
   * Forks the child and runs the handshake. Resolves when it is ready;
   * rejects (after killing it) when the handshake fails or times out, or
   * when the child exits first.
   */
  start(): Promise<{ pid: number; gstVersion: string }> {
    if (this.#child !== null) throw new Error(`worker ${this.id} was already started`);
    const child = fork(this.#opts.script, [], {
      env: this.#opts.env,
      // Not the supervisor's flags: under `node --test` they would make the child a test runner.
      execArgv: workerExecArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
      // Its own process group, so that a Ctrl-C meant for the service does not
      // reach the workers before the service has stopped their pipelines.
      // They still die with the service: the IPC channel closes.
      detached: true,
    });
    this.#child = child;
    this.#pid = child.pid ?? null;

    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err === null) resolve({ pid: this.#pid ?? 0, gstVersion: this.#gstVersion ?? 'unknown' });
        else reject(err);
      };
      const failStart = (reason: string): void => {
        this.#opts.log.warn('worker handshake failed', { worker: this.id, pid: this.#pid, reason });
        this.#kill(reason);
        settle(new Error(`worker ${this.id}: ${reason}`));
      };
      const timer = setTimeout(
        () => failStart(`no handshake within ${this.#opts.handshakeTimeoutMs} ms`),
        this.#opts.handshakeTimeoutMs,
      );

      child.on('message', (raw: unknown) => {
        const msg = parseFromWorker(raw);
        if (msg === null) {
          this.#opts.log.warn('malformed message from worker ignored', { worker: this.id, type: messageType(raw) });
          return;
        }
        switch (msg.type) {
          case 'initCompleted':
            if (this.#state !== 'spawning') return;
            // The margin is for fs and dns; below it no GStreamer pipeline could ever start.
            if (msg.threadpoolSize <= busThreadMargin) {
              failStart(`threadpool of ${msg.threadpoolSize} leaves no thread for GStreamer pipelines`);
              return;
            }
            this.#pid = msg.pid;
            this.#gstVersion = msg.gstVersion;
            this.#wasReady = true;
            this.#lastHeartbeatAt = Date.now();
            this.#to('ready');
            this.#startWatchdog();
            settle(null);
            return;
          case 'initFailed':
            if (this.#state === 'spawning') failStart(`init failed: ${msg.error}`);
            return;
          case 'heartbeat':
            this.#lastHeartbeatAt = Date.now();
            this.#rssBytes = msg.rssBytes;
            this.#stats = msg.pipelines;
            this.emit('heartbeat', msg);
            return;
          case 'pipeline':
            this.emit('pipeline', msg);
            return;
          case 'tap':
            this.emit('tap', msg);
            return;
          case 'source':
            this.emit('source', msg);
            return;
          case 'playout':
            this.emit('playout', msg);
            return;
          default:
            msg satisfies never;
        }
      });
      const onGone = (code: number | null, signal: NodeJS.Signals | null, spawnError?: string): void => {
        if (this.#state === 'exited') return;
        clearTimeout(timer);
        this.#clearTimers();
        const how = spawnError !== undefined ? `could not be spawned: ${spawnError}` : signal !== null ? `killed by ${signal}` : `exited with code ${code ?? '?'}`;
        const reason = this.#endReason !== null ? `${this.#endReason} (${how})` : how;
        const exit: WorkerExit = { code, signal, reason, duringStart: !this.#wasReady, requested: this.#requested };
        this.#to('exited');
        settle(new Error(`worker ${this.id} ${reason} before its handshake`));
        this.#resolveExited(exit);
        this.emit('exit', exit);
      };
      child.on('error', (err) => {
        // Failed kill()/send() land here too; only a child that never got a
        // pid (spawn failure) will not also emit 'exit'.
        this.#opts.log.warn('worker process error', { worker: this.id, err: err.message });
        if (child.pid === undefined) onGone(null, null, err.message);
      });
      child.on('exit', (code, signal) => onGone(code, signal));
      this.#send({ type: 'init', workerId: this.id, ...this.#opts.init });
    });
  }

  /** Sends a command; false when the channel is already closed. */
  send(cmd: ToWorker): boolean {
    if (this.#state !== 'ready') return false;
    return this.#send(cmd);
  }

  #send(cmd: ToWorker): boolean {
    const child = this.#child;
    if (child === null || !child.connected) return false;
    try {
      child.send(cmd);
      return true;
    } catch {
      return false;
    }
  }

  #startWatchdog(): void {
    const periodMs = this.#opts.init.heartbeatIntervalMs;
    const limitMs = periodMs * heartbeatMissLimit;
    let tickAt = Date.now();
    this.#watchdog = setInterval(() => {
      const now = Date.now();
      const lateMs = now - tickAt - periodMs;
      tickAt = now;
      if (this.#state !== 'ready') return;
      // A tick this late means this process was not running (SIGSTOP, a long pause):
      // the heartbeats the worker sent meanwhile are still unread in the pipe, behind
      // this timer. Killing it now would also drop what it reported then (a fenced
      // channel's last recording segment); give it a fresh window to be heard.
      if (lateMs > periodMs) {
        this.#lastHeartbeatAt = now;
        return;
      }
      const silentMs = now - this.#lastHeartbeatAt;
      if (silentMs > limitMs) {
        this.#opts.log.error('worker stopped sending heartbeats', { worker: this.id, pid: this.#pid, silentMs });
        this.#kill(`no heartbeat for ${silentMs} ms`);
      }
    }, this.#opts.init.heartbeatIntervalMs);
  }

  #clearTimers(): void {
    if (this.#watchdog !== null) clearInterval(this.#watchdog);
    this.#watchdog = null;
    for (const t of this.#stopTimers) clearTimeout(t);
    this.#stopTimers = [];
  }

  /** Immediate SIGKILL, for a worker that is broken rather than busy. */
  #kill(reason: string): void {
    if (this.#state === 'exited') return;
    this.#endReason ??= reason;
    if (this.#state !== 'stopping') this.#to('stopping');
    this.#child?.kill('SIGKILL');
  }

  /**
   * Asks the worker to stop its pipelines and exit; escalates to SIGTERM and
   * then SIGKILL, each after stopGraceMs. Resolves when the process is gone.
   */
  stop(reason = 'stop requested'): Promise<WorkerExit> {
    if (this.#child === null && this.#state === 'spawning') {
      // Never forked: nothing to wait for.
      this.#requested = true;
      this.#to('exited');
      const exit: WorkerExit = { code: null, signal: null, reason: 'never started', duringStart: true, requested: true };
      this.#resolveExited(exit);
      this.emit('exit', exit);
    } else if (this.#state === 'spawning' || this.#state === 'ready') {
      this.#requested = true;
      this.#endReason ??= reason;
      const sentShutdown = this.#state === 'ready' && this.#send({ type: 'shutdown' });
      this.#to('stopping');
      const child = this.#child;
      const grace = this.#opts.stopGraceMs;
      if (child !== null) {
        const term = (): void => {
          if (sentShutdown) this.#opts.log.warn('worker did not exit after shutdown; SIGTERM', { worker: this.id, pid: this.#pid });
          child.kill('SIGTERM');
          this.#stopTimers.push(
            setTimeout(() => {
              this.#opts.log.warn('worker did not exit after SIGTERM; SIGKILL', { worker: this.id, pid: this.#pid });
              child.kill('SIGKILL');
            }, grace),
          );
        };
        if (sentShutdown) this.#stopTimers.push(setTimeout(term, grace));
        else term();
      }
    } else if (this.#state === 'stopping') {
      this.#requested = true;
    }
    return this.#exited;
  }

  /** stop(), for symmetry with the pool: resolves only after the exit. */
  async dispose(): Promise<void> {
    await this.stop('disposed');
  }
}

/** What a message that failed to parse says it is, for the log (its fields may carry URLs: not logged). */
function messageType(raw: unknown): string | null {
  if (raw === null || typeof raw !== 'object') return null;
  const r = raw as Record<string, unknown>;
  const type = typeof r['type'] === 'string' ? r['type'] : null;
  const ev = r['event'];
  const kind = ev !== null && typeof ev === 'object' ? (ev as Record<string, unknown>)['kind'] : undefined;
  return typeof kind === 'string' ? `${type}/${kind}` : type;
}
