/**
 * The cron dialect and its time-zone rules, as a pure function: every
 * expected instant is written out by hand in UTC.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkTimeZone, CronError, nextRun, parseCron } from '../src/schedule/cron.js';

const next = (expr: string, tz: string, after: string): string | null => {
  const t = nextRun(parseCron(expr), tz, Date.parse(after));
  return t === null ? null : new Date(t).toISOString();
};

describe('cron', () => {
  it('steps, ranges, lists and names', () => {
    assert.equal(next('*/15 * * * *', 'UTC', '2026-11-25T10:07:30Z'), '2026-11-25T10:15:00.000Z');
    assert.equal(next('*/15 * * * *', 'UTC', '2026-11-25T10:15:00Z'), '2026-11-25T10:30:00.000Z', 'strictly after');
    assert.equal(next('5,10-12 * * * *', 'UTC', '2026-11-25T10:10:00Z'), '2026-11-25T10:11:00.000Z');
    assert.equal(next('10/20 * * * *', 'UTC', '2026-11-25T10:31:00Z'), '2026-11-25T10:50:00.000Z');
    assert.equal(next('0 12 * jan,Jul sun', 'UTC', '2026-11-25T00:00:00Z'), '2027-01-03T12:00:00.000Z');
    // 7 is Sunday too.
    assert.equal(next('0 0 * * 7', 'UTC', '2026-11-25T00:00:00Z'), '2026-11-29T00:00:00.000Z');
    assert.equal(next('0 0 1-7/3 * *', 'UTC', '2026-11-25T00:00:00Z'), '2026-12-01T00:00:00.000Z');
  });

  it('a restricted day-of-month and day-of-week match either (Vixie cron)', () => {
    // The 13th of December 2026 is a Sunday; the first Friday after 25 Nov is the 27th.
    assert.equal(next('0 0 13 * FRI', 'UTC', '2026-11-25T00:00:00Z'), '2026-11-27T00:00:00.000Z');
    assert.equal(next('0 0 13 * FRI', 'UTC', '2026-12-11T00:00:00Z'), '2026-12-13T00:00:00.000Z');
    // With a star in one of them, both must match: Friday the 13th is in August 2027.
    assert.equal(next('0 0 13 * *', 'UTC', '2026-11-25T00:00:00Z'), '2026-12-13T00:00:00.000Z');
    assert.equal(next('0 0 */1 * FRI', 'UTC', '2026-11-25T00:00:00Z'), '2026-11-27T00:00:00.000Z');
  });

  it('evaluates in the time zone', () => {
    // Weekdays 09:00 in Berlin (CET, UTC+1): after Friday 27 Nov comes Monday 30 Nov.
    assert.equal(next('0 9 * * MON-FRI', 'Europe/Berlin', '2026-11-27T10:00:00Z'), '2026-11-30T08:00:00.000Z');
    assert.equal(next('0 9 * * *', 'America/New_York', '2026-11-25T00:00:00Z'), '2026-11-25T14:00:00.000Z');
    // A half-hour zone without DST.
    assert.equal(next('0 0 * * *', 'Asia/Kolkata', '2026-11-25T00:00:00Z'), '2026-11-25T18:30:00.000Z');
  });

  it('a wall time in the spring-forward gap runs as far after the gap, once', () => {
    // Europe/Berlin, 29 March 2026: 02:00 CET becomes 03:00 CEST (01:00Z). 02:30 runs at 03:30 CEST.
    assert.equal(next('30 2 * * *', 'Europe/Berlin', '2026-03-28T12:00:00Z'), '2026-03-29T01:30:00.000Z');
    // Asked just after the gap, before the shifted run: still found.
    assert.equal(next('30 2 * * *', 'Europe/Berlin', '2026-03-29T01:05:00Z'), '2026-03-29T01:30:00.000Z');
    assert.equal(next('30 2 * * *', 'Europe/Berlin', '2026-03-29T01:30:00Z'), '2026-03-30T00:30:00.000Z');
    // A shifted gap time does not hide an earlier real time: 03:10 CEST comes before 02:30 → 03:30.
    assert.equal(next('10,30 2,3 * * *', 'Europe/Berlin', '2026-03-29T01:05:00Z'), '2026-03-29T01:10:00.000Z');
    // Hourly runs go on across the gap.
    assert.equal(next('0 * * * *', 'Europe/Berlin', '2026-03-29T00:30:00Z'), '2026-03-29T01:00:00.000Z');
  });

  it('a wall time that occurs twice (fall back) runs once, at its first occurrence', () => {
    // Europe/Berlin, 25 October 2026: 03:00 CEST becomes 02:00 CET (01:00Z); 02:30 is 00:30Z and 01:30Z.
    assert.equal(next('30 2 * * *', 'Europe/Berlin', '2026-10-24T12:00:00Z'), '2026-10-25T00:30:00.000Z');
    assert.equal(next('30 2 * * *', 'Europe/Berlin', '2026-10-25T00:30:00Z'), '2026-10-26T01:30:00.000Z');
    // Inside the repeated hour, too.
    assert.equal(next('30 2 * * *', 'Europe/Berlin', '2026-10-25T01:10:00Z'), '2026-10-26T01:30:00.000Z');
    // Hourly on the hour: 02:00 CEST (00:00Z), then 03:00 CET (02:00Z): the repeated 02:00 is not run again.
    assert.equal(next('0 * * * *', 'Europe/Berlin', '2026-10-25T00:00:00Z'), '2026-10-25T02:00:00.000Z');
  });

  it('a spec that never runs gives null', () => {
    assert.equal(next('0 0 30 2 *', 'UTC', '2026-11-25T00:00:00Z'), null);
    assert.equal(next('0 0 29 2 *', 'UTC', '2026-11-25T00:00:00Z'), '2028-02-29T00:00:00.000Z');
  });

  it('refuses malformed fields, naming the field', () => {
    const bad: [string, RegExp][] = [
      ['* * * *', /expected 5 fields/],
      ['60 * * * *', /minute: 60 is out of range/],
      ['* 24 * * *', /hour: 24/],
      ['* * 0 * *', /day of month: 0/],
      ['* * * 13 *', /month: 13/],
      ['* * * * 8', /day of week: 8/],
      ['5-1 * * * *', /runs backwards/],
      ['*/0 * * * *', /step 0/],
      ['* * * foo *', /month: "foo"/],
      ['1-2-3 * * * *', /not a range/],
      ['1,,2 * * * *', /minute/],
    ];
    for (const [expr, re] of bad) assert.throws(() => parseCron(expr), (e: unknown) => e instanceof CronError && re.test(e.message), expr);
  });

  it('knows IANA zones and refuses others', () => {
    assert.equal(checkTimeZone('Europe/Berlin'), 'Europe/Berlin');
    assert.throws(() => checkTimeZone('Mars/Olympus_Mons'), CronError);
    assert.throws(() => checkTimeZone(''), CronError);
  });
});
