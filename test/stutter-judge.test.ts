/**
 * The stutter rule as the worker runs it (src/media/stutter.ts,
 * StutterJudge): fed one batch at a time, as each reaches the kernel, and
 * judged in between by a sampler whose ticks come when a busy event loop
 * lets them. The sampler's timing must never create stutter; only late
 * batches may, exactly as the receivers would judge the same arrivals.
 * Pure, no processes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StutterJudge, stutterReport, type StutterSample } from '../src/media/stutter.js';

const frame = 0.04;

/**
 * What an output sends: a batch every `periodS` carrying media up to the
 * clock plus one period, arriving at `arrival(i)`; each batch is one
 * arrival at the media time of its last frame.
 */
function batches(seconds: number, periodS: number, arrival: (i: number, due: number) => number): StutterSample[] {
  const out: StutterSample[] = [];
  for (let i = 0; i * periodS <= seconds; i++) {
    const due = i * periodS;
    out.push({ wallSeconds: 100 + arrival(i, due), dtsSeconds: due + periodS });
  }
  return out;
}

/** Feeds arrivals and sampler ticks in time order, as the worker's event loop would. */
function run(arrivals: readonly StutterSample[], ticks: readonly number[]): StutterJudge {
  const judge = new StutterJudge(frame);
  const events = [
    ...arrivals.map((a) => ({ at: a.wallSeconds, arrive: a })),
    ...ticks.map((t) => ({ at: 100 + t, arrive: null })),
  ].sort((a, b) => a.at - b.at);
  for (const e of events) {
    if (e.arrive !== null) judge.arrive(e.arrive.wallSeconds, e.arrive.dtsSeconds);
    else judge.judgeAt(e.at);
  }
  return judge;
}

test('batches on time: 0 stutter whether the sampler ticks every 100 ms or late (0, 0.1, 0.2, 0.45 s …)', () => {
  const arrivals = batches(10, 0.04, (_i, due) => due);
  const exact = Array.from({ length: 101 }, (_, i) => i / 10);
  // A busy event loop: ticks bunch up and slip, up to a quarter second late.
  const irregular = [0, 0.1, 0.2, 0.45, 0.5, 0.51, 0.9, 1.35, 1.4, 2.2, 2.25, 3.1, 4.0, 4.7, 4.71, 6.3, 7.9, 9.95];
  assert.equal(run(arrivals, exact).stutterSeconds, 0);
  assert.equal(run(arrivals, irregular).stutterSeconds, 0);
  assert.equal(stutterReport(arrivals, frame).stutterSeconds, 0);
});

test('batches jittered by up to 60 ms on a 40 ms period stay within three frames: 0 stutter', () => {
  let seed = 7;
  const rand = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const arrivals = batches(30, 0.04, (_i, due) => due + rand() * 0.06);
  // Arrivals must not go back: a late batch holds the next one back too.
  for (let i = 1; i < arrivals.length; i++) {
    const prev = arrivals[i - 1]!;
    if (arrivals[i]!.wallSeconds < prev.wallSeconds) arrivals[i] = { ...arrivals[i]!, wallSeconds: prev.wallSeconds };
  }
  assert.equal(run(arrivals, Array.from({ length: 301 }, (_, i) => i / 10)).stutterSeconds, 0);
});

test('an event loop blocked for 300 ms delays the batches: counted once, as the receivers count it', () => {
  // Batches due in [2.0, 2.3) leave at 2.3, when the loop is free again.
  const arrivals = batches(6, 0.04, (_i, due) => (due >= 2 && due < 2.3 ? 2.3 : due));
  const receivers = stutterReport(arrivals, frame).stutterSeconds;
  for (const ticks of [Array.from({ length: 61 }, (_, i) => i / 10), [0.05, 1.97, 2.31, 2.5, 5.99]]) {
    const judge = run(arrivals, ticks);
    assert.ok(Math.abs(judge.stutterSeconds - receivers) < 1e-9, `${judge.stutterSeconds} vs ${receivers}`);
    assert.equal(judge.stalls, 1);
  }
  // Every batch leads the clock by one period (ref = -0.04 s). The last one
  // before the block, at 1.96 s, carried media to 2.00 s: its last frame
  // plays out at 2.04 s and two frames of buffer last to 2.12 s, less the
  // lead: the player stalls from 2.08 s until 2.3 s.
  assert.ok(Math.abs(receivers - 0.22) < 1e-9, String(receivers));
});

test('a stall in progress shows at the next tick, before media comes back', () => {
  const arrivals = batches(2, 0.04, (_i, due) => due);
  const judge = run(arrivals, [1, 2, 3]);
  // Media ends at 2.04 s, sent at 2.00 s (lead 0.04 s): the tick at 3 s sees
  // (3 - 2.04 - 0.04) - (-0.04 + 0.08) = 0.88 s of stall.
  assert.ok(Math.abs(judge.stutterSeconds - 0.88) < 1e-6, String(judge.stutterSeconds));
  assert.ok(judge.lagSeconds > 0.9);
});

test('arrivals out of order and non-finite values are refused', () => {
  const judge = new StutterJudge(frame);
  judge.arrive(10, 0);
  assert.throws(() => judge.arrive(9, 1), /arrival order/);
  assert.throws(() => judge.arrive(11, Number.NaN), /finite/);
  assert.throws(() => new StutterJudge(0), /frameDurationSeconds/);
});
