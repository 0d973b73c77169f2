/**
 * The output's proof of flow and stall watchdog (src/worker/flow-watch.ts),
 * driven by a fake clock: times are arguments, so every edge is exact.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FlowWatch } from '../src/worker/flow-watch.js';

const frame = 0.04; // 25 fps: the stutter tolerance is 80 ms

/** Batches of `stepMs` of media flushed every `stepMs` of wall time, from (wall0, media0) for `ms`. */
function steady(w: FlowWatch, wall0: number, media0: number, ms: number, stepMs = 40): void {
  for (let t = 0; t <= ms; t += stepMs) w.flushed(wall0 + t, media0 + t);
}

describe('FlowWatch', () => {
  it('has no position before the first flush, then follows the media in the kernel', () => {
    const w = new FlowWatch(frame, 1000);
    assert.equal(w.positionMs, -1);
    w.flushed(1000, 0);
    assert.equal(w.positionMs, 0);
    steady(w, 1000, 0, 2000);
    assert.equal(w.positionMs, 2000);
    w.flushed(3100, 1500); // a tag from the past moves nothing
    assert.equal(w.positionMs, 2000);
  });

  it('counts no stutter for a steady output and about the freeze, less the tolerance, for a 600 ms freeze', () => {
    const w = new FlowWatch(frame, 5000);
    steady(w, 0, 0, 2000);
    for (let t = 0; t <= 2000; t += 100) w.judge(t);
    assert.equal(w.stutterSeconds, 0);
    // Nothing reaches the kernel from 2000 to 2600 ms, then it catches up.
    for (let t = 2100; t <= 2600; t += 100) w.judge(t);
    steady(w, 2600, 2040, 1000);
    w.judge(3600);
    assert.ok(w.stutterSeconds > 0.4 && w.stutterSeconds < 0.6, `stutter ${w.stutterSeconds} s`);
  });

  it('reports a stall only past the timeout, counts each, and not while the output waits by design', () => {
    const w = new FlowWatch(frame, 1000);
    w.flushed(10_000, 5000);
    assert.equal(w.stalledFor(10_900, false), null);
    assert.equal(w.stalledFor(11_000, false), null, 'exactly the timeout is not past it');
    assert.equal(w.stalledFor(11_100, false), 1100);
    assert.equal(w.stalls, 1);
    // A relay between sources: the clock restarts while it waits.
    assert.equal(w.stalledFor(12_000, true), null);
    assert.equal(w.stalledFor(12_900, false), null);
    assert.equal(w.stalledFor(13_001, false), 1001);
    assert.equal(w.stalls, 2);
    // Media moving again resets it.
    w.flushed(13_050, 5040);
    assert.equal(w.stalledFor(13_500, false), null);
  });
});
