/**
 * The channel domain: create, update, delete, start and stop virtual lives,
 * and keep running channels running. Start follows the seed's four steps:
 * (a) validate and load the record, (b) build the runtime info (the pipeline
 * spec) and persist the new status, (c) place it on a worker, (d) LIVING once
 * the pipeline plays and the origin sees the publish, ERROR otherwise.
 *
 * Failure policy: a start requested by the operator that fails ends in ERROR
 * and desiredState STOPPED, so nothing retries behind the operator's back.
 * A channel that was LIVING and then lost its pipeline or worker goes
 * RECONNECTING and is restarted with backoff for as long as it is wanted.
 */
import { rm } from 'node:fs/promises';
import { isAbsolute, relative } from 'node:path';
import type { Config } from '../config.js';
import { VliveError, notFound } from '../errors.js';
import type { Recording } from '../generated/prisma-sqlite/client.js';
import type { Logger } from '../log.js';
import type { PipelineSpec, SourceLabel, TapEvent } from '../pool/ipc.js';
import { removeChannelRecordings } from '../recording/retention.js';
import type { ChannelKind } from './channel-cost.js';
import type { StatusChange, StatusEvents } from './events.js';
import { validateCreate, validateUpdate, type CreateInput, type UpdateInput } from './input.js';
import { KeyedLock } from './lock.js';
import type { ClusterPort, PipelineEvent, PipelineRunner, PublishPoint, SourceChange } from './ports.js';
import { LeaseLostError, type ChannelRecord, type ChannelRepository, type StatusWrite } from './repository.js';
import { buildPipelineSpec, liveSourceOf, missingItemNames, snapshotFile, vodItems } from './spec.js';
import { assertTransition, isActive, isLiveStatus, type LiveStatus } from './status.js';

export interface ChannelServiceDeps {
  config: Pick<Config, 'mediaRoot' | 'dataDir' | 'startTimeoutMs' | 'switchBackIntervalMs'>;
  repo: ChannelRepository;
  runner: PipelineRunner;
  origin: PublishPoint;
  events: StatusEvents;
  log: Logger;
  /** Refuses a start when the CPU or memory budget is spent (CAPACITY_EXHAUSTED). */
  admission: { check(kind: ChannelKind): void };
  /** Delay before reconnect attempt `attempt` (1-based), in ms. */
  retryDelayMs: (attempt: number) => number;
  /** Players the origin reports on a channel now (src/ondemand/viewers.ts); 0 when not given. */
  viewersOf?: (id: string) => number;
  /**
   * Cluster mode (PostgreSQL): channels run where their lease is, every write of the
   * owner is fenced by the lease epoch, and start/stop on a node that does not own
   * the channel go through the database (src/cluster/). Absent on a single node.
   */
  cluster?: ClusterPort;
}

/** How long a start or stop on a node that does not run the channel waits for the owner to settle it, beyond the start timeout. */
const clusterSettleMarginMs = 5_000;

/** In-process state of a channel this node runs; the database holds the rest. */
interface Runtime {
  workerId: string | null;
  attempt: number;
  /** Aborts a start or a reconnect wait in progress when the channel is stopped. */
  abort: AbortController;
  retryTimer: NodeJS.Timeout | null;
  /** Resolvers of the current start, fed by pipeline events. */
  waiter: { playing(): void; failed(reason: string): void } | null;
  /**
   * A relay's source while its output keeps the publish session: since when
   * it is away (null while it plays), which source was tried last, and the
   * timer of the next try of the primary beside the backup.
   */
  source: { lostAt: number | null; lastTried: SourceLabel; switchBack: NodeJS.Timeout | null };
  /** The hls of the record the pipeline was last launched from: the origin application it publishes to. Null before. */
  hls: boolean | null;
}

/** What a warning is about: the tap's parts, or playlist items whose files are gone. */
type WarningPart = 'recording' | 'snapshot' | 'playlist';

const activeSourceOf = (label: SourceLabel): 'PRIMARY' | 'BACKUP' => (label === 'backup' ? 'BACKUP' : 'PRIMARY');

export class ChannelService {
  readonly #lock = new KeyedLock();
  readonly #runtime = new Map<string, Runtime>();
  #accepting = true;
  #reconciler: NodeJS.Timeout | null = null;

  constructor(private readonly deps: ChannelServiceDeps) {}

  /** Bytes, errors and the last error of a channel's target `index` (0 = origin) over its pipelines. */
  targetStats(id: string, index: number, running: boolean): { bytesSent: number; errors: number; lastError: string | null; status: string } {
    const t = this.deps.runner.channelCounters(id)?.targets.find((x) => x.index === index);
    const status = !running ? 'STOPPED' : (t?.state ?? 'connecting').toUpperCase();
    return { bytesSent: t?.bytesSent ?? 0, errors: t?.errors ?? 0, lastError: t?.lastError ?? null, status };
  }

  recordings(id: string): Promise<Recording[]> {
    return this.deps.repo.recordings(id);
  }

  list(): Promise<ChannelRecord[]> {
    return this.deps.repo.list();
  }

  get(id: string): Promise<ChannelRecord | null> {
    return this.deps.repo.get(id);
  }

  playUrls(rec: Pick<ChannelRecord, 'id' | 'hls'>): { rtmp: string; hls: string | null } {
    return this.deps.origin.playUrls(rec.id, rec.hls);
  }

  async create(input: CreateInput): Promise<ChannelRecord> {
    this.#assertAccepting();
    const fields = await validateCreate(input, this.deps.repo);
    const rec = await this.deps.repo.create(fields);
    this.deps.log.info('channel created', { channel: rec.id });
    return rec;
  }

  async update(id: string, input: UpdateInput): Promise<ChannelRecord> {
    this.#assertAccepting();
    return this.#lock.run(id, async () => {
      const rec = await this.#load(id);
      const fields = await validateUpdate(rec, input, this.deps.repo);
      const updated = await this.deps.repo.update(id, fields);
      // hls moves a running channel to the other origin application: a restart, now.
      if (fields.hls !== undefined && fields.hls !== rec.hls) this.#followHls(id);
      // Playlist and loop edits reach a running VOD channel now, at its next
      // item boundary; every other field waits for the next start.
      if (updated.sourceType === 'VOD' && (fields.playlist !== undefined || fields.loop !== undefined) && isActive(updated.status as LiveStatus)) {
        if (this.deps.cluster && !this.#runtime.has(id)) {
          // Another node runs it: the record is written, its owner applies it.
          this.deps.cluster.playlistChanged(id);
          return updated;
        }
        const items = await vodItems(updated, this.deps.config);
        if (this.deps.runner.updatePlaylist(id, items, updated.loop)) this.deps.log.info('playlist sent to the running channel', { channel: id, items: items.length });
      }
      return updated;
    });
  }

  async delete(id: string): Promise<string> {
    this.#assertAccepting();
    return this.#lock.run(id, async () => {
      const rec = await this.#load(id);
      if (isActive(rec.status as LiveStatus) || rec.desiredState === 'RUNNING') {
        throw new VliveError('INVALID_STATE', `virtual live ${id} is ${rec.status}; stop it before deleting it`);
      }
      await this.deps.repo.delete(id);
      this.deps.runner.forgetChannel(id);
      // Its recordings and snapshot go with it (their rows went with the channel's).
      await removeChannelRecordings(this.deps.config.dataDir, id);
      await rm(snapshotFile(this.deps.config.dataDir, id), { force: true });
      this.deps.log.info('channel deleted', { channel: id });
      return id;
    });
  }

  async start(id: string): Promise<ChannelRecord> {
    this.#assertAccepting();
    if (this.deps.cluster) return this.#startClustered(id, this.deps.cluster);
    return this.#lock.run(id, async () => {
      // (a) validate the request and load the record.
      const rec = await this.#load(id);
      if (rec.desiredState === 'RUNNING' && isActive(rec.status as LiveStatus)) return rec;
      const room = this.deps.runner.capacity();
      if (room.used >= room.total) {
        throw new VliveError('CAPACITY_EXHAUSTED', `all ${room.total} pipeline slots of the worker pool are in use`);
      }
      this.deps.admission.check(rec.sourceType === 'ONLINE' ? 'relay' : 'vod');
      // (b) build the runtime info; bad media or URLs throw here, before anything changes.
      const spec = await buildPipelineSpec(rec, this.deps.config, this.deps.origin);
      this.#noteMissingItems(rec, spec);
      const runtime = this.#newRuntime(id);
      await this.deps.repo.markStartRequested(id);
      await this.#transition(id, 'STARTING', { errorString: null, workerId: null, stopReason: null });
      // (c) and (d); a relay whose primary will not start tries its backup.
      let reason = await this.#launch(rec, spec, runtime, 'primary');
      if (reason !== null && !runtime.abort.signal.aborted && rec.sourceType === 'ONLINE' && rec.backupUrl !== null) {
        this.deps.log.warn('primary source failed at start; trying the backup', { channel: id, reason });
        const backupReason = await this.#launch(rec, await buildPipelineSpec(rec, this.deps.config, this.deps.origin, 'backup'), runtime, 'backup');
        if (backupReason === null) {
          this.#scheduleSwitchBack(id, runtime);
          reason = null;
        } else {
          reason = `${reason}; backup: ${backupReason}`;
        }
      }
      if (reason === null) return this.#load(id);
      if (runtime.abort.signal.aborted) {
        this.#dropRuntime(id);
        return this.#load(id);
      }
      this.deps.log.warn('channel start failed', { channel: id, reason });
      const failed = await this.#transition(id, 'ERROR', { errorString: reason, workerId: null, desiredState: 'STOPPED' });
      this.#dropRuntime(id);
      return failed;
    });
  }

  async stop(id: string): Promise<ChannelRecord> {
    this.#assertAccepting();
    const cluster = this.deps.cluster;
    if (cluster && cluster.epochOf(id) === null && !this.#runtime.has(id)) return this.#stopRemote(id, cluster);
    // Abort first so that a start or reconnect in progress gives up the lock quickly.
    this.#runtime.get(id)?.abort.abort();
    return this.#lock.run(id, () => this.#stopLocked(id));
  }

  /**
   * A stop the service decides by itself (an idle on-demand channel, a
   * schedule), recorded as stopReason. It queues on the channel's lock like
   * an operator's start or stop, and `still` is asked again under the lock
   * with the fresh record: whatever the operator did first wins. Returns null
   * when `still` said no.
   */
  async stopFor(id: string, reason: string, still?: (rec: ChannelRecord) => boolean): Promise<ChannelRecord | null> {
    this.#assertAccepting();
    return this.#lock.run(id, async () => {
      const rec = await this.#load(id);
      if (still && !still(rec)) return null;
      this.#runtime.get(id)?.abort.abort();
      this.deps.log.info('channel stopped by the service', { channel: id, reason });
      return this.#stopLocked(id, reason);
    });
  }

  /** Whether this instance holds the channel's pipeline (or is starting or reconnecting it). */
  runsHere(id: string): boolean {
    return this.#runtime.has(id);
  }

  /** Players on the channel now, as the origin reports them. */
  viewersOf(id: string): number {
    return this.deps.viewersOf?.(id) ?? 0;
  }

  /** A detail event (status unchanged) that carries the channel's current viewer count. */
  async publishViewers(id: string): Promise<void> {
    const rec = await this.deps.repo.get(id);
    if (rec) this.#publish(rec, rec.status as LiveStatus, true);
  }

  /** Feeds pipeline state changes from the pool. */
  /** Recording and snapshot faults of running channels, by part; kept in memory (they describe the present). */
  readonly #warnings = new Map<string, Map<WarningPart, string>>();

  warningsOf(id: string): string[] {
    return [...(this.#warnings.get(id)?.values() ?? [])];
  }

  /** What a channel's tap reported: a closed segment, a snapshot, or a warning raised or cleared. */
  async onTapEvent(ev: { channelId: string; event: TapEvent }): Promise<void> {
    const { channelId: id, event } = ev;
    try {
      if (event.kind === 'segment') {
        const rel = relative(this.deps.config.dataDir, event.path);
        if (rel.startsWith('..') || isAbsolute(rel)) return;
        await this.deps.repo.addRecording({ virtualLiveId: id, path: rel, startedAt: new Date(event.startedAtMs), durationSeconds: event.durationSeconds, sizeBytes: event.sizeBytes });
      } else if (event.kind === 'snapshot') {
        await this.deps.repo.setSnapTakenAt(id, new Date(event.takenAtMs));
      } else {
        if (!this.#setWarning(id, event.part, event.message)) return;
        const rec = await this.#load(id);
        this.#publish(rec, rec.status as LiveStatus);
        if (event.message !== null) this.deps.log.warn('channel warning', { channel: id, part: event.part, warning: event.message });
      }
    } catch (err) {
      // The channel was deleted meanwhile, or the database is away: a tap event is not worth a crash.
      this.deps.log.warn('tap event not recorded', { channel: id, kind: event.kind, err: String(err) });
    }
  }

  /** Raises (or, with null, clears) a channel's warning about `part`; true when that changed it. */
  #setWarning(id: string, part: WarningPart, message: string | null): boolean {
    const byPart = this.#warnings.get(id) ?? new Map<WarningPart, string>();
    if ((byPart.get(part) ?? null) === message) return false;
    if (message === null) byPart.delete(part);
    else byPart.set(part, message);
    if (byPart.size === 0) this.#warnings.delete(id);
    else this.#warnings.set(id, byPart);
    return true;
  }

  /** A playlist item whose file is gone plays the slate instead: a warning says which, while it lasts. */
  #noteMissingItems(rec: ChannelRecord, spec: PipelineSpec): void {
    const missing = spec.source.kind === 'vod' ? missingItemNames(rec, spec.source.items) : [];
    this.#setWarning(rec.id, 'playlist', missing.length === 0 ? null : `playlist: the slate plays in place of missing ${missing.map((n) => JSON.stringify(n)).join(', ')}`);
    if (missing.length > 0) this.deps.log.warn('playlist items missing; the slate plays in their place', { channel: rec.id, items: missing });
  }

  onPipelineEvent(ev: PipelineEvent): void {
    const rt = this.#runtime.get(ev.channelId);
    if (!rt || (rt.workerId !== null && rt.workerId !== ev.workerId)) return;
    if (rt.waiter) {
      if (ev.state === 'playing') rt.waiter.playing();
      else if (ev.state === 'error') rt.waiter.failed(ev.error ?? 'the pipeline failed');
      else if (ev.state === 'eos') rt.waiter.failed('the source ended before the channel went live');
      return;
    }
    if (ev.state === 'error') {
      this.#scheduleReconnect(ev.channelId, ev.error ?? 'the pipeline failed');
    } else if (ev.state === 'eos') {
      // A VOD channel without loop finished its file: the operator's run is over.
      void this.#lock
        .run(ev.channelId, () => this.#stopLocked(ev.channelId))
        .catch((err: unknown) => this.deps.log.error('stop after end of file failed', { channel: ev.channelId, err: String(err) }));
    }
  }

  /**
   * A relay's source changed while its output kept publishing: down (retry
   * in place, failing over to the backup when due), up (LIVING again), or a
   * try of the primary beside the backup that failed (try again later).
   */
  onSourceEvent(ev: SourceChange): void {
    const id = ev.channelId;
    const rt = this.#runtime.get(id);
    if (!rt || rt.workerId !== ev.workerId || rt.waiter) return;
    const { event } = ev;
    if (event.kind === 'down') {
      this.#sourceDown(id, rt, event.label, event.error, event.slate);
      return;
    }
    if (event.kind === 'candidate-failed') {
      this.deps.log.info('primary not healthy yet; staying on the backup', { channel: id, reason: event.error });
      this.#scheduleSwitchBack(id, rt);
      return;
    }
    void this.#lock
      .run(id, async () => {
        if (this.#runtime.get(id) !== rt || rt.abort.signal.aborted) return;
        const rec = await this.deps.repo.get(id);
        if (!rec || rec.desiredState !== 'RUNNING') return;
        rt.attempt = 0;
        rt.source.lostAt = null;
        const activeSource = activeSourceOf(event.label);
        if (rec.status !== 'LIVING') {
          await this.#transition(id, 'LIVING', { errorString: null, reconnectAttempts: 0, nextAttemptAt: null, activeSource });
        } else if (rec.activeSource !== activeSource) {
          this.#publish(await this.#write(id, { status: 'LIVING', activeSource }), 'LIVING');
        }
        this.deps.log.info('live source up', { channel: id, source: event.label });
        if (event.label === 'backup') this.#scheduleSwitchBack(id, rt);
        else this.#clearSwitchBack(rt);
      })
      .catch((err: unknown) => this.deps.log.error('source up not recorded', { channel: id, err: String(err) }));
  }

  /**
   * The active source of a playing relay failed: RECONNECTING, and after the
   * usual backoff the worker gets the next source in place of the lost one.
   * The output pipeline, and so the publish session, stays.
   */
  #sourceDown(id: string, rt: Runtime, label: SourceLabel, reason: string, slate = false): void {
    if (rt.abort.signal.aborted || rt.retryTimer) return;
    void this.#lock
      .run(id, async () => {
        const rec = await this.deps.repo.get(id);
        if (!rec || rec.desiredState !== 'RUNNING' || this.#runtime.get(id) !== rt) return;
        this.#clearSwitchBack(rt);
        rt.source.lostAt ??= Date.now();
        rt.source.lastTried = label;
        // FALLBACK, in effect: RECONNECTING with the slate filling the output (activeSource SLATE).
        const shownSource = slate ? { activeSource: 'SLATE' as const } : {};
        if (rec.status !== 'RECONNECTING') await this.#transition(id, 'RECONNECTING', { errorString: reason, restartCount: { increment: 1 }, ...shownSource });
        rt.attempt += 1;
        if (await this.#gaveUp(id, rec.maxReconnectAttempts, rt.attempt, reason)) return;
        const next = this.#nextSource(rec, rt);
        const wait = this.deps.retryDelayMs(rt.attempt);
        this.deps.log.warn('live source lost; publish session kept', { channel: id, source: label, reason, attempt: rt.attempt, next, waitMs: wait });
        await this.#attemptLater(id, rt, wait, { errorString: reason, ...shownSource }, () => this.#trySource(id, rt, next));
      })
      .catch((err: unknown) => this.deps.log.error('source reconnect scheduling failed', { channel: id, err: String(err) }));
  }

  async #trySource(id: string, rt: Runtime, label: SourceLabel): Promise<void> {
    if (rt.abort.signal.aborted || this.#runtime.get(id) !== rt) return;
    const rec = await this.deps.repo.get(id);
    if (!rec || rec.desiredState !== 'RUNNING') return;
    rt.source.lastTried = label;
    let sent: boolean;
    try {
      sent = this.deps.runner.setSource(id, liveSourceOf(rec, label), 'replace');
    } catch (err) {
      // The URL was edited into something unusable meanwhile: count it as a failed attempt.
      this.#sourceDown(id, rt, label, (err as Error).message);
      return;
    }
    // The pipeline itself is gone (its worker died meanwhile): a full restart.
    if (!sent) this.#scheduleReconnect(id, 'the channel\'s pipeline is gone', 0);
  }

  /**
   * Which source the next attempt pulls: the primary, until the failover is
   * due (failoverAfterFailures failures, counting the loss, or
   * failoverAfterMs away); from then on the backup and the primary take turns.
   */
  #nextSource(rec: ChannelRecord, rt: Runtime): SourceLabel {
    if (rec.backupUrl === null) return 'primary';
    const awayMs = Date.now() - (rt.source.lostAt ?? Date.now());
    const due = rt.attempt >= rec.failoverAfterFailures || awayMs >= rec.failoverAfterMs;
    if (!due) return 'primary';
    return rt.source.lastTried === 'backup' ? 'primary' : 'backup';
  }

  /** While the backup plays, the primary is tried beside it now and then; it takes over once healthy (worker side). */
  #scheduleSwitchBack(id: string, rt: Runtime): void {
    if (rt.source.switchBack !== null || rt.abort.signal.aborted) return;
    rt.source.switchBack = setTimeout(() => {
      rt.source.switchBack = null;
      void this.#lock
        .run(id, async () => {
          if (this.#runtime.get(id) !== rt || rt.abort.signal.aborted) return;
          const rec = await this.deps.repo.get(id);
          if (!rec || rec.desiredState !== 'RUNNING' || rec.status !== 'LIVING' || rec.activeSource !== 'BACKUP') return;
          if (!this.deps.runner.setSource(id, liveSourceOf(rec, 'primary'), 'candidate')) return;
          this.deps.log.info('trying the primary beside the backup', { channel: id });
        })
        .catch((err: unknown) => this.deps.log.error('switch-back try failed', { channel: id, err: String(err) }));
    }, this.deps.config.switchBackIntervalMs);
  }

  #clearSwitchBack(rt: Runtime): void {
    if (rt.source.switchBack !== null) clearTimeout(rt.source.switchBack);
    rt.source.switchBack = null;
  }

  /** The channel's own limit of reconnect attempts: past it, ERROR and desired STOPPED. True when it gave up. */
  async #gaveUp(id: string, max: number | null, attempt: number, reason: string): Promise<boolean> {
    if (max === null || attempt <= max) return false;
    await this.deps.runner.stopPipeline(id).catch(() => undefined);
    const rec = await this.#transition(id, 'ERROR', {
      errorString: `gave up after ${max} reconnect attempt${max === 1 ? '' : 's'}: ${reason}`,
      desiredState: 'STOPPED',
      stoppedAt: new Date(),
      nextAttemptAt: null,
      workerId: null,
    });
    this.#dropRuntime(id);
    this.deps.log.warn('channel gave up reconnecting', { channel: id, attempts: max, reason: rec.errorString });
    return true;
  }

  /** A worker died: its channels go RECONNECTING and are placed again at once. */
  onWorkerLost(channelIds: readonly string[], reason: string): void {
    for (const id of channelIds) {
      const rt = this.#runtime.get(id);
      if (!rt) continue;
      rt.workerId = null;
      if (rt.waiter) rt.waiter.failed(`worker lost: ${reason}`);
      else this.#scheduleReconnect(id, `worker lost: ${reason}`, 0);
    }
  }

  /**
   * Brings observed state in line with desired state after a start of the
   * service: channels wanted RUNNING are started again, channels wanted
   * STOPPED but recorded as active (a crash left them) are marked STOPPED.
   */
  async reconcile(): Promise<void> {
    // Running channels whose hls was changed where no update here could see it.
    const running = [...this.#runtime].filter(([, rt]) => rt.hls !== null);
    if (running.length > 0) {
      for (const { id, hls } of await this.deps.repo.hlsOf(running.map(([id]) => id))) {
        if (this.#runtime.get(id)?.hls !== hls) this.#followHls(id);
      }
    }
    for (const rec of await this.deps.repo.listStaleActive()) {
      if (this.#runtime.has(rec.id)) continue;
      await this.#lock.run(rec.id, async () => {
        // Checked again under the lock: a stop or start may have settled it meanwhile.
        const now = await this.deps.repo.get(rec.id);
        if (!now || now.desiredState !== 'STOPPED' || !isActive(now.status as LiveStatus) || this.#runtime.has(rec.id)) return;
        // In a cluster the write lands only if no node holds a live lease on it.
        await this.#transition(rec.id, 'STOPPED', { workerId: null, stoppedAt: new Date() }, { unowned: this.deps.cluster !== undefined }).catch((err: unknown) => {
          if (!(err instanceof LeaseLostError)) throw err;
        });
      });
    }
    // In a cluster, channels wanted RUNNING are placed by lease claims (src/cluster/leases.ts).
    if (this.deps.cluster) return;
    for (const rec of await this.deps.repo.listDesiredRunning()) {
      if (this.#runtime.has(rec.id)) continue;
      const rt = this.#newRuntime(rec.id);
      void this.#lock
        .run(rec.id, async () => {
          const now = await this.deps.repo.get(rec.id);
          if (this.#runtime.get(rec.id) !== rt) return;
          if (!now || now.desiredState !== 'RUNNING') {
            this.#dropRuntime(rec.id);
            return;
          }
          const status = now.status as LiveStatus;
          if (status === 'LIVING' || status === 'STARTING') {
            await this.#transition(rec.id, 'RECONNECTING', { workerId: null });
          } else if (status === 'ERROR' || status === 'STOPPED') {
            await this.#transition(rec.id, 'STARTING', { workerId: null });
          }
          await this.#reconnectLocked(rec.id, rt, 'reconciled: wanted RUNNING but not running');
        })
        .catch((err: unknown) => this.deps.log.error('reconcile failed', { channel: rec.id, err: String(err) }));
    }
  }

  /**
   * Runs reconcile() every intervalMs, so that whatever slipped past the
   * event-driven paths (a lost message, a crash in between) is put right.
   * Safe to run again: it only acts on channels with no runtime here.
   */
  startReconciler(intervalMs: number): void {
    let running = false;
    this.#reconciler = setInterval(() => {
      if (running || !this.#accepting) return;
      running = true;
      this.reconcile()
        .catch((err: unknown) => this.deps.log.error('reconcile pass failed', { err: String(err) }))
        .finally(() => (running = false));
    }, intervalMs);
    this.#reconciler.unref();
  }

  /** Refuses further mutations (graceful shutdown) and stops all pipelines, keeping desired states. */
  async shutdown(): Promise<void> {
    this.#accepting = false;
    if (this.#reconciler) clearInterval(this.#reconciler);
    await this.deps.cluster?.leave().catch((err: unknown) => this.deps.log.warn('could not mark the node as leaving', { err: String(err) }));
    const ids = [...this.#runtime.keys()];
    for (const id of ids) this.#runtime.get(id)?.abort.abort();
    await Promise.all(
      ids.map((id) =>
        this.#lock.run(id, async () => {
          const rt = this.#runtime.get(id);
          if (rt?.retryTimer) clearTimeout(rt.retryTimer);
          this.#runtime.delete(id);
          await this.deps.runner.stopPipeline(id).catch(() => undefined);
          const rec = await this.deps.repo.get(id);
          const cluster = this.deps.cluster;
          if (cluster) {
            // Handed over, not stopped: still wanted RUNNING, another node claims it at once.
            if (rec && isActive(rec.status as LiveStatus) && cluster.epochOf(id) !== null) {
              await this.#transition(id, 'RECONNECTING', { workerId: null, errorString: 'its node shut down; handing it over' }).catch(() => undefined);
            }
            await cluster.release(id).catch(() => undefined);
            // The other nodes claim it at their next heartbeat; this makes it now.
            cluster.desiredChanged(id, 'RUNNING');
          } else if (rec && isActive(rec.status as LiveStatus)) {
            await this.#transition(id, 'STOPPED', { workerId: null, stoppedAt: new Date() });
          }
        }),
      ),
    );
  }

  async #stopLocked(id: string, reason: string | null = null): Promise<ChannelRecord> {
    const rec = await this.#load(id);
    if (rec.desiredState !== 'STOPPED') await this.deps.repo.setDesired(id, 'STOPPED');
    this.#dropRuntime(id);
    const status = rec.status as LiveStatus;
    if (status === 'STOPPED') {
      await this.deps.cluster?.release(id);
      return this.#load(id);
    }
    await this.deps.runner.stopPipeline(id);
    const stopped = await this.#transition(id, 'STOPPED', { workerId: null, stoppedAt: new Date(), stopReason: reason });
    await this.deps.cluster?.release(id);
    return stopped;
  }

  /**
   * Cluster mode, a start on any node: the desired state goes to the database, the
   * placers hear of it (NOTIFY) and the least-loaded node with room claims and runs
   * it. Resolves once the channel is LIVING or ERROR, or after the start timeout
   * plus a margin with whatever the record says then.
   */
  async #startClustered(id: string, cluster: ClusterPort): Promise<ChannelRecord> {
    const rec = await this.#load(id);
    if (rec.desiredState === 'RUNNING' && isActive(rec.status as LiveStatus)) return rec;
    // Bad media or URLs throw here, before anything changes (nodes share the media root).
    await buildPipelineSpec(rec, this.deps.config, this.deps.origin);
    const settled = this.#waitForStatus(id, (c) => c.status === 'LIVING' || c.status === 'ERROR', this.deps.config.startTimeoutMs + clusterSettleMarginMs);
    await this.deps.repo.markStartRequested(id);
    cluster.desiredChanged(id, 'RUNNING');
    await settled;
    return this.#load(id);
  }

  /**
   * Cluster mode, a stop on a node that does not run the channel: desired STOPPED
   * goes to the database and the owner is told; with no live owner this node marks
   * it STOPPED itself (conditionally: a claim in between wins).
   */
  async #stopRemote(id: string, cluster: ClusterPort): Promise<ChannelRecord> {
    await this.#load(id);
    const settled = this.#waitForStatus(id, (c) => c.status === 'STOPPED' || c.status === 'ERROR', this.deps.config.startTimeoutMs + clusterSettleMarginMs);
    await this.deps.repo.setDesired(id, 'STOPPED');
    cluster.desiredChanged(id, 'STOPPED');
    if (await cluster.ownedElsewhere(id)) {
      await settled;
      return this.#load(id);
    }
    settled.cancel();
    return this.#lock.run(id, async () => {
      const now = await this.#load(id);
      if (!isActive(now.status as LiveStatus)) return now;
      try {
        return await this.#transition(id, 'STOPPED', { workerId: null, stoppedAt: new Date() }, { unowned: true });
      } catch (err) {
        if (!(err instanceof LeaseLostError)) throw err;
        return this.#load(id); // claimed meanwhile: its owner has heard of the stop
      }
    });
  }

  /** Resolves when a status event of `id` satisfies `done`, or after `timeoutMs`; never rejects. */
  #waitForStatus(id: string, done: (c: StatusChange) => boolean, timeoutMs: number): Promise<void> & { cancel(): void } {
    let finish!: () => void;
    const p = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const unsubscribe = this.deps.events.subscribe((c) => {
      if (c.id === id && done(c)) finish();
    });
    const timer = setTimeout(() => finish(), timeoutMs);
    const waited = p.finally(() => {
      clearTimeout(timer);
      unsubscribe();
    });
    return Object.assign(waited, { cancel: () => finish() });
  }

  /**
   * Cluster mode: this node has just claimed the channel's lease (src/cluster/).
   * A channel that was running elsewhere is taken over (RECONNECTING, then LIVING);
   * one an operator just asked to start follows the start policy (ERROR and
   * desired STOPPED when it fails).
   */
  runClaimed(id: string): void {
    const cluster = this.deps.cluster;
    if (!cluster) return;
    if (!this.#accepting) {
      void cluster.release(id).catch(() => undefined);
      return;
    }
    if (this.#runtime.has(id)) return;
    const rt = this.#newRuntime(id);
    void this.#lock
      .run(id, async () => {
        if (this.#runtime.get(id) !== rt || rt.abort.signal.aborted) return;
        const now = await this.deps.repo.get(id);
        if (!now || now.desiredState !== 'RUNNING') {
          this.#dropRuntime(id);
          await cluster.release(id);
          return;
        }
        if (isActive(now.status as LiveStatus)) {
          await this.#transition(id, 'RECONNECTING', { workerId: null });
          await this.#reconnectLocked(id, rt, 'taken over from another node');
          return;
        }
        await this.#transition(id, 'STARTING', { errorString: null, workerId: null });
        let reason: string | null;
        try {
          reason = await this.#launch(now, await buildPipelineSpec(now, this.deps.config, this.deps.origin), rt);
        } catch (err) {
          reason = (err as Error).message;
        }
        if (reason === null || rt.abort.signal.aborted) return;
        this.deps.log.warn('channel start failed', { channel: id, reason });
        await this.#transition(id, 'ERROR', { errorString: reason, workerId: null, desiredState: 'STOPPED' });
        this.#dropRuntime(id);
        await cluster.release(id);
      })
      .catch((err: unknown) => {
        if (err instanceof LeaseLostError) return;
        this.deps.log.error('claimed channel failed to start; giving the lease back', { channel: id, err: String(err) });
        // Leased with nothing running would be stuck: let a placement pass try again.
        if (this.#runtime.get(id) === rt) {
          this.#dropRuntime(id);
          void this.deps.runner.stopPipeline(id).catch(() => undefined);
          void cluster.release(id).catch(() => undefined);
        }
      });
  }

  /** Cluster mode: a playlist or loop edit made on another node reaches this node's running pipeline. */
  onPlaylistChanged(id: string): void {
    if (!this.#runtime.has(id)) return;
    void this.#lock
      .run(id, async () => {
        const rec = await this.#load(id);
        const items = await vodItems(rec, this.deps.config);
        if (this.deps.runner.updatePlaylist(id, items, rec.loop)) this.deps.log.info('playlist sent to the running channel', { channel: id, items: items.length });
      })
      .catch((err: unknown) => this.deps.log.warn('playlist from another node not applied', { channel: id, err: String(err) }));
  }

  /** Cluster mode: an operator on some node changed the desired state (NOTIFY, or seen at lease renewal). */
  onDesiredChanged(id: string, desired: 'RUNNING' | 'STOPPED'): void {
    if (desired !== 'STOPPED' || !this.#accepting) return;
    if (!this.#runtime.has(id) && (this.deps.cluster?.epochOf(id) ?? null) === null) return;
    this.#runtime.get(id)?.abort.abort();
    void this.#lock
      .run(id, () => this.#stopLocked(id))
      .catch((err: unknown) => this.deps.log.error('stop requested by another node failed', { channel: id, err: String(err) }));
  }

  /**
   * Cluster mode: this node's lease on the channel is gone (renewal found another
   * owner, or a fenced write was refused). Stop the pipeline and forget it, writing
   * nothing: the channel's record is its new owner's now.
   */
  onLeaseLost(id: string): void {
    const rt = this.#runtime.get(id);
    if (rt) {
      rt.abort.abort();
      rt.waiter?.failed('lease lost');
    }
    this.#dropRuntime(id);
    this.#warnings.delete(id);
    this.deps.log.warn('lease lost; channel left to its new owner', { channel: id });
    void this.deps.runner.stopPipeline(id).catch(() => undefined);
  }

  /** False once shutdown() began. */
  get accepting(): boolean {
    return this.#accepting;
  }

  /** Channels this process runs (or is starting or reconnecting). */
  runningCount(): number {
    return this.#runtime.size;
  }

  /**
   * Every status write. On a single node, a plain update. In a cluster it is fenced:
   * the owner's writes carry its lease epoch and are refused once another node has
   * claimed the channel, and then this node lets go of it.
   */
  async #write(id: string, write: StatusWrite | (Partial<StatusWrite> & { workerId: string }), opts: { unowned?: boolean } = {}): Promise<ChannelRecord> {
    const cluster = this.deps.cluster;
    if (!cluster) return this.deps.repo.writeStatus(id, write as StatusWrite);
    if (opts.unowned) return this.deps.repo.writeFenced(id, write, { kind: 'unowned' });
    const epoch = cluster.epochOf(id);
    try {
      if (epoch === null) throw new LeaseLostError(id);
      return await this.deps.repo.writeFenced(id, write, { kind: 'owner', nodeId: cluster.nodeId, epoch });
    } catch (err) {
      if (err instanceof LeaseLostError) this.onLeaseLost(id);
      throw err;
    }
  }

  /**
   * Places the pipeline built from `rec` and waits until it plays: the
   * origin (in the application rec.hls chose) has accepted the publish and
   * media flows to it. Returns null on success, or the reason it failed.
   */
  async #launch(rec: ChannelRecord, spec: PipelineSpec, rt: Runtime, label: SourceLabel = 'primary'): Promise<string | null> {
    const id = rec.id;
    const signal = rt.abort.signal;
    rt.hls = rec.hls;
    let playing!: () => void;
    let failed!: (reason: string) => void;
    const played = new Promise<void>((resolve, reject) => {
      playing = resolve;
      failed = (reason) => reject(new Error(reason));
    });
    played.catch(() => undefined);
    rt.waiter = { playing, failed };
    const timeoutMs = this.deps.config.startTimeoutMs;
    const timer = setTimeout(() => failed(`no media reached the origin within ${timeoutMs} ms`), timeoutMs);
    const onAbort = (): void => failed('stopped');
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      // Checked with no await before the start is sent: a node that has just learnt it
      // lost the lease (renewal, refused write) never sends a start for the channel.
      if (this.deps.cluster) {
        if (signal.aborted) throw new Error('stopped');
        if (this.deps.cluster.epochOf(id) === null) {
          this.onLeaseLost(id);
          throw new LeaseLostError(id);
        }
      }
      const { workerId } = await this.deps.runner.startPipeline(spec);
      rt.workerId = workerId;
      if (this.deps.cluster) await this.#write(id, { workerId });
      else await this.deps.repo.setWorker(id, workerId);
      // 'playing' is the origin's own word: the worker publishes itself, so it
      // comes once the origin answered NetStream.Publish.Start and the first
      // media is in the socket to it (src/worker/channel-pipeline.ts). No poll
      // of the origin's /stat stands between the first packet and LIVING.
      await played;
      rt.waiter = null;
      rt.attempt = 0;
      rt.source.lostAt = null;
      await this.#transition(id, 'LIVING', { errorString: null, startedAt: new Date(), reconnectAttempts: 0, nextAttemptAt: null, activeSource: activeSourceOf(label) });
      return null;
    } catch (err) {
      rt.waiter = null;
      await this.deps.runner.stopPipeline(id).catch(() => undefined);
      rt.workerId = null;
      return err instanceof VliveError ? err.message : (err as Error).message;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  #scheduleReconnect(id: string, reason: string, delayMs?: number): void {
    const rt = this.#runtime.get(id);
    if (!rt || rt.abort.signal.aborted || rt.retryTimer) return;
    void this.#lock
      .run(id, async () => {
        const rec = await this.deps.repo.get(id);
        if (!rec || rec.desiredState !== 'RUNNING') return;
        await this.#restartLocked(rec, rt, reason, delayMs);
      })
      .catch((err: unknown) => {
        this.deps.log.error('reconnect scheduling failed', { channel: id, err: String(err) });
        // Cluster mode: the database may be away for a while (the lease outlives short
        // outages); try again rather than leave a leased channel with no pipeline.
        if (this.deps.cluster && !(err instanceof LeaseLostError) && this.#runtime.get(id) === rt && !rt.abort.signal.aborted && !rt.retryTimer) {
          rt.retryTimer = setTimeout(() => {
            rt.retryTimer = null;
            this.#scheduleReconnect(id, reason);
          }, this.deps.retryDelayMs(Math.max(1, rt.attempt)));
        }
      });
  }

  /** RECONNECTING, the pipeline stopped, and a new one placed after the backoff (or `delayMs`); under the channel's lock. */
  async #restartLocked(rec: ChannelRecord, rt: Runtime, reason: string, delayMs?: number): Promise<void> {
    const id = rec.id;
    if (rec.status !== 'RECONNECTING') {
      await this.#transition(id, 'RECONNECTING', { errorString: reason, workerId: null, restartCount: { increment: 1 } });
    }
    await this.deps.runner.stopPipeline(id).catch(() => undefined);
    rt.workerId = null;
    rt.attempt += 1;
    this.#clearSwitchBack(rt);
    if (await this.#gaveUp(id, rec.maxReconnectAttempts, rt.attempt, reason)) return;
    const wait = delayMs ?? this.deps.retryDelayMs(rt.attempt);
    this.deps.log.warn('channel reconnecting', { channel: id, reason, attempt: rt.attempt, waitMs: wait });
    await this.#attemptLater(id, rt, wait, {}, () => this.#reconnectLocked(id, rt, reason));
  }

  /**
   * A channel's hls picks its origin application, so a LIVING channel whose
   * record now says otherwise than its pipeline is restarted at once where
   * the record says: RECONNECTING, then LIVING, with new play URLs. A restart
   * rather than "at the next start": until then the play URLs, which follow
   * the record, would point where the channel is not, and any reconnect would
   * move it at a moment nobody chose. Asked after an update here, and by every
   * reconcile pass for the channels this node runs, which catches an edit made
   * on another node of a cluster or one that came while a relay's source was
   * away (RECONNECTING with its output kept).
   */
  #followHls(id: string): void {
    const rt = this.#runtime.get(id);
    if (!rt) return;
    void this.#lock
      .run(id, async () => {
        if (this.#runtime.get(id) !== rt || rt.abort.signal.aborted || rt.retryTimer) return;
        const rec = await this.deps.repo.get(id);
        if (!rec || rec.desiredState !== 'RUNNING' || rec.status !== 'LIVING' || rt.hls === null || rt.hls === rec.hls) return;
        // An origin of one application (an external one) takes both alike: nothing to move.
        if (this.deps.origin.publishUrl(id, rt.hls) === this.deps.origin.publishUrl(id, rec.hls)) {
          rt.hls = rec.hls;
          return;
        }
        this.deps.log.info('hls changed; moving the channel to the other origin application', { channel: id, hls: rec.hls });
        await this.#restartLocked(rec, rt, `restarting to turn HLS ${rec.hls ? 'on' : 'off'}`, 0);
      })
      .catch((err: unknown) => this.deps.log.error('hls change not applied', { channel: id, err: String(err) }));
  }

  /**
   * Shows the coming reconnect attempt (which, and when) in the API and the
   * subscription, with `extra` in the same write, and runs `attempt` under
   * the channel's lock when it is due. For a whole restart and a source
   * replaced in place alike.
   */
  async #attemptLater(id: string, rt: Runtime, wait: number, extra: Partial<StatusWrite>, attempt: () => Promise<void>): Promise<void> {
    const shown = await this.#write(id, { ...extra, status: 'RECONNECTING', reconnectAttempts: rt.attempt, nextAttemptAt: new Date(Date.now() + wait) });
    this.#publish(shown, 'RECONNECTING');
    rt.retryTimer = setTimeout(() => {
      rt.retryTimer = null;
      void this.#lock.run(id, attempt);
    }, wait);
  }

  async #reconnectLocked(id: string, rt: Runtime, reason: string): Promise<void> {
    if (rt.abort.signal.aborted || this.#runtime.get(id) !== rt) return;
    const rec = await this.deps.repo.get(id);
    if (!rec || rec.desiredState !== 'RUNNING') return;
    let failure: string | null;
    try {
      const spec = await buildPipelineSpec(rec, this.deps.config, this.deps.origin);
      this.#noteMissingItems(rec, spec);
      failure = await this.#launch(rec, spec, rt);
    } catch (err) {
      failure = (err as Error).message;
    }
    if (failure === null || rt.abort.signal.aborted) return;
    const current = (await this.#load(id)).status as LiveStatus;
    if (current !== 'RECONNECTING') await this.#transition(id, 'RECONNECTING', { errorString: failure });
    else await this.#write(id, { status: current, errorString: failure });
    this.deps.log.warn('reconnect failed', { channel: id, reason: failure, after: reason });
    this.#scheduleReconnect(id, failure);
  }

  /** One status event from the record as written; `previous` equal to its status means only details changed. */
  #publish(rec: ChannelRecord, previous: LiveStatus, viewersOnly = false): void {
    this.deps.events.publish({
      id: rec.id,
      status: rec.status as LiveStatus,
      previous,
      errorString: rec.errorString,
      at: new Date(),
      warnings: this.warningsOf(rec.id),
      reconnectAttempts: rec.reconnectAttempts,
      nextAttemptAt: rec.nextAttemptAt,
      activeSource: rec.activeSource,
      viewers: this.viewersOf(rec.id),
      ...(viewersOnly ? { viewersOnly } : {}),
    });
  }

  async #transition(id: string, to: LiveStatus, extra: Omit<StatusWrite, 'status'> = {}, opts: { unowned?: boolean } = {}): Promise<ChannelRecord> {
    const before = await this.#load(id);
    const from = before.status;
    if (!isLiveStatus(from)) throw new Error(`corrupt status ${from} on channel ${id}`);
    if (from !== to || to === 'RECONNECTING') assertTransition(from, to);
    const rec = await this.#write(id, { ...extra, status: to }, opts);
    // Warnings belong to a running tap; a channel that stops has none.
    if (!isActive(to)) this.#warnings.delete(id);
    this.#publish(rec, from);
    this.deps.log.info('channel status', { channel: id, from, to, ...(rec.errorString ? { error: rec.errorString } : {}) });
    return rec;
  }

  #newRuntime(id: string): Runtime {
    this.#dropRuntime(id);
    const rt: Runtime = { workerId: null, attempt: 0, abort: new AbortController(), retryTimer: null, waiter: null, source: { lostAt: null, lastTried: 'primary', switchBack: null }, hls: null };
    this.#runtime.set(id, rt);
    return rt;
  }

  #dropRuntime(id: string): void {
    const rt = this.#runtime.get(id);
    if (!rt) return;
    if (rt.retryTimer) clearTimeout(rt.retryTimer);
    this.#clearSwitchBack(rt);
    this.#runtime.delete(id);
  }

  async #load(id: string): Promise<ChannelRecord> {
    const rec = await this.deps.repo.get(id);
    if (!rec) throw notFound('virtual live', id);
    return rec;
  }

  #assertAccepting(): void {
    if (!this.#accepting) throw new VliveError('SHUTTING_DOWN', 'the service is shutting down');
  }
}
