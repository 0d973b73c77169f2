/** A push target's bitrate over a sliding window (src/worker/bitrate-window.ts): pure, with the time given. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BitrateWindow } from '../src/worker/bitrate-window.js';

test('a steady 1 Mbit/s reads as 1 Mbit/s, once two samples lie apart', () => {
  const w = new BitrateWindow(5000);
  assert.equal(w.sample(0, 0), 0, 'one sample says nothing');
  let bps = 0;
  for (let s = 1; s <= 10; s += 1) bps = w.sample(s * 1000, s * 125_000);
  assert.equal(bps, 1_000_000);
});

test('the average spans the last window only: a stop shows within it', () => {
  const w = new BitrateWindow(5000);
  for (let s = 0; s <= 10; s += 1) w.sample(s * 1000, s * 125_000);
  // Nothing more is sent: after half a window the rate is about half, after a whole window 0.
  assert.equal(w.sample(13_000, 1_250_000), Math.round((2 * 125_000 * 8) / 5));
  assert.equal(w.sample(15_000, 1_250_000), 0);
});

test('a count that goes back (a new session from 0) starts afresh instead of reading negative', () => {
  const w = new BitrateWindow(5000);
  w.sample(0, 0);
  w.sample(1000, 500_000);
  assert.equal(w.sample(2000, 1000), 0);
  assert.equal(w.sample(3000, 126_000), 1_000_000);
});

test('a window that is not positive is refused, naming it', () => {
  assert.throws(() => new BitrateWindow(0), /windowMs must be positive/);
});
