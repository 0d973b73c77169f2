/**
 * The runs of this node: at most one ChannelRun per channel, created when
 * the channel is taken and dropped (its timers cleared) when it stops,
 * gives up or is handed over. The stop itself lives here too, because the
 * service, the reconciler and the cluster side all end a run the same way.
 *
 * Owns: the table of runs, the stop under the lock, and the end of every
 * run at shutdown, the playlist sent to a running pipeline. Imports run.ts,
 * spec.ts, status.ts, repository.ts and errors.ts.
 */
import { notFound } from '../errors.js';
import type { ChannelRecord } from './repository.js';
import { ChannelRun, type RunContext } from './run.js';
import { vodItems } from './spec.js';
import type { ProgrammeSpec } from '../pool/pipeline-spec.js';
import { isActive } from './status.js';

export class Runs {
  readonly #runs = new Map<string, ChannelRun>();
  readonly ctx: RunContext;

  constructor(deps: Omit<RunContext, 'runOf' | 'drop'>) {
    this.ctx = { ...deps, runOf: (id) => this.#runs.get(id), drop: (id) => this.drop(id) };
  }

  /** A fresh run of the channel, replacing (and dropping) any earlier one. */
  create(id: string): ChannelRun {
    this.drop(id);
    const run = new ChannelRun(id, this.ctx);
    this.#runs.set(id, run);
    return run;
  }

  get(id: string): ChannelRun | undefined {
    return this.#runs.get(id);
  }

  has(id: string): boolean {
    return this.#runs.has(id);
  }

  drop(id: string): void {
    this.#runs.get(id)?.dispose();
    this.#runs.delete(id);
  }

  get size(): number {
    return this.#runs.size;
  }

  ids(): string[] {
    return [...this.#runs.keys()];
  }

  all(): ChannelRun[] {
    return [...this.#runs.values()];
  }

  /** A running VOD channel's playlist and loop, as `rec` has them now: the pipeline takes them at its next item boundary. */
  async sendPlaylist(rec: ChannelRecord, programme?: ProgrammeSpec): Promise<void> {
    // A programme picks the items by time: its own sends (src/schedule/programme-service.ts) carry it.
    if (rec.programme !== null && programme === undefined) return;
    const items = await vodItems(rec, this.ctx.config);
    if (this.ctx.runner.updatePlaylist(rec.id, items, rec.programme !== null || rec.loop, programme)) this.ctx.log.info('playlist sent to the running channel', { channel: rec.id, items: items.length });
  }

  /** The channel's record. @throws NOT_FOUND */
  async load(id: string): Promise<ChannelRecord> {
    const rec = await this.ctx.repo.get(id);
    if (!rec) throw notFound('virtual live', id);
    return rec;
  }

  /**
   * Shutdown: every run aborted and, under its lock, forgotten with its
   * pipeline stopped; then `handOver` (cluster mode) settles the record, or
   * else an active channel is marked STOPPED, its desired state kept.
   */
  async endAll(handOver?: (id: string, rec: ChannelRecord | null) => Promise<void>): Promise<void> {
    const { lock, runner, repo, writer } = this.ctx;
    const ids = this.ids();
    for (const id of ids) this.#runs.get(id)?.abort.abort();
    await Promise.all(
      ids.map((id) =>
        lock.run(id, async () => {
          this.drop(id);
          await runner.stopPipeline(id).catch(() => undefined);
          const rec = await repo.get(id);
          if (handOver) await handOver(id, rec);
          else if (rec && isActive(rec.status)) await writer.transition(id, 'STOPPED', { workerId: null, stoppedAt: new Date() });
        }),
      ),
    );
  }

  /**
   * Under the channel's lock: desired STOPPED, the run forgotten, the
   * pipeline stopped, STOPPED with `reason` as stopReason, and in a cluster
   * the lease given back.
   */
  async stopLocked(id: string, reason: string | null = null): Promise<ChannelRecord> {
    const { repo, runner, writer, cluster } = this.ctx;
    const rec = await this.load(id);
    if (rec.desiredState !== 'STOPPED') await repo.setDesired(id, 'STOPPED');
    this.drop(id);
    if (rec.status === 'STOPPED') {
      await cluster?.release(id);
      return this.load(id);
    }
    await runner.stopPipeline(id);
    const stopped = await writer.transition(id, 'STOPPED', { workerId: null, stoppedAt: new Date(), stopReason: reason });
    await cluster?.release(id);
    return stopped;
  }
}
