/**
 * The wall-clock programme's planner (src/schedule/programme-plan.ts) and its
 * input rules, as pure functions with the clock passed in: a whole daily
 * programme walked minute by minute over an ordinary day and over both DST
 * change days of Europe/Berlin, a dated one with a gap for the filler, and
 * refused input. Every expected instant is written out by hand in UTC.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VliveError } from '../src/errors.js';
import { validateProgramme, type ProgrammeInput } from '../src/schedule/programme-input.js';
import { occurrences, onAt } from '../src/schedule/programme-plan.js';

const iso = (ms: number): string => new Date(ms).toISOString();
const at = (s: string): number => Date.parse(s);

/** A daily programme in Berlin whose day starts at 06:00: news 06:00 (30 min), film 20:00, night loop 01:00, 02:30 (in the spring gap). */
const daily: ProgrammeInput = {
  timeZone: 'Europe/Berlin',
  dayStart: '06:00',
  fillerVodResourceId: 'filler',
  entries: [
    { start: '06:00', vodResourceId: 'news', durationSeconds: 1800 },
    { start: '20:00', playlist: ['film-1', 'film-2'] },
    { start: '01:00', vodResourceId: 'night' },
    { start: '02:30:00', vodResourceId: 'late', durationSeconds: 600 },
  ],
};

function refused(input: ProgrammeInput, field: string): void {
  assert.throws(
    () => validateProgramme(input),
    (e: unknown) => e instanceof VliveError && e.code === 'BAD_USER_INPUT' && e.field === field,
    `refused with field ${field}`,
  );
}

describe('programme planner', () => {
  const plan = validateProgramme(daily);

  it('places a daily programme on an ordinary day (CET), the day from dayStart', () => {
    const occ = occurrences(plan, at('2026-12-07T05:00:00Z'), at('2026-12-08T05:00:00Z'));
    assert.deepEqual(
      occ.map((o) => [o.entry, iso(o.startMs), iso(o.endMs), iso(o.untilMs)]),
      [
        [0, '2026-12-07T05:00:00.000Z', '2026-12-07T05:30:00.000Z', '2026-12-07T19:00:00.000Z'],
        [1, '2026-12-07T19:00:00.000Z', '2026-12-08T00:00:00.000Z', '2026-12-08T00:00:00.000Z'],
        // 01:00 and 02:30 belong to the programme day of the 7th, on the 8th's date.
        [2, '2026-12-08T00:00:00.000Z', '2026-12-08T01:30:00.000Z', '2026-12-08T01:30:00.000Z'],
        [3, '2026-12-08T01:30:00.000Z', '2026-12-08T01:40:00.000Z', '2026-12-08T05:00:00.000Z'],
      ],
    );
  });

  it('walks a whole day minute by minute with an injected clock: every minute has exactly one entry, content or filler', () => {
    const from = at('2026-12-07T05:00:00Z');
    const seen: string[] = [];
    for (let t = from; t < from + 86_400_000; t += 60_000) {
      const on = onAt(plan, t);
      assert.ok(on !== null, `something is on at ${iso(t)}`);
      assert.ok(on.occurrence.startMs <= t && t < on.occurrence.untilMs);
      const label = `${on.occurrence.entry}${on.filler ? '+filler' : ''}`;
      if (seen.at(-1) !== label) seen.push(label);
    }
    assert.deepEqual(seen, ['0', '0+filler', '1', '2', '3', '3+filler']);
    // The news's duration cuts it at 06:30; the filler fills to 20:00.
    assert.deepEqual(onAt(plan, at('2026-12-07T05:29:59.999Z'))?.filler, false);
    assert.deepEqual(onAt(plan, at('2026-12-07T05:30:00Z'))?.filler, true);
  });

  it('keeps to the wall clock over the spring-forward night: 02:30 does not exist and runs at 03:30 CEST', () => {
    // 2027-03-28: 02:00 CET becomes 03:00 CEST. The programme day of the 27th.
    const occ = occurrences(plan, at('2027-03-27T05:00:00Z'), at('2027-03-28T04:30:00Z'));
    assert.deepEqual(
      occ.map((o) => [o.entry, iso(o.startMs)]),
      [
        [0, '2027-03-27T05:00:00.000Z'],
        [1, '2027-03-27T19:00:00.000Z'],
        [2, '2027-03-28T00:00:00.000Z'],
        [3, '2027-03-28T01:30:00.000Z'],
        // The next day's 06:00 is CEST now: 04:00Z, a 23-hour programme day.
        [0, '2027-03-28T04:00:00.000Z'],
      ],
    );
  });

  it('keeps to the wall clock over the fall-back night: 02:30 occurs twice and runs at its first', () => {
    // 2027-10-31: 03:00 CEST becomes 02:00 CET.
    const occ = occurrences(plan, at('2027-10-30T04:00:00Z'), at('2027-10-31T05:30:00Z'));
    assert.deepEqual(
      occ.map((o) => [o.entry, iso(o.startMs), iso(o.untilMs)]),
      [
        [0, '2027-10-30T04:00:00.000Z', '2027-10-30T18:00:00.000Z'],
        [1, '2027-10-30T18:00:00.000Z', '2027-10-30T23:00:00.000Z'],
        [2, '2027-10-30T23:00:00.000Z', '2027-10-31T00:30:00.000Z'],
        // 02:30 CEST (00:30Z), not 02:30 CET; then a 25-hour day up to 06:00 CET.
        [3, '2027-10-31T00:30:00.000Z', '2027-10-31T05:00:00.000Z'],
        [0, '2027-10-31T05:00:00.000Z', '2027-10-31T19:00:00.000Z'],
      ],
    );
  });

  it('plays a dated programme once: the filler before, between and after', () => {
    const p = validateProgramme({
      timeZone: 'UTC',
      fillerVodResourceId: 'filler',
      entries: [
        { start: '2026-12-06T20:00:00+01:00', vodResourceId: 'a', durationSeconds: 60 },
        { start: '2026-12-06T19:05:00Z', vodResourceId: 'b' },
      ],
    });
    assert.equal(onAt(p, at('2026-12-06T18:59:59Z')), null, 'before the first entry: the filler (no occurrence)');
    assert.equal(onAt(p, at('2026-12-06T19:00:30Z'))?.occurrence.entry, 0);
    assert.equal(onAt(p, at('2026-12-06T19:02:00Z'))?.filler, true, 'the gap after a\'s minute');
    const last = onAt(p, at('2027-01-01T00:00:00Z'));
    assert.equal(last?.occurrence.entry, 1);
    assert.equal(last?.occurrence.untilMs, Infinity);
  });

  it('refuses bad input, naming the field', () => {
    refused({ ...daily, timeZone: 'Mars/Olympus' }, 'timeZone');
    refused({ ...daily, dayStart: '25:00' }, 'dayStart');
    refused({ ...daily, entries: [{ start: 'tomorrow', vodResourceId: 'a' }] }, 'entries[0].start');
    refused({ ...daily, entries: [{ start: '07:00', vodResourceId: 'a' }, { start: '2026-12-06T20:00:00Z', vodResourceId: 'b' }] }, 'entries');
    // Unsorted in the day from 06:00: 05:00 is the end of the day, 07:00 its start.
    refused({ ...daily, entries: [{ start: '05:00', vodResourceId: 'a' }, { start: '07:00', vodResourceId: 'b' }] }, 'entries[1].start');
    refused({ ...daily, entries: [{ start: '07:00', vodResourceId: 'a', durationSeconds: 3601 }, { start: '08:00', vodResourceId: 'b' }] }, 'entries[0].durationSeconds');
    // The last entry runs into the next day's first.
    refused({ ...daily, entries: [{ start: '07:00', vodResourceId: 'a' }, { start: '05:30', vodResourceId: 'b', durationSeconds: 7200 }] }, 'entries[1].durationSeconds');
    refused({ ...daily, entries: [{ start: '07:00', vodResourceId: 'a', playlist: ['b'] }] }, 'entries[0]');
    refused({ ...daily, entries: [{ start: '07:00' }] }, 'entries[0]');
    refused({ ...daily, entries: [{ start: '07:00', sourceUrl: 'rtmp://studio.example/live/x' }] }, 'entries[0].durationSeconds');
    refused({ ...daily, entries: [{ start: '07:00', sourceUrl: 'rtmp://studio.example/live/x', durationSeconds: 60, breaks: [{ offsetSeconds: 1, durationSeconds: 30 }] }] }, 'entries[0].breaks');
    assert.throws(
      () => validateProgramme({ ...daily, entries: [{ start: '07:00', sourceUrl: 'file:///etc/passwd', durationSeconds: 60 }] }),
      (e: unknown) => e instanceof VliveError && e.code === 'URL_NOT_ALLOWED' && e.field === 'entries[0].sourceUrl',
    );
    assert.deepEqual(
      validateProgramme({ ...daily, entries: [{ start: '07:00', sourceUrl: 'rtmp://studio.example/live/x', durationSeconds: 60 }] }).entries.map((e) => [e.items, e.sourceUrl, e.durationMs]),
      [[[], 'rtmp://studio.example/live/x', 60_000]],
    );
    refused({ ...daily, entries: [{ start: '07:00', playlist: [] }] }, 'entries[0].playlist');
    refused({ ...daily, entries: [{ start: '07:00', vodResourceId: 'a', durationSeconds: 0 }] }, 'entries[0].durationSeconds');
    refused({ ...daily, entries: [{ start: '2026-12-06T20:00:00Z', vodResourceId: 'a' }, { start: '2026-12-06T20:00:00Z', vodResourceId: 'b' }] }, 'entries[1].start');
    refused({ ...daily, fillerPlaylist: ['f2'] }, 'fillerVodResourceId');
    refused({ ...daily, fillerVodResourceId: null }, 'fillerVodResourceId');
    refused({ ...daily, fillerVodResourceId: null, fillerPlaylist: [] }, 'fillerPlaylist');
    assert.deepEqual(validateProgramme({ ...daily, fillerVodResourceId: null, fillerPlaylist: ['f1', 'f2'] }).filler, ['f1', 'f2']);
  });
});
