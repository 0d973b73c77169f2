/**
 * Validation of schedule input. Every message names the field; nothing is
 * written before this passes.
 */
import { badInput } from '../errors.js';
import { checkTimeZone, CronError, nextRun, parseCron } from './cron.js';

export const scheduleActions = ['START', 'STOP'] as const;
export type ScheduleAction = (typeof scheduleActions)[number];

export interface ScheduleInput {
  action: string;
  /** One-off: an RFC 3339 instant in the future. */
  at?: string | null;
  /** Repeating: five cron fields. */
  cron?: string | null;
  /** IANA zone of the cron fields; default UTC. */
  timeZone?: string | null;
}

export interface ScheduleFields {
  action: ScheduleAction;
  at: Date | null;
  cron: string | null;
  timeZone: string | null;
  nextRunAt: Date;
}

export const scheduleLimits = {
  /** Schedules one channel may have. */
  perChannelMax: 50,
  cronMaxLength: 200,
} as const;

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Parses an RFC 3339 date-time (an offset or Z is required; fractions of a
 * second are kept to the millisecond). Null when it is not one, including
 * impossible dates such as 2026-02-30 and leap seconds.
 */
export function parseRfc3339(text: string): Date | null {
  const m = rfc3339.exec(text);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  const ms = m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0').slice(0, 3));
  if (mo < 1 || mo > 12 || h > 23 || mi > 59 || s > 59) return null;
  const local = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  // Date.UTC rolls 30 February over into March; a round trip catches it.
  if (new Date(local).getUTCDate() !== d) return null;
  let offsetMin = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return null;
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  return new Date(local - offsetMin * 60_000);
}

export function validateSchedule(input: ScheduleInput, nowMs: number): ScheduleFields {
  if (!(scheduleActions as readonly string[]).includes(input.action)) throw badInput('action', 'must be START or STOP');
  const action = input.action as ScheduleAction;
  const hasAt = input.at != null;
  const hasCron = input.cron != null;
  if (hasAt === hasCron) throw badInput(hasAt ? 'cron' : 'at', 'give either at (one-off) or cron (repeating), not both');
  if (input.at != null) {
    if (input.timeZone != null) throw badInput('timeZone', 'only a cron schedule has a time zone; at carries its own offset');
    const at = parseRfc3339(input.at);
    if (at === null) throw badInput('at', `${JSON.stringify(input.at.slice(0, 40))} is not an RFC 3339 date-time with an offset, e.g. 2026-11-25T21:00:00Z`);
    if (at.getTime() <= nowMs) throw badInput('at', `${at.toISOString()} is in the past`);
    return { action, at, cron: null, timeZone: null, nextRunAt: at };
  }
  const cron = (input.cron ?? '').trim();
  if (cron.length > scheduleLimits.cronMaxLength) throw badInput('cron', `at most ${scheduleLimits.cronMaxLength} characters`);
  let timeZone: string;
  try {
    timeZone = checkTimeZone(input.timeZone ?? 'UTC');
  } catch (err) {
    throw badInput('timeZone', (err as Error).message);
  }
  let next: number | null;
  try {
    next = nextRun(parseCron(cron), timeZone, nowMs);
  } catch (err) {
    if (err instanceof CronError) throw badInput('cron', err.message);
    throw err;
  }
  if (next === null) throw badInput('cron', `${JSON.stringify(cron)} matches no date`);
  return { action, at: null, cron, timeZone, nextRunAt: new Date(next) };
}
