/**
 * The wall-clock programme of a channel (issue #22 item 1), planned: which
 * entry is on at an instant, and the run of occurrences in a window. Pure,
 * with the clock passed in, so a whole day (a DST day too) is tested in
 * milliseconds.
 *
 * - An entry starts at an RFC 3339 instant (a dated programme, played once)
 *   or at a time of day (a daily programme, every day). A daily programme's
 *   day begins at `dayStart` in `timeZone`: a time of day before dayStart
 *   belongs to the next calendar date, so entries are in order from dayStart.
 * - Times of day are read on the zone's wall clock with the schedules' DST
 *   rules (src/schedule/cron.ts, RFC 5545's "compatible"): a time that occurs
 *   twice is its first occurrence, one that does not occur (spring forward)
 *   is as far after the change as it was into the gap.
 * - An occurrence's content plays from its start until `endMs` (start +
 *   durationSeconds, never past the next entry's start); the filler plays
 *   from the content's end until `untilMs`, the next entry's start.
 *
 * Owns: these rules. Imports cron.ts (the zone's wall clock).
 */
import { wallMs, wallToInstant } from './cron.js';

const dayMs = 86_400_000;

export type EntryStart = { readonly kind: 'at'; readonly ms: number } | { readonly kind: 'daily'; readonly secondOfDay: number };

export interface PlanEntry {
  readonly start: EntryStart;
  /** How long its content may play, ms; null: its items' own length (up to the next entry). */
  readonly durationMs: number | null;
  /** VOD resource ids played in order; none for a live-source entry. */
  readonly items: readonly string[];
  /** A live-source entry's URL, played from its start for durationMs; null: a VOD entry. */
  readonly sourceUrl: string | null;
}

export interface ProgrammePlan {
  readonly timeZone: string;
  /** Second of the day (zone's wall clock) at which a daily programme's day begins. */
  readonly dayStartSecond: number;
  /** In programme order (dated: by instant; daily: by time of day from dayStart). */
  readonly entries: readonly PlanEntry[];
}

/** One occurrence of an entry, ms since the epoch. */
export interface Occurrence {
  /** Index of the entry in the programme. */
  readonly entry: number;
  readonly startMs: number;
  /** The content plays until this at the latest (its duration, or the next entry's start). */
  readonly endMs: number;
  /** The next entry's start; Infinity after a dated programme's last entry. */
  readonly untilMs: number;
}

/** Seconds from dayStart to `secondOfDay`, in [0, 1 day). */
export const sinceDayStart = (secondOfDay: number, dayStartSecond: number): number => (((secondOfDay - dayStartSecond) % 86_400) + 86_400) % 86_400;

/** Starts of every entry on the programme day that begins on local date `dateUtcMs` (a UTC-encoded midnight). */
function dayStarts(p: ProgrammePlan, dateUtcMs: number): { entry: number; startMs: number }[] {
  const day = p.entries.map((e, entry) => {
    const s = e.start.kind === 'daily' ? e.start.secondOfDay : 0;
    const date = s >= p.dayStartSecond ? dateUtcMs : dateUtcMs + dayMs;
    return { entry, startMs: wallToInstant(date + s * 1000, p.timeZone) };
  });
  // Spring forward moves a time in the gap an hour on, maybe onto or past the
  // next entry's start: that day, the next entry plays in its place.
  return day.filter((s, i) => (day[i + 1]?.startMs ?? Infinity) > s.startMs);
}

/** The starts of the entries from a little before `fromMs` to a little after `toMs`, in time order. */
function starts(p: ProgrammePlan, fromMs: number, toMs: number): { entry: number; startMs: number }[] {
  if (p.entries.length === 0) return [];
  if (p.entries.every((e) => e.start.kind === 'at')) return p.entries.map((e, entry) => ({ entry, startMs: e.start.kind === 'at' ? e.start.ms : 0 }));
  const out: { entry: number; startMs: number }[] = [];
  // Local midnights from two days before to two days after: a programme day spans at most two dates.
  const first = Math.floor(wallMs(fromMs, p.timeZone) / dayMs) * dayMs - 2 * dayMs;
  const last = Math.floor(wallMs(toMs, p.timeZone) / dayMs) * dayMs + 2 * dayMs;
  for (let d = first; d <= last; d += dayMs) out.push(...dayStarts(p, d));
  return out.sort((a, b) => a.startMs - b.startMs);
}

/** The occurrences that overlap [fromMs, toMs): their content or the filler after it. */
export function occurrences(p: ProgrammePlan, fromMs: number, toMs: number): Occurrence[] {
  const list = starts(p, fromMs, toMs);
  const out: Occurrence[] = [];
  for (let i = 0; i < list.length; i++) {
    const s = list[i];
    if (s === undefined) continue;
    const untilMs = list[i + 1]?.startMs ?? Infinity;
    if (untilMs <= fromMs || s.startMs >= toMs) continue;
    const d = p.entries[s.entry]?.durationMs ?? null;
    out.push({ entry: s.entry, startMs: s.startMs, endMs: d === null ? untilMs : Math.min(s.startMs + d, untilMs), untilMs });
  }
  return out;
}

/**
 * What is on at `nowMs`: the occurrence whose content window holds it
 * (`filler` false), the one whose filler does (`filler` true), or null
 * before a programme's first entry.
 */
export function onAt(p: ProgrammePlan, nowMs: number): { occurrence: Occurrence; filler: boolean } | null {
  const hit = occurrences(p, nowMs, nowMs + 1).find((o) => o.startMs <= nowMs && nowMs < o.untilMs);
  return hit === undefined ? null : { occurrence: hit, filler: nowMs >= hit.endMs };
}
