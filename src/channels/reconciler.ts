/**
 * The reconciler: moves the observed state towards the desired one after a
 * start of the service and then every few seconds, so that whatever slipped
 * past the event-driven paths (a lost message, a crash in between) is put
 * right. Safe to run again: it acts only on channels with no run here, and
 * checks each record again under the channel's lock.
 *
 * Owns: the reconcile pass and its interval. Imports runs.ts, status.ts,
 * repository.ts and log.ts.
 */
import type { Logger } from '../log.js';
import { LeaseLostError } from './repository.js';
import type { Runs } from './runs.js';
import { isActive } from './status.js';

export class Reconciler {
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly runs: Runs,
    private readonly log: Logger,
    private readonly accepting: () => boolean,
  ) {}

  /**
   * At start-up on a single node, before the API answers: channels the last
   * process left LIVING or STARTING have no pipeline now, so they are
   * RECONNECTING ("the service restarted") until their new pipelines prove
   * flow. Without this a client polling from the first answer saw LIVING
   * for streams that reached the origin only seconds later. Returns how many.
   */
  async markResuming(): Promise<number> {
    const { repo, writer, lock, cluster } = this.runs.ctx;
    // In a cluster a restarted node owns nothing until it claims leases.
    if (cluster) return 0;
    let n = 0;
    for (const { id } of await repo.listDesiredRunning()) {
      await lock.run(id, async () => {
        const now = await repo.get(id);
        if (!now || this.runs.has(id) || (now.status !== 'LIVING' && now.status !== 'STARTING')) return;
        await writer.transition(id, 'RECONNECTING', { workerId: null, errorString: 'the service restarted; resuming the channel' });
        n += 1;
      });
    }
    return n;
  }

  /**
   * One pass: running channels follow an hls changed where no update here
   * saw it; channels wanted STOPPED but recorded as active (a crash left
   * them) are marked STOPPED; on a single node, channels wanted RUNNING with
   * no run are started again.
   */
  async reconcile(): Promise<void> {
    const { repo, writer, lock, cluster } = this.runs.ctx;
    const running = this.runs.all().filter((run) => run.hls !== null);
    if (running.length > 0) {
      for (const { id, hls } of await repo.hlsOf(running.map((run) => run.id))) {
        const run = this.runs.get(id);
        if (run && run.hls !== hls) run.followHls();
      }
    }
    for (const { id } of await repo.listStaleActive()) {
      if (this.runs.has(id)) continue;
      await lock.run(id, async () => {
        // Checked again under the lock: a stop or start may have settled it meanwhile.
        const now = await repo.get(id);
        if (!now || now.desiredState !== 'STOPPED' || !isActive(now.status) || this.runs.has(id)) return;
        // In a cluster the write lands only if no node holds a live lease on it.
        await writer.transition(id, 'STOPPED', { workerId: null, stoppedAt: new Date() }, { unowned: cluster !== undefined }).catch((err: unknown) => {
          if (!(err instanceof LeaseLostError)) throw err;
        });
      });
    }
    // In a cluster, channels wanted RUNNING are placed by lease claims (src/cluster/leases.ts).
    if (cluster) return;
    for (const { id } of await repo.listDesiredRunning()) {
      if (this.runs.has(id)) continue;
      const run = this.runs.create(id);
      void lock
        .run(id, async () => {
          const now = await repo.get(id);
          if (this.runs.get(id) !== run) return;
          if (!now || now.desiredState !== 'RUNNING') {
            this.runs.drop(id);
            return;
          }
          if (now.status === 'LIVING' || now.status === 'STARTING') {
            await writer.transition(id, 'RECONNECTING', { workerId: null });
          } else if (now.status === 'ERROR' || now.status === 'STOPPED') {
            await writer.transition(id, 'STARTING', { workerId: null });
          }
          await run.reconnectLocked(now, 'reconciled: wanted RUNNING but not running');
        })
        .catch((err: unknown) => this.log.error('reconcile failed', { channel: id, err: String(err) }));
    }
  }

  /** Runs reconcile() every intervalMs, one pass at a time, while the service accepts work. */
  start(intervalMs: number): void {
    let passing = false;
    this.#timer = setInterval(() => {
      if (passing || !this.accepting()) return;
      passing = true;
      this.reconcile()
        .catch((err: unknown) => this.log.error('reconcile pass failed', { err: String(err) }))
        .finally(() => (passing = false));
    }, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}
