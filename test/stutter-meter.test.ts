/**
 * The worker's running stutter meter against the one batch definition in
 * src/metrics/stutter.ts: fed the same samples, they must agree. Plus the
 * loop-boundary gap estimate. Pure, no processes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stutterReport } from '../src/metrics/stutter.js';
import { StutterMeter } from '../src/worker/stutter-meter.js';

const frame = 0.04;

interface Sample {
  wall: number;
  pos: number;
}

function meter(samples: readonly Sample[]): StutterMeter {
  const m = new StutterMeter(frame);
  for (const s of samples) m.sample(s.wall, s.pos);
  return m;
}

function reference(samples: readonly Sample[]): number {
  const last = samples[samples.length - 1];
  return stutterReport(
    samples.map((s) => ({ wallSeconds: s.wall, dtsSeconds: s.pos })),
    frame,
    last !== undefined ? { endWallSeconds: last.wall } : {},
  ).stutterSeconds;
}

/** Sampled every 100 ms; `at(t)` is the position at wall time t. */
function sampled(seconds: number, at: (t: number) => number): Sample[] {
  const out: Sample[] = [];
  for (let i = 0; i <= seconds * 10; i++) out.push({ wall: 100 + i / 10, pos: at(i / 10) });
  return out;
}

test('a pipeline that runs in real time has no stutter and no lag', () => {
  const s = sampled(10, (t) => 5 + t);
  const m = meter(s);
  assert.equal(m.stutterSeconds, 0);
  assert.ok(m.outputLagSeconds < 1e-9);
  assert.equal(reference(s), 0);
});

test('a 1 s freeze counts once, about 1 s minus the tolerance, like the batch definition', () => {
  // Position stands still from t=2 to t=3, then the clock catches it up.
  const s = sampled(8, (t) => (t < 2 ? t : t < 3 ? 2 : t));
  const m = meter(s);
  assert.ok(Math.abs(m.stutterSeconds - reference(s)) < 1e-9, `${m.stutterSeconds} vs ${reference(s)}`);
  assert.ok(m.stutterSeconds > 0.8 && m.stutterSeconds < 1, String(m.stutterSeconds));
  assert.ok(m.outputLagSeconds < 1e-9, 'caught up afterwards');
});

test('a freeze that never ends grows with the wall clock, and so does the lag', () => {
  const s = sampled(6, (t) => Math.min(t, 1));
  const m = meter(s);
  assert.ok(Math.abs(m.stutterSeconds - reference(s)) < 1e-9);
  assert.ok(m.stutterSeconds > 4.8, String(m.stutterSeconds));
  assert.ok(Math.abs(m.outputLagSeconds - 5) < 1e-9, String(m.outputLagSeconds));
});

test('random runs with jitter, freezes, bursts and timeline resets agree with src/metrics/stutter.ts', () => {
  let seed = 42;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let run = 0; run < 200; run++) {
    const s: Sample[] = [];
    let wall = 1000 * rnd();
    let pos = 100 * rnd();
    for (let i = 0; i < 300; i++) {
      wall += 0.05 + 0.1 * rnd();
      const r = rnd();
      if (r < 0.1) pos += 0; // frozen
      else if (r < 0.15) pos += 0.5 * rnd(); // burst
      else if (r < 0.16) pos -= 5 * rnd(); // reset or small overlap
      else pos += 0.1 * (0.8 + 0.4 * rnd());
      s.push({ wall, pos });
    }
    const got = meter(s).stutterSeconds;
    const want = reference(s);
    assert.ok(Math.abs(got - want) < 1e-6, `run ${run}: meter ${got}, definition ${want}`);
  }
});

test('unknown positions count as no new media; wall time must not go back', () => {
  const m = new StutterMeter(frame);
  m.sample(0, null); // no anchor yet: ignored
  m.sample(1, 0);
  for (let t = 1.1; t < 3.05; t += 0.1) m.sample(t, null);
  assert.ok(m.stutterSeconds > 1.8, String(m.stutterSeconds));
  assert.throws(() => m.sample(2, 1), /wall-clock order/);
  assert.throws(() => new StutterMeter(0), /frameDurationSeconds/);
});
