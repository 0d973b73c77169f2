/**
 * Five-field cron (minute hour day-of-month month day-of-week), evaluated in
 * an IANA time zone. Pure: no clock, no I/O; the scheduler passes `after`.
 *
 * Dialect (Vixie cron's): `*`, numbers, ranges `a-b`, steps `*\/n` `a-b/n`
 * `a/n`, lists `a,b-c`; month names JAN-DEC and day names SUN-SAT (any case);
 * day-of-week 0-7 with both 0 and 7 Sunday. When both day-of-month and
 * day-of-week are restricted (neither starts with `*`), a day matches if
 * either matches, as in Vixie cron. Minute precision: runs fall on whole minutes.
 *
 * Time zones and DST: matching is done on the zone's wall clock, and a
 * matching wall time becomes an instant the way RFC 5545 and JavaScript's
 * Temporal ('compatible') do it:
 *   - a wall time that occurs twice (clocks go back) runs once, at the first
 *     occurrence;
 *   - a wall time that does not exist (clocks go forward) runs at the same
 *     distance after the gap, e.g. 02:30 on a spring-forward night in
 *     Europe/Berlin runs at 03:30 CEST, so a daily start is never lost.
 */

export interface CronSpec {
  readonly minutes: ReadonlySet<number>;
  readonly hours: ReadonlySet<number>;
  readonly daysOfMonth: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  /** 0 = Sunday. */
  readonly daysOfWeek: ReadonlySet<number>;
  /** Day-of-month or day-of-week was `*`-based; decides the OR rule. */
  readonly domStar: boolean;
  readonly dowStar: boolean;
}

export class CronError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CronError';
  }
}

const monthNames = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const dayNames = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface FieldDef {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  /** Names for min, min+1, …; matched case-insensitively. */
  readonly names?: readonly string[];
}

const fieldDefs: readonly FieldDef[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: monthNames },
  // 7 is Sunday too; folded to 0 after parsing.
  { name: 'day of week', min: 0, max: 7, names: dayNames },
];

function parseValue(text: string, def: FieldDef): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < def.min || n > def.max) throw new CronError(`${def.name}: ${n} is out of range ${def.min}-${def.max}`);
    return n;
  }
  const i = def.names?.indexOf(text.toUpperCase()) ?? -1;
  if (i < 0) throw new CronError(`${def.name}: ${JSON.stringify(text)} is not a number${def.names ? ' or a name' : ''}`);
  return def.min + i;
}

function parseField(text: string, def: FieldDef): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^([^/]+)(?:\/(\d+))?$/.exec(part);
    if (!m?.[1]) throw new CronError(`${def.name}: ${JSON.stringify(part)} is not a value, range or step`);
    const step = m[2] === undefined ? 1 : Number(m[2]);
    if (step < 1 || step > def.max) throw new CronError(`${def.name}: step ${m[2]} is out of range 1-${def.max}`);
    let lo: number;
    let hi: number;
    if (m[1] === '*') {
      lo = def.min;
      hi = def.max;
    } else if (m[1].includes('-')) {
      const [a, b, ...rest] = m[1].split('-');
      if (a === undefined || b === undefined || rest.length > 0) throw new CronError(`${def.name}: ${JSON.stringify(m[1])} is not a range`);
      lo = parseValue(a, def);
      hi = parseValue(b, def);
      if (lo > hi) throw new CronError(`${def.name}: range ${m[1]} runs backwards`);
    } else {
      lo = parseValue(m[1], def);
      // `a/n` means from a to the end, stepping n (Vixie cron).
      hi = m[2] === undefined ? lo : def.max;
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

/** Parses five whitespace-separated fields; throws CronError naming the field. */
export function parseCron(expr: string): CronSpec {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5) throw new CronError(`expected 5 fields (minute hour day-of-month month day-of-week), got ${parts.length}`);
  const [mi, h, dom, mon, dow] = parts.map((p, i) => parseField(p, fieldDefs[i] as FieldDef)) as [Set<number>, Set<number>, Set<number>, Set<number>, Set<number>];
  if (dow.delete(7)) dow.add(0);
  return {
    minutes: mi,
    hours: h,
    daysOfMonth: dom,
    months: mon,
    daysOfWeek: dow,
    domStar: (parts[2] ?? '').startsWith('*'),
    dowStar: (parts[4] ?? '').startsWith('*'),
  };
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws CronError unless `timeZone` is an IANA zone this runtime knows. */
export function checkTimeZone(timeZone: string): string {
  try {
    // Intl accepts some aliases and offsets; a zone name is what we store.
    return formatter(timeZone).resolvedOptions().timeZone;
  } catch {
    throw new CronError(`unknown time zone ${JSON.stringify(timeZone)}; use an IANA name such as Europe/Berlin`);
  }
}

/** The zone's wall clock at `ms`, as milliseconds of a UTC date with the same fields. */
export function wallMs(ms: number, timeZone: string): number {
  const p: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(new Date(ms))) {
    if (part.type !== 'literal') p[part.type] = Number(part.value);
  }
  const utc = Date.UTC(p['year'] ?? 1970, (p['month'] ?? 1) - 1, p['day'] ?? 1, p['hour'] ?? 0, p['minute'] ?? 0, p['second'] ?? 0);
  return utc + (((ms % 1000) + 1000) % 1000);
}

/** The zone's UTC offset at instant `ms`, in ms. */
function offsetAt(ms: number, timeZone: string): number {
  return wallMs(ms, timeZone) - ms;
}

/**
 * The instant of wall time `wall` (UTC-encoded) in the zone: the earlier one
 * when it occurs twice, shifted forward by the gap when it does not occur.
 */
export function wallToInstant(wall: number, timeZone: string): number {
  const day = 86_400_000;
  const before = offsetAt(wall - day, timeZone);
  const after = offsetAt(wall + day, timeZone);
  const candidates = [wall - before, wall - after].filter((t) => wallMs(t, timeZone) === wall);
  if (candidates.length > 0) return Math.min(...candidates);
  // In the gap: the offset before the change puts it as far past the gap as it was into it.
  return wall - before;
}

function dayMatches(spec: CronSpec, d: Date): boolean {
  const dom = spec.daysOfMonth.has(d.getUTCDate());
  const dow = spec.daysOfWeek.has(d.getUTCDay());
  if (spec.domStar || spec.dowStar) return dom && dow;
  return dom || dow;
}

/** Search horizon: a spec with no run in this many years never runs (e.g. 30 February). */
const horizonYears = 8;

/**
 * The first run strictly after `after` (ms since epoch), in ms; null when the
 * spec never matches a real date.
 */
export function nextRun(spec: CronSpec, timeZone: string, after: number): number | null {
  const minute = 60_000;
  const hour = 3_600_000;
  // Start at the wall minute after `after`, read with the smaller of the offsets
  // now and three hours ago: just after a spring-forward gap, a gap time shifted
  // past `after` (02:30 → 03:30) must still be found.
  const startWall = Math.min(wallMs(after, timeZone), after + offsetAt(after - 3 * hour, timeZone));
  let w = Math.floor(startWall / minute) * minute + minute;
  const end = w + horizonYears * 366 * 86_400_000;
  // Wall order and instant order differ only around a transition (a shifted gap
  // time can land after a later wall time), so the first match is compared with
  // the matches of the next three wall hours.
  let best: number | null = null;
  let stopAt = end;
  while (w < end && w <= stopAt) {
    const d = new Date(w);
    if (!spec.months.has(d.getUTCMonth() + 1)) {
      w = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
      continue;
    }
    if (!dayMatches(spec, d)) {
      w = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
      continue;
    }
    if (!spec.hours.has(d.getUTCHours())) {
      w = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours() + 1);
      continue;
    }
    if (spec.minutes.has(d.getUTCMinutes())) {
      // A time that occurs twice maps to its first instant, so it cannot run twice.
      const t = wallToInstant(w, timeZone);
      if (t > after && (best === null || t < best)) {
        if (best === null) stopAt = w + 3 * hour;
        best = t;
      }
    }
    w += minute;
  }
  return best;
}
