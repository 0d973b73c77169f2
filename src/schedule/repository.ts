/**
 * Prisma access for schedules. A run is claimed by a conditional update on
 * nextRunAt, so when several service instances share one database, exactly
 * one of them fires each run.
 */
import type { PrismaClient, Schedule } from '../generated/prisma-sqlite/client.js';
import type { ScheduleFields } from './input.js';

export type { Schedule };

export class ScheduleRepository {
  constructor(private readonly db: PrismaClient) {}

  create(virtualLiveId: string, fields: ScheduleFields): Promise<Schedule> {
    return this.db.schedule.create({ data: { virtualLiveId, ...fields } });
  }

  get(id: string): Promise<Schedule | null> {
    return this.db.schedule.findUnique({ where: { id } });
  }

  async delete(id: string): Promise<boolean> {
    return (await this.db.schedule.deleteMany({ where: { id } })).count === 1;
  }

  list(virtualLiveId: string): Promise<Schedule[]> {
    return this.db.schedule.findMany({ where: { virtualLiveId }, orderBy: { createdAt: 'asc' } });
  }

  count(virtualLiveId: string): Promise<number> {
    return this.db.schedule.count({ where: { virtualLiveId } });
  }

  /** The channel's next run of any schedule. */
  next(virtualLiveId: string): Promise<Schedule | null> {
    return this.db.schedule.findFirst({ where: { virtualLiveId, nextRunAt: { not: null } }, orderBy: { nextRunAt: 'asc' } });
  }

  /** The time of the soonest run of any schedule; null when none has one. */
  async soonest(): Promise<Date | null> {
    return (await this.db.schedule.findFirst({ where: { nextRunAt: { not: null } }, orderBy: { nextRunAt: 'asc' }, select: { nextRunAt: true } }))?.nextRunAt ?? null;
  }

  /** Runs due at `now`, oldest first. */
  due(now: Date, limit: number): Promise<Schedule[]> {
    return this.db.schedule.findMany({ where: { nextRunAt: { lte: now } }, orderBy: { nextRunAt: 'asc' }, take: limit });
  }

  /**
   * Takes the run due at `seen` and moves the schedule on to `next`; false
   * when someone else took it first (nextRunAt is no longer `seen`).
   */
  async claim(id: string, seen: Date, next: Date | null, ranAt: Date, result: string): Promise<boolean> {
    const r = await this.db.schedule.updateMany({ where: { id, nextRunAt: seen }, data: { nextRunAt: next, lastRunAt: ranAt, lastResult: result } });
    return r.count === 1;
  }

  async setResult(id: string, result: string): Promise<void> {
    await this.db.schedule.updateMany({ where: { id }, data: { lastResult: result } });
  }
}
