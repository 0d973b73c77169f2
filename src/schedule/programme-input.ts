/**
 * Validation of a channel's wall-clock programme (setProgramme). Every
 * message names the field; nothing is written before this passes. What
 * needs the database (VOD ids, media compatibility) is checked by the
 * programme service after this.
 */
import type { AdBreakInput } from '../channels/ad-breaks.js';
import { badInput } from '../errors.js';
import { parseSourceUrl } from '../media/urls.js';
import { checkId } from '../names.js';
import { checkTimeZone, CronError } from './cron.js';
import { parseRfc3339 } from './input.js';
import { sinceDayStart, type EntryStart, type PlanEntry, type ProgrammePlan } from './programme-plan.js';

export interface ProgrammeEntryInput {
  /** An RFC 3339 date-time (a dated programme) or a time of day HH:MM[:SS] (a daily one). */
  start: string;
  vodResourceId?: string | null;
  playlist?: readonly string[] | null;
  sourceUrl?: string | null;
  durationSeconds?: number | null;
  /** Ad breaks of a single-file entry (checked against the file's length by the programme service). */
  breaks?: readonly AdBreakInput[] | null;
}

export interface ProgrammeInput {
  timeZone?: string | null;
  /** HH:MM[:SS] on the zone's wall clock; default 00:00. */
  dayStart?: string | null;
  /** The filler: one VOD resource, or a playlist of them (fillerPlaylist); exactly one of the two. */
  fillerVodResourceId?: string | null;
  fillerPlaylist?: readonly string[] | null;
  entries: readonly ProgrammeEntryInput[];
}

export const programmeLimits = {
  entriesMax: 500,
  itemsPerEntryMax: 50,
  durationSecondsMax: 7 * 86_400,
} as const;

const timeOfDay = /^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$/;

/** Seconds of the day of HH:MM[:SS]; null when it is not one. */
export function parseTimeOfDay(text: string): number | null {
  const m = timeOfDay.exec(text);
  return m === null ? null : Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] ?? 0);
}

/** HH:MM:SS of seconds of the day. */
export const formatTimeOfDay = (s: number): string => [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60].map((n) => String(n).padStart(2, '0')).join(':');

/** An entry's start as given: a time of day (daily) or an RFC 3339 date-time (dated); null when it is neither. */
export function entryStartOf(text: string): EntryStart | null {
  const day = parseTimeOfDay(text);
  if (day !== null) return { kind: 'daily', secondOfDay: day };
  const at = parseRfc3339(text);
  return at === null ? null : { kind: 'at', ms: at.getTime() };
}

function parseStart(text: string, i: number): EntryStart {
  const start = entryStartOf(text);
  if (start !== null) return start;
  throw badInput(`entries[${i}].start`, 'must be an RFC 3339 date-time (2026-12-06T20:00:00+01:00) or a time of day (20:00 or 20:00:30)');
}

/** An entry's content: its VOD ids in order, or a live source (no items). */
function entryContent(e: ProgrammeEntryInput, i: number): { items: string[]; sourceUrl: string | null } {
  const field = `entries[${i}]`;
  const given = [e.vodResourceId != null, e.playlist != null, e.sourceUrl != null].filter(Boolean).length;
  if (given !== 1) throw badInput(field, 'give exactly one of vodResourceId, playlist and sourceUrl');
  if (e.sourceUrl != null) {
    // The same rules (schemes, codes) as a relay's source and a playlist's live item.
    parseSourceUrl(e.sourceUrl, `${field}.sourceUrl`);
    // A live source has no length of its own: without one it would hold the air until the next entry, or for good.
    if (e.durationSeconds == null) throw badInput(`${field}.durationSeconds`, 'a live-source entry (sourceUrl) needs durationSeconds');
    if ((e.breaks ?? []).length > 0) throw badInput(`${field}.breaks`, 'ad breaks need a single-file entry (vodResourceId)');
    return { items: [], sourceUrl: e.sourceUrl };
  }
  if (e.vodResourceId != null) return { items: [checkId(`${field}.vodResourceId`, e.vodResourceId)], sourceUrl: null };
  // Offsets are in one file's time; in a playlist they would need an item each (a playlist's own items take breaks).
  if ((e.breaks ?? []).length > 0) throw badInput(`${field}.breaks`, 'ad breaks need a single-file entry (vodResourceId)');
  const list = e.playlist ?? [];
  if (list.length === 0 || list.length > programmeLimits.itemsPerEntryMax) throw badInput(`${field}.playlist`, `must name 1 to ${programmeLimits.itemsPerEntryMax} VOD resources`);
  return { items: list.map((id) => checkId(`${field}.playlist`, id)), sourceUrl: null };
}

/**
 * The programme as the planner takes it.
 * @throws BAD_USER_INPUT naming the field: an unknown zone, a malformed day
 *   start or entry start, dated and daily entries mixed, entries out of order
 *   or overlapping (a duration past the next entry's start), a duration out
 *   of range, an entry with no or several contents, a live-source entry
 *   without durationSeconds, no filler or two (fillerVodResourceId and
 *   fillerPlaylist), breaks on a playlist or live-source entry;
 *   URL_NOT_ALLOWED (entries[i].sourceUrl) as for any source URL.
 */
export function validateProgramme(input: ProgrammeInput): ProgrammePlan & { filler: string[] } {
  let timeZone: string;
  try {
    timeZone = checkTimeZone(input.timeZone ?? 'UTC');
  } catch (err) {
    if (err instanceof CronError) throw badInput('timeZone', err.message);
    throw err;
  }
  const dayStartSecond = input.dayStart == null ? 0 : parseTimeOfDay(input.dayStart);
  if (dayStartSecond === null) throw badInput('dayStart', 'must be a time of day, HH:MM or HH:MM:SS');
  if ((input.fillerVodResourceId == null) === (input.fillerPlaylist == null)) throw badInput('fillerVodResourceId', 'give exactly one of fillerVodResourceId and fillerPlaylist');
  const given = input.fillerPlaylist ?? [input.fillerVodResourceId ?? ''];
  if (given.length === 0 || given.length > programmeLimits.itemsPerEntryMax) throw badInput('fillerPlaylist', `must name 1 to ${programmeLimits.itemsPerEntryMax} VOD resources`);
  const filler = given.map((id) => checkId(input.fillerPlaylist != null ? 'fillerPlaylist' : 'fillerVodResourceId', id));
  if (input.entries.length > programmeLimits.entriesMax) throw badInput('entries', `at most ${programmeLimits.entriesMax} entries`);
  const entries: PlanEntry[] = input.entries.map((e, i) => {
    const d = e.durationSeconds;
    if (d != null && !(Number.isFinite(d) && d >= 1 && d <= programmeLimits.durationSecondsMax)) throw badInput(`entries[${i}].durationSeconds`, `must be 1 to ${programmeLimits.durationSecondsMax}`);
    return { start: parseStart(e.start, i), durationMs: d == null ? null : Math.round(d * 1000), ...entryContent(e, i) };
  });
  const daily = entries.filter((e) => e.start.kind === 'daily').length;
  if (daily !== 0 && daily !== entries.length) throw badInput('entries', 'either every start is a time of day (a daily programme) or every one a date-time, not both');
  // Where each entry starts in its day (daily: seconds from dayStart) or in time (dated), ms.
  const key = (e: PlanEntry): number => (e.start.kind === 'at' ? e.start.ms : sinceDayStart(e.start.secondOfDay, dayStartSecond) * 1000);
  entries.forEach((e, i) => {
    const next = entries[i + 1];
    const nextKey = next !== undefined ? key(next) : daily > 0 ? (entries[0] === undefined ? 0 : key(entries[0])) + 86_400_000 : Infinity;
    if (next !== undefined && nextKey <= key(e)) throw badInput(`entries[${i + 1}].start`, `must be after entries[${i}]'s start${daily > 0 ? ' in the day from dayStart' : ''}`);
    if (e.durationMs !== null && key(e) + e.durationMs > nextKey) throw badInput(`entries[${i}].durationSeconds`, `runs past the next entry's start${next === undefined ? ' (the first entry of the next day)' : ''}`);
  });
  return { timeZone, dayStartSecond, entries, filler };
}
