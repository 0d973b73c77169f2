/**
 * Timed starts and stops. A loop looks for due runs every interval, claims
 * each one in the database (ScheduleRepository.claim) before acting, and
 * moves the schedule on to its next run at the same time, so a run fires
 * once even with several instances on one database, and again never after a
 * restart.
 *
 * Missed runs (the service was down, or busy): a run found late by at most
 * the grace period still fires; an older one is skipped, logged, and
 * recorded in lastResult. A cron schedule that missed several runs fires at
 * most once and goes on from now.
 */
import type { ChannelRecord } from '../channels/repository.js';
import type { ChannelService } from '../channels/service.js';
import { badInput, notFound } from '../errors.js';
import type { Logger } from '../log.js';
import { nextRun, parseCron } from './cron.js';
import { scheduleLimits, validateSchedule, type ScheduleAction, type ScheduleInput } from './input.js';
import type { Schedule, ScheduleRepository } from './repository.js';

export type RunOutcome = 'done' | 'failed' | 'skipped';

export interface SchedulerDeps {
  repo: ScheduleRepository;
  channels: Pick<ChannelService, 'get' | 'start' | 'stopFor'>;
  /** A run found later than this after its time is skipped, ms. */
  graceMs: number;
  log: Logger;
  /** Counts runs by action and outcome (metrics). */
  onRun?: (action: ScheduleAction, outcome: RunOutcome) => void;
  /** Loop period, ms. Default 500: one-off times have second precision. */
  intervalMs?: number;
}

/** Due runs taken per pass; the next pass takes the rest. */
const batch = 100;

/** How long a known soonest run is trusted: another node of a cluster may add a sooner one. */
const soonestTrustMs = 5_000;

export class Scheduler {
  #loop: NodeJS.Timeout | null = null;
  #passing = false;
  /**
   * The soonest run when last looked (Infinity: none), and when that was. Until
   * then a pass has nothing to do, so the loop skips its query: twice a second
   * on every node was a steady cost for the many nodes with few schedules
   * (issue #16). An add or remove here forgets it.
   */
  #soonest: { at: number; readAt: number } | null = null;
  /** Moved by every add and remove here: a soonest read across one is not kept. */
  #edits = 0;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(private readonly deps: SchedulerDeps) {}

  async add(virtualLiveId: string, input: ScheduleInput): Promise<Schedule> {
    const fields = validateSchedule(input, Date.now());
    if (!(await this.deps.channels.get(virtualLiveId))) throw notFound('virtual live', virtualLiveId);
    if ((await this.deps.repo.count(virtualLiveId)) >= scheduleLimits.perChannelMax) {
      throw badInput('virtualLiveId', `a channel has at most ${scheduleLimits.perChannelMax} schedules`);
    }
    const s = await this.deps.repo.create(virtualLiveId, fields);
    this.#forgetSoonest();
    this.deps.log.info('schedule added', { schedule: s.id, channel: virtualLiveId, action: s.action, nextRunAt: s.nextRunAt?.toISOString() ?? null });
    return s;
  }

  async remove(id: string): Promise<string> {
    if (!(await this.deps.repo.delete(id))) throw notFound('schedule', id);
    this.#forgetSoonest();
    this.deps.log.info('schedule removed', { schedule: id });
    return id;
  }

  #forgetSoonest(): void {
    this.#soonest = null;
    this.#edits++;
  }

  list(virtualLiveId: string): Promise<Schedule[]> {
    return this.deps.repo.list(virtualLiveId);
  }

  next(virtualLiveId: string): Promise<Schedule | null> {
    return this.deps.repo.next(virtualLiveId);
  }

  /** One pass: claims and fires every run due at `now`. Actions go on in the background. */
  async runDue(now = Date.now()): Promise<void> {
    for (const s of await this.deps.repo.due(new Date(now), batch)) {
      const seen = s.nextRunAt;
      if (seen === null) continue;
      const lateMs = now - seen.getTime();
      let next: Date | null = null;
      let broken: string | null = null;
      if (s.cron !== null) {
        try {
          const t = nextRun(parseCron(s.cron), s.timeZone ?? 'UTC', Math.max(now, seen.getTime()));
          next = t === null ? null : new Date(t);
        } catch (err) {
          // Validated when it was added; a bad row can only come from outside.
          broken = `failed: ${(err as Error).message}`;
        }
      }
      const skip = broken === null && lateMs > this.deps.graceMs;
      const result = broken ?? (skip ? `skipped: due ${seen.toISOString()}, found ${Math.round(lateMs / 1000)} s late (grace ${Math.round(this.deps.graceMs / 1000)} s)` : 'running');
      if (!(await this.deps.repo.claim(s.id, seen, next, new Date(now), result))) continue;
      const action = s.action as ScheduleAction;
      if (broken !== null || skip) {
        this.deps.log.warn(skip ? 'scheduled run skipped' : 'schedule is broken', { schedule: s.id, channel: s.virtualLiveId, action, result });
        this.deps.onRun?.(action, skip ? 'skipped' : 'failed');
        continue;
      }
      this.deps.log.info('scheduled run', { schedule: s.id, channel: s.virtualLiveId, action, dueAt: seen.toISOString(), lateMs });
      const p = this.#act(s, action).finally(() => this.#inFlight.delete(p));
      this.#inFlight.add(p);
    }
  }

  async #act(s: Schedule, action: ScheduleAction): Promise<void> {
    let result: string;
    let outcome: RunOutcome = 'done';
    try {
      let rec: ChannelRecord | null;
      if (action === 'START') {
        rec = await this.deps.channels.start(s.virtualLiveId);
        result = rec.status === 'LIVING' ? 'started' : `failed: ${rec.errorString ?? rec.status}`;
        if (rec.status !== 'LIVING') outcome = 'failed';
      } else {
        rec = await this.deps.channels.stopFor(s.virtualLiveId, `schedule ${s.id}`);
        result = 'stopped';
      }
    } catch (err) {
      result = `failed: ${(err as Error).message}`;
      outcome = 'failed';
    }
    this.deps.onRun?.(action, outcome);
    if (outcome === 'failed') this.deps.log.warn('scheduled run failed', { schedule: s.id, channel: s.virtualLiveId, action, result });
    // The schedule may have gone with its channel meanwhile; updateMany then changes nothing.
    await this.deps.repo.setResult(s.id, result).catch(() => undefined);
  }

  start(): void {
    const intervalMs = this.deps.intervalMs ?? 500;
    this.#loop = setInterval(() => {
      const now = Date.now();
      if (this.#passing || (this.#soonest !== null && now < this.#soonest.at && now - this.#soonest.readAt < soonestTrustMs)) return;
      this.#passing = true;
      this.runDue(now)
        .then(async () => {
          const [readAt, edits] = [Date.now(), this.#edits];
          const at = (await this.deps.repo.soonest())?.getTime() ?? Infinity;
          if (edits === this.#edits) this.#soonest = { at, readAt };
        })
        .catch((err: unknown) => this.deps.log.error('schedule pass failed', { err: String(err) }))
        .finally(() => (this.#passing = false));
    }, intervalMs);
    this.#loop.unref();
  }

  /** Stops the loop and waits for actions in progress. */
  async stop(): Promise<void> {
    if (this.#loop) clearInterval(this.#loop);
    this.#loop = null;
    await Promise.all([...this.#inFlight]);
  }
}
