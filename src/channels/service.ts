/**
 * The channel domain's facade, the one the API, on-demand, the schedule and
 * the cluster call: create, update, delete, start and stop virtual lives,
 * and route the pool's events to the channel's run. A start follows the
 * seed's four steps: (a) validate and load the record, (b) build the
 * pipeline spec, here; (c) place it on a worker and (d) LIVING once the
 * origin sees the publish, or ERROR, in the run (run.ts).
 *
 * Failure policy: an operator's start that fails ends in ERROR and desired
 * STOPPED, so nothing retries behind the operator's back. A channel that
 * was LIVING and then lost its pipeline, worker or source goes RECONNECTING
 * and is retried with backoff for as long as it is wanted (run.ts).
 *
 * Owns: the wiring of the parts below. Imports everything in channels/ it
 * wires, and recording/retention for a delete; nothing imports it but the
 * callers above the domain.
 */
import { rm } from 'node:fs/promises';
import type { Config } from '../config.js';
import { VliveError } from '../errors.js';
import type { Recording } from '../generated/prisma-sqlite/client.js';
import type { Logger } from '../log.js';
import type { ProgrammeSpec, TapEvent } from '../pool/pipeline-spec.js';
import { removeChannelRecordings } from '../recording/retention.js';
import type { ChannelKind } from './channel-cost.js';
import { ClusterSide } from './clustered.js';
import type { CutInView, StatusEvents } from './events.js';
import { validateCreate, validateUpdate, type CreateInput, type UpdateInput } from './input.js';
import { KeyedLock } from './lock.js';
import type { ClusterPort, ConformPort, PipelineEvent, PipelineRunner, PublishPoint, SourceChange } from './ports.js';
import { ConformDesk } from './conform.js';
import { PlayoutDesk, type CuePointView, type NowPlaying, type PlayoutSwitch } from './playout.js';
import type { PlayoutCommand, PlayoutEvent, ReturnMode } from '../pool/playout-spec.js';
import { Reconciler } from './reconciler.js';
import type { ChannelRecord, ChannelRepository } from './repository.js';
import { Runs } from './runs.js';
import { buildPipelineSpec, slateItem, snapshotFile } from './spec.js';
import { isActive } from './status.js';
import { noteMissingItems, onTapEvent, WarningBook } from './warnings.js';
import { StatusWriter } from './writer.js';

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
  /** Renditions for output profiles (src/vods/conform.ts); without it a profile's items are never conformed. */
  conform?: ConformPort;
  /** Status writes in flight at once (write-turns.ts); 1 when absent. */
  writeConcurrency?: number;
}

export class ChannelService {
  readonly #lock = new KeyedLock();
  readonly #warnings = new WarningBook();
  readonly #writer: StatusWriter;
  readonly #runs: Runs;
  readonly #reconciler: Reconciler;
  readonly #cluster: ClusterSide | null;
  readonly #playout: PlayoutDesk;
  readonly #conform: ConformDesk;
  /** Told when another node's edit reached a channel this node runs (onRemoteEdit). */
  readonly #remoteEdits = new Set<(id: string) => void>();
  #accepting = true;

  constructor(private readonly deps: ChannelServiceDeps) {
    this.#conform = new ConformDesk(deps.conform, deps.repo);
    const onLeaseLost = (id: string): void => this.onLeaseLost(id);
    const warnings = this.#warnings;
    this.#writer = new StatusWriter({ ...deps, warnings, viewersOf: (id) => this.viewersOf(id), onLeaseLost });
    this.#runs = new Runs({ ...deps, lock: this.#lock, writer: this.#writer, warnings, onLeaseLost });
    const accepting = (): boolean => this.#accepting;
    this.#reconciler = new Reconciler(this.#runs, deps.log, accepting);
    const edited = (id: string): void => this.#remoteEdits.forEach((listener) => listener(id));
    this.#cluster = deps.cluster ? new ClusterSide(deps.cluster, this.#runs, deps.events, deps.log, accepting, edited) : null;
    this.#playout = new PlayoutDesk({
      send: (id, requestId, command) => deps.runner.playout(id, requestId, command),
      events: deps.events,
      announce: (id, playing) => {
        // Still on air: a stop (or the next item) published meanwhile has the last word.
        const still = (): boolean => this.#playout.nowPlaying(id) === playing;
        this.#writer
          .publishDetail(id, { playout: playing, still })
          .catch((err: unknown) => deps.log.warn('item boundary not published', { channel: id, err: String(err) }));
      },
      announceCutIn: (id, cutIn) => {
        this.#writer
          .publishDetail(id, { cutIn, activeOnly: true })
          .catch((err: unknown) => deps.log.warn('cut-in not published', { channel: id, err: String(err) }));
      },
      announceCue: (id, cuePoint) => {
        this.#writer
          .publishDetail(id, { cuePoint, activeOnly: true })
          .catch((err: unknown) => deps.log.warn('cue point not published', { channel: id, err: String(err) }));
      },
      log: deps.log,
    });
  }

  /** Runs a write in turn with the status writes (writer.ts): the programme's history writes through here. */
  readonly writeTurn = <T>(work: () => Promise<T>): Promise<T> => this.#writer.turn(work);

  /** What a running VOD channel has on air (playout.ts); null otherwise. */
  nowPlaying(id: string): NowPlaying | null {
    return this.#playout.nowPlaying(id);
  }

  /**
   * Skip (the next item) or jump (item `index`) of a LIVING VOD channel, at
   * its next clean cut, in the same publish session. Resolves with the switch.
   */
  async playout(id: string, command: PlayoutCommand): Promise<PlayoutSwitch> {
    this.#assertAccepting();
    return this.#lock.run(id, async () => this.#playout.command(await this.deps.repo.get(id), id, command, this.#runs.has(id)));
  }

  /** The last cue point a running VOD channel sent (playout.ts); null otherwise. */
  lastCuePoint(id: string): CuePointView | null {
    return this.#playout.lastCuePoint(id);
  }

  /** The live cut-in of a running VOD channel (playout.ts); null otherwise. */
  cutIn(id: string): CutInView | null {
    return this.#playout.cutIn(id);
  }

  /** A live cut-in of a LIVING VOD channel: `url` replaces its playlist at the source's first keyframe. */
  async takeLive(id: string, url: string): Promise<CutInView> {
    this.#assertAccepting();
    return this.#lock.run(id, async () => {
      const rec = await this.deps.repo.get(id);
      const slate = rec?.slateVodResource != null && rec.sourceType === 'VOD' ? await slateItem(rec.slateVodResource, this.deps.config, rec.outputProfile) : null;
      return this.#playout.takeLive(rec, id, url, slate, this.#runs.has(id));
    });
  }

  /** Ends a LIVING VOD channel's cut-in: back to its playlist, where it was left or where it would be now. */
  async returnToPlaylist(id: string, mode: ReturnMode): Promise<PlayoutSwitch> {
    this.#assertAccepting();
    return this.#lock.run(id, async () => this.#playout.returnToPlaylist(await this.deps.repo.get(id), id, mode, this.#runs.has(id)));
  }

  /** A VOD channel's item went on air, or a playout command was answered (from the channel's worker). */
  onPlayoutEvent(ev: { channelId: string; event: PlayoutEvent }): void {
    if (this.#runs.has(ev.channelId)) this.#playout.onEvent(ev.channelId, ev.event);
  }

  /** Bytes, errors and the last error of a channel's target `index` (0 = origin) over its pipelines. */
  targetStats(id: string, index: number, running: boolean): { bytesSent: number; errors: number; bitrateBps: number; lastError: string | null; status: string } {
    const t = this.deps.runner.channelCounters(id)?.targets.find((x) => x.index === index);
    const status = !running ? 'STOPPED' : (t?.state ?? 'connecting').toUpperCase();
    return { bytesSent: t?.bytesSent ?? 0, errors: t?.errors ?? 0, bitrateBps: running ? (t?.bitrateBps ?? 0) : 0, lastError: t?.lastError ?? null, status };
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
    // Conforming starts now, so that the channel is ready by the time it is started.
    return (await this.#conform.ask(rec)) ? this.#runs.load(rec.id) : rec;
  }


  async update(id: string, input: UpdateInput): Promise<ChannelRecord> {
    this.#assertAccepting();
    return this.#lock.run(id, async () => {
      const rec = await this.#runs.load(id);
      const fields = await validateUpdate(rec, input, this.deps.repo);
      await this.#conform.checkRunningEdit(rec, fields);
      let updated = await this.deps.repo.update(id, fields);
      if ((fields.playlist !== undefined || fields.outputProfile !== undefined || fields.slateVodResourceId != null) && (await this.#conform.ask(updated))) {
        updated = await this.#runs.load(id);
      }
      // hls moves a running channel to the other origin application: a restart, now.
      if (fields.hls !== undefined && fields.hls !== rec.hls) this.#runs.get(id)?.followHls();
      const run = this.#runs.get(id);
      if (run) run.onDemand = updated.onDemand;
      // Playlist and loop edits reach a running VOD channel now, at its next
      // item boundary; every other field waits for the next start.
      if (updated.sourceType === 'VOD' && (fields.playlist !== undefined || fields.loop !== undefined) && isActive(updated.status)) {
        if (!this.tellOwner(id)) await this.#runs.sendPlaylist(updated);
      }
      return updated;
    });
  }

  /**
   * After an edit of a running channel's stored playlist or programme: when
   * another node of a cluster runs it, tells that node to read it again
   * (ClusterSide.onPlaylistChanged) and returns true; false when the edit is
   * this node's to apply (single node, or it runs here).
   */
  tellOwner(id: string): boolean {
    if (!this.deps.cluster || this.#runs.has(id)) return false;
    this.deps.cluster.playlistChanged(id);
    return true;
  }

  /**
   * Calls `listener` with a channel's id when an edit made on another node
   * reached it here (after its playlist was sent to its pipeline): what the
   * record alone does not carry to the pipeline, its programme's slots, the
   * listener sends. Returns the unsubscribe.
   */
  onRemoteEdit(listener: (id: string) => void): () => void {
    this.#remoteEdits.add(listener);
    return () => this.#remoteEdits.delete(listener);
  }

  /**
   * A programme's items and slots for the channel's pipeline, if it runs
   * here (src/schedule/programme-service.ts); null: the programme was
   * removed, the playlist follows. False when it does not run here.
   */
  async sendProgramme(id: string, programme: ProgrammeSpec | null): Promise<boolean> {
    return this.#lock.run(id, async () => {
      const rec = await this.deps.repo.get(id);
      if (rec === null || !this.#runs.has(id) || !isActive(rec.status) || rec.sourceType !== 'VOD') return false;
      await this.#runs.sendPlaylist(rec, programme ?? undefined);
      return true;
    });
  }

  async delete(id: string): Promise<string> {
    this.#assertAccepting();
    return this.#lock.run(id, async () => {
      const rec = await this.#runs.load(id);
      if (isActive(rec.status) || rec.desiredState === 'RUNNING') {
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
    if (this.#cluster) return this.#cluster.start(id);
    return this.#lock.run(id, async () => {
      // (a) validate the request and load the record.
      let rec = await this.#runs.load(id);
      if (rec.desiredState === 'RUNNING' && isActive(rec.status)) return rec;
      // Renditions its profile still lacks are asked for; until they are READY
      // the start below is refused with MEDIA_NOT_READY naming them.
      if (await this.#conform.ask(rec)) rec = await this.#runs.load(id);
      const room = this.deps.runner.capacity();
      if (room.used >= room.total) {
        throw new VliveError('CAPACITY_EXHAUSTED', `all ${room.total} pipeline slots of the worker pool are in use`);
      }
      this.deps.admission.check(rec.sourceType === 'ONLINE' ? 'relay' : 'vod');
      // (b) build the runtime info; bad media or URLs throw here, before anything changes.
      const spec = await buildPipelineSpec(rec, this.deps.config, this.deps.origin);
      noteMissingItems(this.#warnings, this.deps.log, rec, spec);
      // (c) and (d) are the run's.
      return this.#runs.create(id).start(rec, spec);
    });
  }

  async stop(id: string): Promise<ChannelRecord> {
    this.#assertAccepting();
    if (this.#cluster?.stopsRemotely(id)) return this.#cluster.stopRemote(id);
    // Abort first so that a start or reconnect in progress gives up the lock quickly.
    this.#runs.get(id)?.abort.abort();
    return this.#lock.run(id, () => this.#runs.stopLocked(id));
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
      const rec = await this.#runs.load(id);
      if (still && !still(rec)) return null;
      this.#runs.get(id)?.abort.abort();
      this.deps.log.info('channel stopped by the service', { channel: id, reason });
      return this.#runs.stopLocked(id, reason);
    });
  }

  /** Whether this instance holds the channel's pipeline (or is starting or reconnecting it). */
  runsHere(id: string): boolean {
    return this.#runs.has(id);
  }

  /**
   * Whether an on-demand channel may run here, so the idle check has work:
   * on a single node, whether a run here is on demand; in a cluster always
   * (another node's edit reaches this node's runs only at their next launch).
   */
  mayRunOnDemand(): boolean {
    return this.deps.cluster !== undefined || this.#runs.all().some((r) => r.onDemand);
  }

  /** Players on the channel now, as the origin reports them. */
  viewersOf(id: string): number {
    return this.deps.viewersOf?.(id) ?? 0;
  }

  /** A detail event (status unchanged) that carries the channel's current viewer count. */
  async publishViewers(id: string): Promise<void> {
    await this.#writer.publishDetail(id, { viewersOnly: true });
  }

  /** Recording, snapshot and playlist faults of a running channel (they describe the present). */
  warningsOf(id: string): string[] {
    return this.#warnings.of(id);
  }

  /** What a channel's tap reported: a closed segment, a snapshot, or a warning raised or cleared. */
  onTapEvent(ev: { channelId: string; event: TapEvent }): Promise<void> {
    const { repo, log, config, cluster } = this.deps;
    return onTapEvent({ dataDir: config.dataDir, repo, log, warnings: this.#warnings, publish: (channelId) => this.#writer.publishDetail(channelId), ...(cluster ? { cluster } : {}) }, ev.channelId, ev.event);
  }

  /** A pipeline's state from the pool: it settles a launch, restarts a failed channel, or ends a VOD run without loop. */
  onPipelineEvent(ev: PipelineEvent): void {
    const run = this.#runs.get(ev.channelId);
    if (!run || !run.owns(ev.workerId) || run.onPipelineEvent(ev)) return;
    // A VOD channel without loop finished its file: the operator's run is over.
    void this.#lock
      .run(ev.channelId, () => this.#runs.stopLocked(ev.channelId))
      .catch((err: unknown) => this.deps.log.error('stop after end of file failed', { channel: ev.channelId, err: String(err) }));
  }

  /** A relay's source changed while its output kept publishing (run.ts, "A relay's source"). */
  onSourceEvent(ev: SourceChange): void {
    const run = this.#runs.get(ev.channelId);
    if (run && run.workerId === ev.workerId) run.onSourceEvent(ev.event);
  }

  /** A worker died: its channels go RECONNECTING and are placed again at once. */
  onWorkerLost(channelIds: readonly string[], reason: string): void {
    for (const id of channelIds) this.#runs.get(id)?.onWorkerLost(reason);
  }

  /** One reconcile pass, and the interval of them (reconciler.ts); before both, at start-up, the resume marking. */
  readonly markResuming = (): Promise<number> => this.#reconciler.markResuming();
  readonly reconcile = (): Promise<void> => this.#reconciler.reconcile();
  readonly startReconciler = (intervalMs: number): void => this.#reconciler.start(intervalMs);

  // Cluster mode (clustered.ts): a lease claimed by this node, a playlist edit
  // or a desired state from another node, a lease this node lost.
  readonly runClaimed = (id: string): void => this.#cluster?.runClaimed(id);
  readonly onPlaylistChanged = (id: string): void => this.#cluster?.onPlaylistChanged(id);
  readonly onDesiredChanged = (id: string, desired: 'RUNNING' | 'STOPPED'): void => this.#cluster?.onDesiredChanged(id, desired);
  readonly onLeaseLost = (id: string): void => this.#cluster?.onLeaseLost(id);

  /** False once shutdown() began. */
  get accepting(): boolean {
    return this.#accepting;
  }

  /** Channels this process runs (or is starting or reconnecting). */
  runningCount(): number {
    return this.#runs.size;
  }

  /** Refuses further mutations (graceful shutdown) and stops all pipelines, keeping desired states. */
  async shutdown(): Promise<void> {
    this.#accepting = false;
    this.#reconciler.stop();
    this.#playout.dispose();
    await this.deps.cluster?.leave().catch((err: unknown) => this.deps.log.warn('could not mark the node as leaving', { err: String(err) }));
    // In a cluster each channel is handed over, still wanted RUNNING; on a single node it is STOPPED and restarted at the next start.
    const cluster = this.#cluster;
    await this.#runs.endAll(cluster ? (id, rec) => cluster.handOverLocked(id, rec) : undefined);
  }

  #assertAccepting(): void {
    if (!this.#accepting) throw new VliveError('SHUTTING_DOWN', 'the service is shutting down');
  }
}
