/**
 * The stutter definition (src/media/stutter.ts) on synthetic receivers:
 * arrival times and DTS made up to the frame, so every expected figure can
 * be worked out by hand.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stutterReport, stutterSeconds, type StutterSample } from '../src/media/stutter.js';

const FPS = 25;
const F = 1 / FPS;
const TOL = 2 * F;

/**
 * Packets `from`..`to`-1 of a 25 fps track, DTS i·F, sent at 100 s + send(i)
 * (default i·F). Like TCP, a late packet holds back the ones behind it.
 */
function track(from: number, to: number, send: (i: number) => number = (i) => i * F): StutterSample[] {
  const out: StutterSample[] = [];
  let arrived = -Infinity;
  for (let i = from; i < to; i++) {
    arrived = Math.max(arrived, 100 + send(i));
    out.push({ wallSeconds: arrived, dtsSeconds: i * F });
  }
  return out;
}

const near = (actual: number, expected: number, within: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) <= within, `${what}: ${actual} is not within ${within} of ${expected}`);

test('a steady stream does not stutter', () => {
  const r = stutterReport(track(0, 60 * FPS), F);
  assert.equal(r.stutterSeconds, 0);
  assert.equal(r.stalls, 0);
  near(r.observedSeconds, 60 - F, 1e-9, 'observed');
  near(r.toleranceSeconds, TOL, 1e-12, 'tolerance');
});

test('packets up to two frames late are tolerated', () => {
  // Deterministic lateness in [0, 30] ms on every packet.
  const r = stutterReport(track(0, 60 * FPS, (i) => i * F + 0.015 + 0.015 * Math.sin(i * 1.7)), F);
  assert.equal(r.stutterSeconds, 0);
  // One frame in 25 held back 75 ms (a 115 ms gap before it, then two at once): still inside the buffer.
  const held = stutterReport(track(0, 60 * FPS, (i) => i * F + (i % FPS === 7 ? 0.075 : 0)), F);
  assert.equal(held.stutterSeconds, 0);
});

test('a packet later than two frames counts what is beyond them', () => {
  const r = stutterReport(track(0, 60 * FPS, (i) => i * F + (i === 300 ? 0.1 : 0)), F);
  near(r.stutterSeconds, 0.1 - TOL, 1e-9, 'one packet 100 ms late');
  assert.equal(r.stalls, 1);
});

test('the first packets may burst: a GOP cache sent at connect is not stutter', () => {
  // One second of cached GOP arrives at once, then the live edge in real time.
  const cached = track(0, FPS, () => 0);
  const live = track(FPS, 30 * FPS, (i) => (i - FPS + 1) * F);
  assert.equal(stutterSeconds([...cached, ...live], F), 0);
});

test('a 1 s freeze counts about 1 s, once, and the stream is fine afterwards', () => {
  // Every packet from 10 s on arrives 1 s late, of which 2 F are tolerated.
  const samples = track(0, 60 * FPS, (i) => i * F + (i >= 10 * FPS ? 1 : 0));
  const r = stutterReport(samples, F);
  near(r.stutterSeconds, 1 - TOL, 1e-9, 'stutter');
  assert.equal(r.stalls, 1);
  near(r.longestStallSeconds, 1 - TOL, 1e-9, 'longest');
  // 50 more seconds of real time after the freeze add nothing.
  near(stutterSeconds(samples.slice(0, 11 * FPS), F), r.stutterSeconds, 1e-9, 'same just after the freeze');
});

test('a freeze followed by a catch-up burst counts the stall too, and two of them count twice', () => {
  // The publisher holds back the packets of 1 s, then sends them at once and carries on:
  // the first held packet is 1 s late.
  const freezesAt = (starts: number[]) => (i: number) => {
    const start = starts.find((s) => i >= s && i < s + FPS);
    return (start === undefined ? i : start + FPS) * F;
  };
  const one = stutterReport(track(0, 30 * FPS, freezesAt([10 * FPS])), F);
  near(one.stutterSeconds, 1 - TOL, 1e-9, 'one freeze');
  const two = stutterReport(track(0, 30 * FPS, freezesAt([10 * FPS, 20 * FPS])), F);
  near(two.stutterSeconds, 2 * (1 - TOL), 1e-9, 'two freezes');
  assert.equal(two.stalls, 2);
});

test('a stream slower than real time stutters more the longer it runs', () => {
  // Delivered at 0.9× real time: each frame arrives 1/0.9 frame durations after the last.
  const slow = (seconds: number) => stutterSeconds(track(0, seconds * FPS, (i) => (i * F) / 0.9), F);
  const s10 = slow(10);
  const s20 = slow(20);
  const s40 = slow(40);
  assert.ok(s10 > 0.5, `10 s: ${s10}`);
  assert.ok(s20 > s10 && s40 > s20, `grows: ${s10} ${s20} ${s40}`);
  // About 0.1 s of stall per second of media once the tolerance is spent.
  near(s40 - s20, (20 / 0.9) * 0.1, 0.1, 'rate');
});

test('silence until the end of observation counts, once the last packet has played out', () => {
  const samples = track(0, 10 * FPS);
  const last = samples[samples.length - 1]?.wallSeconds ?? 0;
  near(stutterSeconds(samples, F, { endWallSeconds: last + 3 }), 3 - F - TOL, 1e-9, 'silent tail');
  assert.equal(stutterSeconds(samples, F, { endWallSeconds: last + 3 * F }), 0);
});

test('an audio track: packets carry their own duration, the tolerance stays two video frames', () => {
  const AAC = 1024 / 48000;
  const audio: StutterSample[] = [];
  let arrived = 0;
  for (let i = 0; i < 30 / AAC; i++) {
    arrived = Math.max(arrived, 100 + i * AAC + (i === 500 ? 0.5 : 0));
    audio.push({ wallSeconds: arrived, dtsSeconds: i * AAC });
  }
  near(stutterSeconds(audio, F, { packetDurationSeconds: AAC }), 0.5 - TOL, 1e-9, 'one AAC frame 0.5 s late');
  assert.throws(() => stutterSeconds(audio, F, { packetDurationSeconds: 0 }), /packetDurationSeconds/);
});

test('a repeated timestamp at a loop boundary is not stutter by itself', () => {
  // DTS 9.96 is sent twice, pacing carries on: the stream now runs one frame later, within tolerance.
  const before = track(0, 250);
  const again = { wallSeconds: 100 + 250 * F, dtsSeconds: 249 * F };
  const after = track(250, 750, (i) => (i + 1) * F);
  assert.equal(stutterSeconds([...before, again, ...after], F), 0);
});

test('a timeline reset (DTS back to 0) is re-anchored, not waited out', () => {
  const first = track(0, 30 * FPS);
  const restarted = track(0, 30 * FPS, (i) => 30 + i * F);
  assert.equal(stutterSeconds([...first, ...restarted], F), 0);
});

test('a DTS jump forward with packets on time is not stutter', () => {
  const samples = track(0, 30 * FPS).map((s, i) => (i >= 10 * FPS ? { ...s, dtsSeconds: s.dtsSeconds + 0.5 } : s));
  assert.equal(stutterSeconds(samples, F), 0);
});

test('edge cases and bad input', () => {
  assert.equal(stutterSeconds([], F), 0);
  assert.equal(stutterSeconds([{ wallSeconds: 5, dtsSeconds: 1 }], F), 0);
  near(stutterSeconds([{ wallSeconds: 5, dtsSeconds: 1 }], F, { endWallSeconds: 6 }), 1 - F - TOL, 1e-9, 'one packet, then silence');
  assert.throws(() => stutterSeconds([], 0), /frameDurationSeconds/);
  assert.throws(() => stutterSeconds([], F, { resetSeconds: -1 }), /resetSeconds/);
  assert.throws(() => stutterSeconds([{ wallSeconds: Number.NaN, dtsSeconds: 0 }], F), /finite/);
  assert.throws(
    () => stutterSeconds([{ wallSeconds: 2, dtsSeconds: 0 }, { wallSeconds: 1, dtsSeconds: 0.04 }], F),
    /arrival order/,
  );
});
