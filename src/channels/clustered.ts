/**
 * The channel domain's cluster side (PostgreSQL): channels run where their
 * lease is, so a start or stop asked on a node that does not own the
 * channel goes through the database and the owner; a node that claims a
 * lease runs the channel; a node that loses one lets go without writing;
 * and a node that shuts down hands its channels over instead of stopping
 * them. src/cluster/ implements the ClusterPort and calls in here.
 *
 * Owns: remote start and stop, claims, lease loss, hand-over. Imports
 * runs.ts, spec.ts, status.ts, repository.ts, events.ts, ports.ts, errors.ts and log.ts.
 */
import { VliveError } from '../errors.js';
import type { Logger } from '../log.js';
import type { StatusChange, StatusEvents } from './events.js';
import type { ClusterPort } from './ports.js';
import { LeaseLostError, type ChannelRecord } from './repository.js';
import type { Runs } from './runs.js';
import { buildPipelineSpec } from './spec.js';
import { isActive } from './status.js';

/** How long a start or stop on a node that does not run the channel waits for the owner to settle it, beyond the start timeout. */
const clusterSettleMarginMs = 5_000;

export class ClusterSide {
  constructor(
    private readonly cluster: ClusterPort,
    private readonly runs: Runs,
    private readonly events: StatusEvents,
    private readonly log: Logger,
    private readonly accepting: () => boolean,
    /** An edit from another node reached a channel running here (ChannelService.onRemoteEdit). */
    private readonly edited: (id: string) => void,
  ) {}

  /**
   * A start on any node: the desired state goes to the database, the placers
   * hear of it (NOTIFY) and the least-loaded node with room claims and runs
   * it. Resolves once the channel is LIVING or ERROR, or after the start
   * timeout plus a margin with whatever the record says then.
   */
  async start(id: string): Promise<ChannelRecord> {
    const { config, origin, repo } = this.runs.ctx;
    const rec = await this.runs.load(id);
    if (rec.desiredState === 'RUNNING' && isActive(rec.status)) return rec;
    // Bad media or URLs throw here, before anything changes (nodes share the media root).
    await buildPipelineSpec(rec, config, origin);
    // Refused at the door when no node has slots and budget, rather than left wanted with nobody to run it.
    if (!(await this.cluster.hasRoom())) {
      throw new VliveError('CAPACITY_EXHAUSTED', 'no node of the cluster has room: every live node is at its pipeline slots or its CPU or memory budget (VLIVE_CPU_BUDGET, VLIVE_WORKER_MEMORY_BUDGET_BYTES)');
    }
    const settled = this.#waitForStatus(id, (c) => c.status === 'LIVING' || c.status === 'ERROR');
    await repo.markStartRequested(id);
    this.cluster.desiredChanged(id, 'RUNNING');
    await settled;
    return this.runs.load(id);
  }

  /** Whether a stop of the channel is this node's to make, or goes through the database. */
  stopsRemotely(id: string): boolean {
    return this.cluster.epochOf(id) === null && !this.runs.has(id);
  }

  /**
   * A stop on a node that does not run the channel: desired STOPPED goes to
   * the database and the owner is told; with no live owner this node marks
   * it STOPPED itself (conditionally: a claim in between wins).
   */
  async stopRemote(id: string): Promise<ChannelRecord> {
    const { repo, lock, writer } = this.runs.ctx;
    await this.runs.load(id);
    const settled = this.#waitForStatus(id, (c) => c.status === 'STOPPED' || c.status === 'ERROR');
    await repo.setDesired(id, 'STOPPED');
    this.cluster.desiredChanged(id, 'STOPPED');
    if (await this.cluster.ownedElsewhere(id)) {
      await settled;
      return this.runs.load(id);
    }
    settled.cancel();
    return lock.run(id, async () => {
      const now = await this.runs.load(id);
      if (!isActive(now.status)) return now;
      try {
        return await writer.transition(id, 'STOPPED', { workerId: null, stoppedAt: new Date() }, { unowned: true });
      } catch (err) {
        if (!(err instanceof LeaseLostError)) throw err;
        return this.runs.load(id); // claimed meanwhile: its owner has heard of the stop
      }
    });
  }

  /** Resolves when a status event of `id` satisfies `done`, or after the settle time; never rejects. */
  #waitForStatus(id: string, done: (c: StatusChange) => boolean): Promise<void> & { cancel(): void } {
    let finish!: () => void;
    const p = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const unsubscribe = this.events.subscribe((c) => {
      if (c.id === id && done(c)) finish();
    });
    const timer = setTimeout(() => finish(), this.runs.ctx.config.startTimeoutMs + clusterSettleMarginMs);
    const waited = p.finally(() => {
      clearTimeout(timer);
      unsubscribe();
    });
    return Object.assign(waited, { cancel: () => finish() });
  }

  /**
   * This node has just claimed the channel's lease (src/cluster/). A channel
   * that was running elsewhere is taken over (RECONNECTING, then LIVING); one
   * an operator just asked to start follows the start policy (ERROR and
   * desired STOPPED when it fails).
   */
  runClaimed(id: string): void {
    const cluster = this.cluster;
    const { repo, lock, writer, runner, config, origin } = this.runs.ctx;
    if (!this.accepting()) {
      void cluster.release(id).catch(() => undefined);
      return;
    }
    if (this.runs.has(id)) return;
    const run = this.runs.create(id);
    void lock
      .run(id, async () => {
        if (!run.current) return;
        const now = await repo.get(id);
        if (!now || now.desiredState !== 'RUNNING') {
          this.runs.drop(id);
          await cluster.release(id);
          return;
        }
        if (isActive(now.status)) {
          await writer.transition(id, 'RECONNECTING', { workerId: null });
          await run.reconnectLocked(now, 'taken over from another node');
          return;
        }
        await writer.transition(id, 'STARTING', { errorString: null, workerId: null });
        let reason: string | null;
        try {
          reason = await run.launch(now, await buildPipelineSpec(now, config, origin));
        } catch (err) {
          reason = err instanceof Error ? err.message : String(err);
        }
        if (reason === null || run.abort.signal.aborted) return;
        await run.failStart(reason);
        await cluster.release(id);
      })
      .catch((err: unknown) => {
        if (err instanceof LeaseLostError) return;
        this.log.error('claimed channel failed to start; giving the lease back', { channel: id, err: String(err) });
        // Leased with nothing running would be stuck: let a placement pass try again.
        if (this.runs.get(id) === run) {
          this.runs.drop(id);
          void runner.stopPipeline(id).catch(() => undefined);
          void cluster.release(id).catch(() => undefined);
        }
      });
  }

  /**
   * A playlist, loop or programme edit made on another node reaches this
   * node's running pipeline: the playlist here, the programme's slots by the
   * `edited` listener (src/schedule/programme-service.ts), after the lock.
   */
  onPlaylistChanged(id: string): void {
    if (!this.runs.has(id)) return;
    void this.runs.ctx.lock
      .run(id, async () => this.runs.sendPlaylist(await this.runs.load(id)))
      .then(() => this.edited(id))
      .catch((err: unknown) => this.log.warn('playlist from another node not applied', { channel: id, err: String(err) }));
  }

  /** An operator on some node changed the desired state (NOTIFY, or seen at lease renewal). */
  onDesiredChanged(id: string, desired: 'RUNNING' | 'STOPPED'): void {
    if (desired !== 'STOPPED' || !this.accepting()) return;
    if (!this.runs.has(id) && this.cluster.epochOf(id) === null) return;
    this.runs.get(id)?.abort.abort();
    void this.runs.ctx.lock
      .run(id, () => this.runs.stopLocked(id))
      .catch((err: unknown) => this.log.error('stop requested by another node failed', { channel: id, err: String(err) }));
  }

  /**
   * This node's lease on the channel is gone (renewal found another owner, or
   * a fenced write was refused). Stop the pipeline and forget it, writing
   * nothing: the channel's record is its new owner's now.
   */
  onLeaseLost(id: string): void {
    this.runs.get(id)?.abandon('lease lost');
    this.runs.drop(id);
    this.runs.ctx.warnings.clear(id);
    this.log.warn('lease lost; channel left to its new owner', { channel: id });
    void this.runs.ctx.runner.stopPipeline(id).catch(() => undefined);
  }

  /**
   * The node shuts down, under the channel's lock with its pipeline stopped:
   * handed over, not stopped. Still wanted RUNNING, another node claims it.
   */
  async handOverLocked(id: string, rec: ChannelRecord | null): Promise<void> {
    if (rec && isActive(rec.status) && this.cluster.epochOf(id) !== null) {
      await this.runs.ctx.writer.transition(id, 'RECONNECTING', { workerId: null, errorString: 'its node shut down; handing it over' }).catch(() => undefined);
    }
    await this.cluster.release(id).catch(() => undefined);
    // The other nodes claim it at their next heartbeat; this makes it now.
    this.cluster.desiredChanged(id, 'RUNNING');
  }
}
