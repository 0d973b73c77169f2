/**
 * The worker pool: `size` worker processes, each hosting many pipelines.
 *
 * - Placement picks the least-loaded ready worker (ties: lowest slot), and
 *   reserves the slot before the first await so concurrent starts spread.
 * - A worker that dies is replaced. Its channels are reported once through
 *   'workerLost' so the channel layer can place them again.
 * - Crash-loop guard: a worker that dies before its handshake completes is
 *   respawned only after a full-jitter backoff that grows with each
 *   consecutive failure; the slot shows state 'backoff' and the reason in
 *   lastError meanwhile. Reaching ready resets the count.
 *
 * Events: WorkerPool is a typed node:events EventEmitter (see
 * WorkerPoolEvents): 'pipeline', 'workerLost', and 'workerState' for
 * observers such as metrics and tests.
 */
import { EventEmitter } from 'node:events';
import { VliveError } from '../errors.js';
import { fullJitterBackoff } from './backoff.js';
import { ChannelCounterBook, type ChannelCounters } from './counters.js';
import type { FromWorker } from './ipc.js';
import type { PlayoutCommand, PlayoutEvent } from './playout-spec.js';
import { isTerminal, type LiveSource, type PipelineSpec, type PipelineState, type PipelineStats, type ProgrammeSpec, type SourceEvent, type SourceSpec, type TapEvent, type VodItem } from './pipeline-spec.js';
import { resolvePoolOptions, type ResolvedPoolOptions, type WorkerPoolOptions } from './options.js';
import { WorkerHandle, type WorkerExit, type WorkerState } from './worker-handle.js';

export type { WorkerPoolOptions } from './options.js';
export type { ChannelCounters } from './counters.js';

/** A slot's state: its worker's, or 'backoff' while a respawn waits out the crash-loop delay. */
export type SlotState = WorkerState | 'backoff';

export interface WorkerInfo {
  /** Id of the slot's current (or last) worker process, e.g. "w0.3": slot 0, third process. */
  id: string;
  pid: number | null;
  state: SlotState;
  /** Pipelines placed on it by this pool. */
  pipelines: number;
  /** Of those, relays (live sources); the rest are VOD channels. */
  relays: number;
  /** From the last heartbeat. */
  rssBytes: number;
  /** Processes started in this slot after the first one. */
  restarts: number;
  lastError: string | null;
  gstVersion: string | null;
  /** Per-pipeline state and position from the last heartbeat. */
  stats: readonly PipelineStats[];
}

export interface PipelineEvent {
  channelId: string;
  workerId: string;
  state: PipelineState;
  error?: string;
}

export interface WorkerLostEvent {
  workerId: string;
  /** Channels that were placed on it; none of them runs any more. */
  channelIds: string[];
  reason: string;
}

export interface WorkerStateEvent {
  workerId: string;
  state: SlotState;
  reason?: string;
}

/** A channel's tap (recording, snapshots) reported something; see TapEvent. */
export interface ChannelTapEvent {
  channelId: string;
  event: TapEvent;
}

export interface WorkerPoolEvents {
  pipeline: [PipelineEvent];
  tap: [ChannelTapEvent];
  source: [{ channelId: string; workerId: string; event: SourceEvent }];
  /** A VOD channel's item went on air, or a playout command was answered (playout-spec.ts). */
  playout: [{ channelId: string; workerId: string; event: PlayoutEvent }];
  workerLost: [WorkerLostEvent];
  workerState: [WorkerStateEvent];
}

interface Slot {
  readonly index: number;
  generation: number;
  handle: WorkerHandle | null;
  backoff: boolean;
  restarts: number;
  /** Consecutive deaths before a handshake completed. */
  startFailures: number;
  lastError: string | null;
  respawnTimer: NodeJS.Timeout | null;
}

interface Placement {
  readonly workerId: string;
  readonly kind: SourceSpec['kind'];
  /** A start that timed out unacknowledged: stop was sent, events are no longer forwarded. */
  abandoned: boolean;
}

interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class WorkerPool extends EventEmitter<WorkerPoolEvents> {
  readonly #o: ResolvedPoolOptions;
  readonly #slots: Slot[] = [];
  readonly #placements = new Map<string, Placement>();
  readonly #starts = new Map<string, Waiter<{ workerId: string }>>();
  readonly #stops = new Map<string, Waiter<void>[]>();
  readonly #counters = new ChannelCounterBook();
  #disposing: Promise<void> | null = null;
  #started = false;
  /** Cluster mode: the last lease fence (wall-clock ms), sent to every worker; null on a single node. */
  #fenceUntil: number | null = null;

  constructor(options: WorkerPoolOptions) {
    super();
    this.#o = resolvePoolOptions(options);
  }

  /**
   * Spawns the workers and waits until each has either completed its
   * handshake or failed it once. Rejects, after disposing the pool, when not
   * a single worker became ready.
   */
  async start(): Promise<void> {
    if (this.#started) throw new Error('WorkerPool.start() was already called');
    if (this.#disposing !== null) throw new Error('WorkerPool.start() after dispose()');
    this.#started = true;
    for (let index = 0; index < this.#o.size; index++) {
      this.#slots.push({ index, generation: 0, handle: null, backoff: false, restarts: 0, startFailures: 0, lastError: null, respawnTimer: null });
    }
    await Promise.all(this.#slots.map((slot) => this.#spawn(slot)));
    if (!this.#slots.some((s) => s.handle?.state === 'ready')) {
      const why = this.#slots.map((s) => s.lastError).find((e) => e !== null) ?? 'unknown';
      await this.dispose();
      throw new Error(`no worker completed its handshake: ${why}`);
    }
  }

  #handleId(slot: Slot): string {
    return `w${slot.index}.${slot.generation}`;
  }

  /** Starts a process in the slot; resolves (never rejects) when its handshake is decided. */
  async #spawn(slot: Slot): Promise<void> {
    slot.respawnTimer = null;
    slot.backoff = false;
    slot.generation += 1;
    if (slot.generation > 1) slot.restarts += 1;
    const o = this.#o;
    const handle = new WorkerHandle({
      id: this.#handleId(slot),
      script: o.workerScript,
      // The threadpool size must be in the environment before the child
      // starts: libuv reads it once, at the first use of the pool. See
      // busThreadMargin for why pipelines need one thread each.
      env: { ...process.env, ...o.env, UV_THREADPOOL_SIZE: String(o.threadpoolSize) },
      init: {
        heartbeatIntervalMs: o.heartbeatIntervalMs,
        maxPipelines: o.maxPipelinesPerWorker,
        startTimeoutMs: o.pipelineStartTimeoutMs,
        stallTimeoutMs: o.stallTimeoutMs,
      },
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      stopGraceMs: o.stopGraceMs,
      log: o.log,
    });
    slot.handle = handle;
    // The handle only emits transitions; its first state is announced here.
    this.emit('workerState', { workerId: handle.id, state: 'spawning' });
    handle.on('state', (state) => {
      // Before any start can be placed on it (the same tick makes it ready).
      if (state === 'ready' && this.#fenceUntil !== null) handle.send({ type: 'fence', untilMs: this.#fenceUntil });
      this.emit('workerState', { workerId: handle.id, state });
    });
    handle.on('pipeline', (msg) => this.#onPipeline(handle, msg));
    handle.on('tap', (msg) => this.#onTap(handle, msg));
    handle.on('source', (msg) => this.#onSource(handle, msg));
    handle.on('playout', (msg) => {
      if (this.#placements.get(msg.channelId)?.workerId === handle.id) this.emit('playout', { channelId: msg.channelId, workerId: handle.id, event: msg.event });
    });
    handle.on('heartbeat', (msg) => this.#onHeartbeat(handle, msg));
    handle.on('exit', (exit) => this.#onExit(slot, handle, exit));
    try {
      await handle.start();
      slot.startFailures = 0;
      slot.lastError = null;
    } catch (err) {
      slot.lastError = (err as Error).message;
    }
  }

  #onHeartbeat(handle: WorkerHandle, msg: Extract<FromWorker, { type: 'heartbeat' }>): void {
    // The handle keeps the snapshot; the book keeps what must add up across restarts.
    for (const st of msg.pipelines) {
      if (this.#placements.get(st.channelId)?.workerId === handle.id) this.#counters.running(st);
    }
  }

  #onTap(handle: WorkerHandle, msg: Extract<FromWorker, { type: 'tap' }>): void {
    // A closed segment is a file on this node's disk whoever runs the channel now (a
    // fence finalises the last one after the pipeline has ended): always listed, or
    // retention would never find it. Warnings and snapshots describe the running channel.
    if (msg.event.kind === 'segment' || this.#placements.get(msg.channelId)?.workerId === handle.id) this.emit('tap', { channelId: msg.channelId, event: msg.event });
  }

  #onSource(handle: WorkerHandle, msg: Extract<FromWorker, { type: 'source' }>): void {
    if (this.#placements.get(msg.channelId)?.workerId === handle.id) this.emit('source', { channelId: msg.channelId, workerId: handle.id, event: msg.event });
  }

  #onPipeline(handle: WorkerHandle, msg: Extract<FromWorker, { type: 'pipeline' }>): void {
    const { channelId, state } = msg;
    const placement = this.#placements.get(channelId);
    if (placement === undefined || placement.workerId !== handle.id) return; // stale: already re-placed or forgotten
    if (msg.stats !== undefined) this.#counters.ended(msg.stats);
    const error = msg.error;

    const start = this.#starts.get(channelId);
    if (start !== undefined) {
      this.#starts.delete(channelId);
      clearTimeout(start.timer);
      if (isTerminal(state)) {
        start.reject(new VliveError('START_FAILED', error ?? `the pipeline ended (${state}) before it started`));
      } else {
        start.resolve({ workerId: handle.id });
      }
    }
    if (isTerminal(state)) {
      // The worker has already freed it: the slot is free again.
      this.#placements.delete(channelId);
      this.#settleStops(channelId);
    }
    if (!placement.abandoned) {
      this.emit('pipeline', error !== undefined ? { channelId, workerId: handle.id, state, error } : { channelId, workerId: handle.id, state });
    }
  }

  #settleStops(channelId: string): void {
    const waiters = this.#stops.get(channelId) ?? [];
    this.#stops.delete(channelId);
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  #onExit(slot: Slot, handle: WorkerHandle, exit: WorkerExit): void {
    const lost: string[] = [];
    for (const [channelId, p] of this.#placements) {
      if (p.workerId !== handle.id) continue;
      // What its last heartbeat said is all that is known of it now.
      this.#counters.lost(channelId);
      this.#placements.delete(channelId);
      this.#settleStops(channelId);
      const start = this.#starts.get(channelId);
      if (start !== undefined) {
        this.#starts.delete(channelId);
        clearTimeout(start.timer);
        start.reject(new VliveError('START_FAILED', `worker ${handle.id} ${exit.reason}`));
      } else if (!p.abandoned) {
        lost.push(channelId);
      }
    }
    if (this.#disposing !== null || exit.requested) return;

    slot.lastError = exit.reason;
    this.#o.log.warn('worker lost', { worker: handle.id, reason: exit.reason, channels: lost.length, duringStart: exit.duringStart });
    if (!exit.duringStart) this.emit('workerLost', { workerId: handle.id, channelIds: lost, reason: exit.reason });

    if (exit.duringStart) {
      // Crash-loop guard: back off longer after each consecutive start failure.
      const delayMs = fullJitterBackoff(slot.startFailures, this.#o.respawnBackoff, this.#o.random);
      slot.startFailures += 1;
      slot.backoff = true;
      this.emit('workerState', { workerId: handle.id, state: 'backoff', reason: exit.reason });
      this.#o.log.warn('worker respawn delayed', { worker: handle.id, delayMs, failures: slot.startFailures });
      slot.respawnTimer = setTimeout(() => void this.#spawn(slot), delayMs);
    } else {
      void this.#spawn(slot);
    }
  }

  /** Pipelines placed on the worker, or only those of one source kind. */
  #load(workerId: string, kind?: SourceSpec['kind']): number {
    let n = 0;
    for (const p of this.#placements.values()) if (p.workerId === workerId && (kind === undefined || p.kind === kind)) n += 1;
    return n;
  }

  #readyHandles(): WorkerHandle[] {
    return this.#slots.flatMap((s) => (s.handle?.state === 'ready' ? [s.handle] : []));
  }

  /**
   * Places a pipeline on the least-loaded ready worker. Resolves when the
   * worker acknowledged it ('starting'); 'playing' follows as an event.
   * @throws VliveError CAPACITY_EXHAUSTED when no ready worker has room,
   *   START_FAILED when the worker refuses, fails or dies first,
   *   INVALID_STATE when the channel already has a pipeline, SHUTTING_DOWN after dispose().
   */
  startPipeline(spec: PipelineSpec): Promise<{ workerId: string }> {
    if (this.#disposing !== null) return Promise.reject(new VliveError('SHUTTING_DOWN', 'the worker pool is stopping'));
    const { channelId } = spec;
    const existing = this.#placements.get(channelId);
    if (existing !== undefined) {
      return Promise.reject(new VliveError('INVALID_STATE', `channel ${channelId} already has a pipeline on worker ${existing.workerId}`));
    }
    const max = this.#o.maxPipelinesPerWorker;
    let best: WorkerHandle | null = null;
    let bestLoad = max;
    for (const h of this.#readyHandles()) {
      const load = this.#load(h.id);
      if (load < bestLoad) {
        best = h;
        bestLoad = load;
      }
    }
    if (best === null) return Promise.reject(new VliveError('CAPACITY_EXHAUSTED', this.#noRoomReason()));
    const handle = best;

    this.#placements.set(channelId, { workerId: handle.id, kind: spec.source.kind, abandoned: false });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#starts.delete(channelId);
        const p = this.#placements.get(channelId);
        if (p !== undefined) p.abandoned = true; // keeps counting until the worker confirms the stop
        handle.send({ type: 'stop', channelId });
        reject(new VliveError('START_FAILED', `worker ${handle.id} did not acknowledge the start within ${this.#o.handshakeTimeoutMs} ms`));
      }, this.#o.handshakeTimeoutMs);
      this.#starts.set(channelId, { resolve, reject, timer });
      if (!handle.send({ type: 'start', spec })) {
        clearTimeout(timer);
        this.#starts.delete(channelId);
        this.#placements.delete(channelId);
        reject(new VliveError('START_FAILED', `worker ${handle.id} is not reachable`));
      }
    });
  }

  #noRoomReason(): string {
    const ready = this.#readyHandles().length;
    const notReady = this.#slots.length - ready;
    const max = this.#o.maxPipelinesPerWorker;
    if (ready === 0) return `no worker is ready (${notReady} starting or backing off)`;
    return `all ${ready * max} pipeline slots are in use (${ready} ready workers × ${max})${notReady > 0 ? `; ${notReady} workers not ready` : ''}`;
  }

  /**
   * Stops a channel's pipeline. Resolves when the worker reports it stopped
   * (files, sockets and its bus thread released), when the worker is gone,
   * or, with an error logged, after a bounded wait. Unknown ids resolve at once.
   */
  stopPipeline(channelId: string): Promise<void> {
    const placement = this.#placements.get(channelId);
    if (placement === undefined) return Promise.resolve();
    const handle = this.#slots.map((s) => s.handle).find((h) => h?.id === placement.workerId);
    return new Promise((resolve, reject) => {
      // Worst honest case: the worker's 'shutdown'+SIGTERM escalation plus the watchdog.
      const waitMs = 2 * this.#o.stopGraceMs + 5 * this.#o.heartbeatIntervalMs + this.#o.handshakeTimeoutMs;
      const timer = setTimeout(() => {
        this.#o.log.error('no stop confirmation; forgetting the pipeline', { channel: channelId, worker: placement.workerId, waitMs });
        if (this.#placements.get(channelId) === placement) this.#placements.delete(channelId);
        this.#settleStops(channelId);
      }, waitMs);
      const waiters = this.#stops.get(channelId) ?? [];
      waiters.push({ resolve, reject, timer });
      this.#stops.set(channelId, waiters);
      // A worker that is stopping or gone needs no command: its exit settles this.
      if (waiters.length === 1 && handle !== undefined && handle !== null) handle.send({ type: 'stop', channelId });
    });
  }

  /**
   * Hands a running VOD channel its new playlist; the worker switches at the
   * next item boundary. False when the channel has no pipeline (the next
   * start reads the list from the database anyway).
   */
  updatePlaylist(channelId: string, items: VodItem[], loop: boolean, programme?: ProgrammeSpec): boolean {
    return this.#placedHandle(channelId)?.send({ type: 'playlist', channelId, items, loop, ...(programme === undefined ? {} : { programme }) }) ?? false;
  }

  /** A skip or jump for a running VOD channel (see the 'playout' command); false when it has no pipeline. */
  playout(channelId: string, requestId: number, command: PlayoutCommand): boolean {
    return this.#placedHandle(channelId)?.send({ type: 'playout', channelId, requestId, command }) ?? false;
  }

  /** The worker a running channel's pipeline is placed on; null when it has none (or it was abandoned). */
  #placedHandle(channelId: string): WorkerHandle | null {
    const placement = this.#placements.get(channelId);
    if (placement === undefined || placement.abandoned) return null;
    return this.#slots.map((s) => s.handle).find((h) => h?.id === placement.workerId) ?? null;
  }

  /** Hands a running relay its next source (see the 'source' command); false when it has no pipeline. */
  setSource(channelId: string, source: LiveSource, mode: 'replace' | 'candidate'): boolean {
    return this.#placedHandle(channelId)?.send({ type: 'source', channelId, source, mode }) ?? false;
  }

  /**
   * Cluster mode: every worker must stop all its pipelines by `untilMs` (wall clock)
   * unless a later fence comes. Called after each successful lease renewal.
   */
  setFence(untilMs: number): void {
    this.#fenceUntil = untilMs;
    for (const h of this.#readyHandles()) h.send({ type: 'fence', untilMs });
  }

  workers(): WorkerInfo[] {
    return this.#slots.map((slot) => {
      const h = slot.handle;
      return {
        id: h?.id ?? this.#handleId(slot),
        pid: h !== null && h.state !== 'exited' ? h.pid : null,
        state: slot.backoff ? 'backoff' : (h?.state ?? 'spawning'),
        pipelines: h !== null ? this.#load(h.id) : 0,
        relays: h !== null ? this.#load(h.id, 'live') : 0,
        rssBytes: h?.rssBytes ?? 0,
        restarts: slot.restarts,
        lastError: slot.lastError,
        gstVersion: h?.gstVersion ?? null,
        stats: h?.stats ?? [],
      };
    });
  }

  /**
   * Totals of one channel over every pipeline it has had in this pool (they
   * add up across restarts and worker losses, so they can back Prometheus
   * counters): the ended pipelines' final numbers plus the running one's last
   * heartbeat. Null for a channel that never had a pipeline here (or was forgotten).
   */
  channelCounters(channelId: string): ChannelCounters | null {
    return this.#counters.get(channelId);
  }

  /** Drops a deleted channel's totals, so the book does not grow forever. */
  forgetChannel(channelId: string): void {
    this.#counters.forget(channelId);
  }

  /** Pipeline slots of the ready workers, and how many of those are taken. */
  capacity(): { total: number; used: number } {
    const ready = this.#readyHandles();
    return {
      total: ready.length * this.#o.maxPipelinesPerWorker,
      used: ready.reduce((n, h) => n + this.#load(h.id), 0),
    };
  }

  /** Stops every worker (their pipelines first) and waits for all exits. Idempotent. */
  dispose(): Promise<void> {
    this.#disposing ??= (async () => {
      for (const slot of this.#slots) {
        if (slot.respawnTimer !== null) clearTimeout(slot.respawnTimer);
        slot.respawnTimer = null;
        slot.backoff = false; // no respawn is coming any more
      }
      for (const [channelId, w] of this.#starts) {
        clearTimeout(w.timer);
        w.reject(new VliveError('SHUTTING_DOWN', 'the worker pool is stopping'));
        this.#starts.delete(channelId);
      }
      await Promise.all(this.#slots.map((s) => s.handle?.dispose()));
      for (const channelId of [...this.#stops.keys()]) this.#settleStops(channelId);
      this.#placements.clear();
    })();
    return this.#disposing;
  }
}
