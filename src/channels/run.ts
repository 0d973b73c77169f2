/**
 * One running channel on this node: a ChannelRun exists from the moment a
 * start (or a claim, or the reconciler) takes the channel until it stops,
 * gives up, or is handed over. It owns the runtime fields (worker, attempt,
 * abort, timers, the relay's source), the launch of a pipeline and the wait
 * for it to play, and the attempt loop that keeps a wanted channel running:
 *
 *   pipeline error / worker lost ──▶ restart: RECONNECTING, stop the pipeline,
 *        backoff, launch again ──▶ LIVING, or the next attempt, or ERROR
 *        (gave up after maxReconnectAttempts)
 *   relay source down ──▶ RECONNECTING with the output kept, the next source
 *        (failover.ts) set in place after the backoff ──▶ source up: LIVING
 *
 * Everything that runs later (a timer, a pool event) goes through
 * `whileWanted`: under the channel's lock, only while this run is still the
 * channel's and the record still wants it RUNNING. The status moves are the
 * writer's (writer.ts); the manager of all runs is runs.ts.
 *
 * Imports: the ports (pool, origin, cluster), repository, spec, status,
 * writer, warnings, failover, lock, config, errors and log. Nothing from
 * runs.ts or service.ts: what it needs of its manager comes as RunContext.
 */
import type { Config } from '../config.js';
import { notFound } from '../errors.js';
import type { Logger } from '../log.js';
import type { PipelineSpec, SourceEvent, SourceLabel } from '../pool/pipeline-spec.js';
import { activeSourceOf, nextSource, SwitchBack, type SourceState } from './failover.js';
import type { KeyedLock } from './lock.js';
import type { ClusterPort, PipelineEvent, PipelineRunner, PublishPoint } from './ports.js';
import { LeaseLostError, type ChannelRecord, type ChannelRepository, type StatusWrite } from './repository.js';
import { buildPipelineSpec, liveSourceOf } from './spec.js';
import { noteMissingItems, type WarningBook } from './warnings.js';
import type { StatusWriter } from './writer.js';

export interface RunContext {
  config: Pick<Config, 'mediaRoot' | 'dataDir' | 'startTimeoutMs' | 'switchBackIntervalMs'>;
  repo: ChannelRepository;
  runner: PipelineRunner;
  origin: PublishPoint;
  log: Logger;
  /** Delay before reconnect attempt `attempt` (1-based), in ms. */
  retryDelayMs: (attempt: number) => number;
  cluster?: ClusterPort;
  lock: KeyedLock;
  writer: StatusWriter;
  warnings: WarningBook;
  /** The channel's run on this node now, if any. */
  runOf(id: string): ChannelRun | undefined;
  /** Forgets the channel's run and clears its timers. */
  drop(id: string): void;
  /** Cluster mode: this node found it no longer holds the channel's lease. */
  onLeaseLost(id: string): void;
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class ChannelRun {
  workerId: string | null = null;
  /** Reconnect attempts since the channel last played. */
  attempt = 0;
  /** Aborts a start or a reconnect wait in progress when the channel is stopped. */
  readonly abort = new AbortController();
  #retryTimer: NodeJS.Timeout | null = null;
  /** Resolvers of the current launch, fed by pipeline events. */
  #waiter: { playing(): void; failed(reason: string): void } | null = null;
  /** A relay's source while its output keeps the publish session. */
  readonly source: SourceState = { lostAt: null, lastTried: 'primary' };
  readonly #switchBack: SwitchBack;
  /** The hls of the record the pipeline was last launched from: the origin application it publishes to. Null before. */
  hls: boolean | null = null;
  /** The record's onDemand, from the last launch or edit: whether the idle check must look at it. */
  onDemand = false;

  constructor(
    readonly id: string,
    private readonly ctx: RunContext,
  ) {
    this.#switchBack = new SwitchBack(ctx.config.switchBackIntervalMs, () => this.#tryPrimaryBeside());
  }

  /** Still the channel's run, and not stopped. */
  get current(): boolean {
    return this.ctx.runOf(this.id) === this && !this.abort.signal.aborted;
  }

  /** A reconnect attempt is scheduled (its wait is running). */
  get retryPending(): boolean {
    return this.#retryTimer !== null;
  }

  /** Clears the timers; the run table calls it when it forgets the run. */
  dispose(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#switchBack.clear();
  }

  /**
   * The one guard of everything that runs later: `fn` runs under the
   * channel's lock, only while this run is current and the fresh record
   * still wants the channel RUNNING. A failure is logged as `what`, then
   * handed to `onError` when given.
   */
  whileWanted(what: string, fn: (rec: ChannelRecord) => Promise<void>, onError?: (err: unknown) => void): void {
    void this.ctx.lock
      .run(this.id, async () => {
        if (!this.current) return;
        const rec = await this.ctx.repo.get(this.id);
        if (!rec || rec.desiredState !== 'RUNNING' || !this.current) return;
        await fn(rec);
      })
      .catch((err: unknown) => {
        this.ctx.log.error(what, { channel: this.id, err: String(err) });
        onError?.(err);
      });
  }

  /**
   * The operator's start, from STARTING on (under the lock, the spec built):
   * LIVING, or ERROR with desired STOPPED; a relay whose primary will not
   * start tries its backup first.
   */
  async start(rec: ChannelRecord, spec: PipelineSpec): Promise<ChannelRecord> {
    const { id } = this;
    await this.ctx.repo.markStartRequested(id);
    await this.ctx.writer.transition(id, 'STARTING', { errorString: null, workerId: null, stopReason: null });
    let reason = await this.launch(rec, spec, 'primary');
    if (reason !== null && !this.abort.signal.aborted && rec.sourceType === 'ONLINE' && rec.backupUrl !== null) {
      this.ctx.log.warn('primary source failed at start; trying the backup', { channel: id, reason });
      const backupReason = await this.launch(rec, await buildPipelineSpec(rec, this.ctx.config, this.ctx.origin, 'backup'), 'backup');
      if (backupReason === null) {
        this.#armSwitchBack();
        reason = null;
      } else {
        reason = `${reason}; backup: ${backupReason}`;
      }
    }
    if (reason === null) return this.#load();
    if (this.abort.signal.aborted) {
      this.ctx.drop(id);
      return this.#load();
    }
    return this.failStart(reason);
  }

  /** A start that failed: ERROR, desired STOPPED (nothing retries behind the operator's back), and the run forgotten. */
  async failStart(reason: string): Promise<ChannelRecord> {
    this.ctx.log.warn('channel start failed', { channel: this.id, reason });
    const failed = await this.ctx.writer.transition(this.id, 'ERROR', { errorString: reason, workerId: null, desiredState: 'STOPPED' });
    this.ctx.drop(this.id);
    return failed;
  }

  /**
   * Places the pipeline built from `rec` and waits until it plays: the
   * origin (in the application rec.hls chose) has accepted the publish and
   * media flows to it. Returns null on success, or the reason it failed.
   */
  async launch(rec: ChannelRecord, spec: PipelineSpec, label: SourceLabel = 'primary'): Promise<string | null> {
    const { id } = this;
    const signal = this.abort.signal;
    this.hls = rec.hls;
    this.onDemand = rec.onDemand;
    let playing!: () => void;
    let failed!: (reason: string) => void;
    const played = new Promise<void>((resolve, reject) => {
      playing = resolve;
      failed = (reason) => reject(new Error(reason));
    });
    played.catch(() => undefined);
    this.#waiter = { playing, failed };
    const timeoutMs = this.ctx.config.startTimeoutMs;
    const timer = setTimeout(() => failed(`no media reached the origin within ${timeoutMs} ms`), timeoutMs);
    const onAbort = (): void => failed('stopped');
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      // Checked with no await before the start is sent: a node that has just learnt it
      // lost the lease (renewal, refused write) never sends a start for the channel.
      if (this.ctx.cluster) {
        if (signal.aborted) throw new Error('stopped');
        if (this.ctx.cluster.epochOf(id) === null) {
          this.ctx.onLeaseLost(id);
          throw new LeaseLostError(id);
        }
      }
      const { workerId } = await this.ctx.runner.startPipeline(spec);
      this.workerId = workerId;
      await this.ctx.writer.setWorker(id, workerId);
      // 'playing' is the origin's own word: the worker publishes itself, so it
      // comes once the origin answered NetStream.Publish.Start and the first
      // media is in the socket to it (src/worker/channel-pipeline.ts). No poll
      // of the origin's /stat stands between the first packet and LIVING.
      await played;
      this.#waiter = null;
      this.attempt = 0;
      this.source.lostAt = null;
      await this.ctx.writer.transition(id, 'LIVING', { errorString: null, startedAt: new Date(), reconnectAttempts: 0, nextAttemptAt: null, activeSource: activeSourceOf(label) });
      return null;
    } catch (err) {
      this.#waiter = null;
      await this.ctx.runner.stopPipeline(id).catch(() => undefined);
      this.workerId = null;
      return messageOf(err);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Whether a pool event from `workerId` is about this run's pipeline. */
  owns(workerId: string): boolean {
    return this.workerId === null || this.workerId === workerId;
  }

  /**
   * A pipeline event. While a launch waits, it settles the wait; afterwards
   * an error restarts the channel. True when it was consumed here (an end of
   * file after the launch is the caller's: the operator's run is over).
   */
  onPipelineEvent(ev: PipelineEvent): boolean {
    if (this.#waiter) {
      if (ev.state === 'playing') this.#waiter.playing();
      else if (ev.state === 'error') this.#waiter.failed(ev.error ?? 'the pipeline failed');
      else if (ev.state === 'eos') this.#waiter.failed('the source ended before the channel went live');
      return true;
    }
    if (ev.state === 'error') {
      this.reconnectSoon(ev.error ?? 'the pipeline failed');
      return true;
    }
    return ev.state !== 'eos';
  }

  /** The worker died: a launch in progress fails, a playing channel is placed again at once. */
  onWorkerLost(reason: string): void {
    this.workerId = null;
    if (this.#waiter) this.#waiter.failed(`worker lost: ${reason}`);
    else this.reconnectSoon(`worker lost: ${reason}`, 0);
  }

  /** The lease is gone: a launch in progress fails at once, and nothing more is attempted. */
  abandon(reason: string): void {
    this.abort.abort();
    this.#waiter?.failed(reason);
  }

  /** Restarts the channel after the backoff (or `delayMs`), unless an attempt is already due. */
  reconnectSoon(reason: string, delayMs?: number): void {
    if (this.abort.signal.aborted || this.#retryTimer) return;
    this.whileWanted('reconnect scheduling failed', (rec) => this.restartLocked(rec, reason, delayMs), (err) => this.#retryAfterFault(err, reason));
  }

  /**
   * Cluster mode: the database may be away for a while (the lease outlives short
   * outages); try again rather than leave a leased channel with no pipeline.
   */
  #retryAfterFault(err: unknown, reason: string): void {
    if (this.ctx.cluster && !(err instanceof LeaseLostError) && this.current && !this.#retryTimer) {
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = null;
        this.reconnectSoon(reason);
      }, this.ctx.retryDelayMs(Math.max(1, this.attempt)));
    }
  }

  /** RECONNECTING, the pipeline stopped, and a new one placed after the backoff (or `delayMs`); under the channel's lock. */
  async restartLocked(rec: ChannelRecord, reason: string, delayMs?: number): Promise<void> {
    const { id } = this;
    if (rec.status !== 'RECONNECTING') {
      await this.ctx.writer.transition(id, 'RECONNECTING', { errorString: reason, workerId: null, restartCount: { increment: 1 } });
    }
    await this.ctx.runner.stopPipeline(id).catch(() => undefined);
    this.workerId = null;
    this.attempt += 1;
    this.#switchBack.clear();
    if (await this.#gaveUp(rec.maxReconnectAttempts, reason)) return;
    const wait = delayMs ?? this.ctx.retryDelayMs(this.attempt);
    this.ctx.log.warn('channel reconnecting', { channel: id, reason, attempt: this.attempt, waitMs: wait });
    await this.#attemptLater(wait, reason, {}, (now) => this.reconnectLocked(now, reason));
  }

  /**
   * One reconnect attempt, under the lock, of a channel wanted RUNNING: a
   * fresh spec from `rec`, launched; on failure the next one is scheduled.
   */
  async reconnectLocked(rec: ChannelRecord, reason: string): Promise<void> {
    if (!this.current) return;
    let failure: string | null;
    try {
      const spec = await buildPipelineSpec(rec, this.ctx.config, this.ctx.origin);
      noteMissingItems(this.ctx.warnings, this.ctx.log, rec, spec);
      failure = await this.launch(rec, spec);
    } catch (err) {
      failure = messageOf(err);
    }
    if (failure === null || this.abort.signal.aborted) return;
    const current = (await this.#load()).status;
    if (current !== 'RECONNECTING') await this.ctx.writer.transition(this.id, 'RECONNECTING', { errorString: failure });
    else await this.ctx.writer.details(this.id, { errorString: failure });
    this.ctx.log.warn('reconnect failed', { channel: this.id, reason: failure, after: reason });
    this.reconnectSoon(failure);
  }

  /**
   * A channel's hls picks its origin application, so a LIVING channel whose
   * record now says otherwise than its pipeline is restarted at once where
   * the record says: RECONNECTING, then LIVING, with new play URLs. A restart
   * rather than "at the next start": until then the play URLs, which follow
   * the record, would point where the channel is not, and any reconnect would
   * move it at a moment nobody chose. Asked after an update, and by every
   * reconcile pass for the channels this node runs, which catches an edit made
   * on another node of a cluster or one that came while a relay's source was
   * away (RECONNECTING with its output kept).
   */
  followHls(): void {
    this.whileWanted('hls change not applied', async (rec) => {
      if (this.#retryTimer || rec.status !== 'LIVING' || this.hls === null || this.hls === rec.hls) return;
      // An origin of one application (an external one) takes both alike: nothing to move.
      if (this.ctx.origin.publishUrl(this.id, this.hls) === this.ctx.origin.publishUrl(this.id, rec.hls)) {
        this.hls = rec.hls;
        return;
      }
      this.ctx.log.info('hls changed; moving the channel to the other origin application', { channel: this.id, hls: rec.hls });
      await this.restartLocked(rec, `restarting to turn HLS ${rec.hls ? 'on' : 'off'}`, 0);
    });
  }

  /**
   * Shows the coming reconnect attempt (which, and when) in the API and the
   * subscription, with `extra` in the same write, and runs `attempt` under
   * the channel's lock when it is due. For a whole restart and a source
   * replaced in place alike. An attempt that throws (the database away) is
   * logged, and in a cluster retried as a restart after a backoff.
   */
  async #attemptLater(wait: number, reason: string, extra: Omit<StatusWrite, 'status'>, attempt: (rec: ChannelRecord) => Promise<void>): Promise<void> {
    await this.ctx.writer.transition(this.id, 'RECONNECTING', { ...extra, reconnectAttempts: this.attempt, nextAttemptAt: new Date(Date.now() + wait) });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.whileWanted('reconnect attempt failed', attempt, (err) => this.#retryAfterFault(err, reason));
    }, wait);
  }

  /** The channel's own limit of reconnect attempts: past it, ERROR and desired STOPPED. True when it gave up. */
  async #gaveUp(max: number | null, reason: string): Promise<boolean> {
    if (max === null || this.attempt <= max) return false;
    await this.ctx.runner.stopPipeline(this.id).catch(() => undefined);
    const rec = await this.ctx.writer.transition(this.id, 'ERROR', {
      errorString: `gave up after ${max} reconnect attempt${max === 1 ? '' : 's'}: ${reason}`,
      desiredState: 'STOPPED',
      stoppedAt: new Date(),
      nextAttemptAt: null,
      workerId: null,
    });
    this.ctx.drop(this.id);
    this.ctx.log.warn('channel gave up reconnecting', { channel: this.id, attempts: max, reason: rec.errorString });
    return true;
  }

  // ── A relay's source ──────────────────────────────────────────────────
  // What happens when a relay's source drops: the worker keeps the output
  // pipeline (and the publish session, and the players) and reports the loss
  // as a SourceEvent. The channel goes RECONNECTING (activeSource SLATE when
  // a slate fills in), and after the usual backoff the worker is given the
  // next source (nextSource in failover.ts: the primary, then turns with the
  // backup once failover is due) in place of the lost one. When one plays,
  // LIVING again; while the backup plays, the primary is tried beside it.

  /** A relay's source changed while its output kept publishing: down, up, or a failed try of the primary beside the backup. */
  onSourceEvent(event: SourceEvent): void {
    if (this.#waiter) return;
    if (event.kind === 'down') this.#sourceDown(event.label, event.error, event.slate);
    else if (event.kind === 'candidate-failed') {
      this.ctx.log.info('primary not healthy yet; staying on the backup', { channel: this.id, reason: event.error });
      this.#armSwitchBack();
    } else this.#sourceUp(event.label);
  }

  #sourceUp(label: SourceLabel): void {
    this.whileWanted('source up not recorded', async (rec) => {
      this.attempt = 0;
      this.source.lostAt = null;
      const activeSource = activeSourceOf(label);
      if (rec.status !== 'LIVING') {
        await this.ctx.writer.transition(this.id, 'LIVING', { errorString: null, reconnectAttempts: 0, nextAttemptAt: null, activeSource });
      } else if (rec.activeSource !== activeSource) {
        await this.ctx.writer.transition(this.id, 'LIVING', { activeSource });
      }
      this.ctx.log.info('live source up', { channel: this.id, source: label });
      if (label === 'backup') this.#armSwitchBack();
      else this.#switchBack.clear();
    });
  }

  /**
   * The active source of a playing relay failed: RECONNECTING, and after the
   * usual backoff the worker gets the next source in place of the lost one.
   */
  #sourceDown(label: SourceLabel, reason: string, slate = false): void {
    if (this.abort.signal.aborted || this.#retryTimer) return;
    this.whileWanted('source reconnect scheduling failed', async (rec) => {
      this.#switchBack.clear();
      this.source.lostAt ??= Date.now();
      this.source.lastTried = label;
      // FALLBACK, in effect: RECONNECTING with the slate filling the output (activeSource SLATE).
      const shownSource = slate ? { activeSource: 'SLATE' as const } : {};
      if (rec.status !== 'RECONNECTING') await this.ctx.writer.transition(this.id, 'RECONNECTING', { errorString: reason, restartCount: { increment: 1 }, ...shownSource });
      this.attempt += 1;
      if (await this.#gaveUp(rec.maxReconnectAttempts, reason)) return;
      const next = nextSource(rec, this.source, this.attempt, Date.now());
      const wait = this.ctx.retryDelayMs(this.attempt);
      this.ctx.log.warn('live source lost; publish session kept', { channel: this.id, source: label, reason, attempt: this.attempt, next, waitMs: wait });
      await this.#attemptLater(wait, reason, { errorString: reason, ...shownSource }, (now) => this.#trySource(now, next));
    });
  }

  /** Under the lock, wanted RUNNING: the worker gets `label`'s source in place of the lost one. */
  async #trySource(rec: ChannelRecord, label: SourceLabel): Promise<void> {
    this.source.lastTried = label;
    let sent: boolean;
    try {
      sent = this.ctx.runner.setSource(this.id, liveSourceOf(rec, label), 'replace');
    } catch (err) {
      // The URL was edited into something unusable meanwhile: count it as a failed attempt.
      this.#sourceDown(label, messageOf(err));
      return;
    }
    // The pipeline itself is gone (its worker died meanwhile): a full restart.
    if (!sent) this.reconnectSoon('the channel\'s pipeline is gone', 0);
  }

  #armSwitchBack(): void {
    if (!this.abort.signal.aborted) this.#switchBack.arm();
  }

  /** The switch-back timer is due: the primary is tried beside the playing backup; it takes over once healthy (worker side). */
  #tryPrimaryBeside(): void {
    this.whileWanted('switch-back try failed', async (rec) => {
      if (rec.status !== 'LIVING' || rec.activeSource !== 'BACKUP') return;
      if (!this.ctx.runner.setSource(this.id, liveSourceOf(rec, 'primary'), 'candidate')) return;
      this.ctx.log.info('trying the primary beside the backup', { channel: this.id });
    });
  }

  async #load(): Promise<ChannelRecord> {
    const rec = await this.ctx.repo.get(this.id);
    if (!rec) throw notFound('virtual live', this.id);
    return rec;
  }
}
