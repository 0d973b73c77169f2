import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fullJitterBackoff } from '../src/pool/backoff.js';

const opts = { baseMs: 100, capMs: 1000 };
const almostOne = 1 - Number.EPSILON;

test('the ceiling doubles per attempt until the cap', () => {
  const ceilings = [0, 1, 2, 3, 4, 5, 10].map((a) => fullJitterBackoff(a, opts, () => almostOne));
  assert.deepEqual(ceilings, [99, 199, 399, 799, 999, 999, 999]);
});

test('full jitter: the delay spans [0, ceiling) with the random draw', () => {
  assert.equal(fullJitterBackoff(3, opts, () => 0), 0);
  assert.equal(fullJitterBackoff(3, opts, () => 0.5), 400);
  assert.equal(fullJitterBackoff(3, opts, () => 0.25), 200);
});

test('huge attempts stay at the cap instead of overflowing', () => {
  assert.equal(fullJitterBackoff(5000, opts, () => 0.5), 500);
});

test('Math.random is the default source and stays in range', () => {
  for (let i = 0; i < 1000; i++) {
    const d = fullJitterBackoff(i % 12, opts);
    assert.ok(Number.isInteger(d) && d >= 0 && d < 1000, `delay ${d}`);
  }
});

test('bad input is refused by name', () => {
  assert.throws(() => fullJitterBackoff(-1, opts), /attempt/);
  assert.throws(() => fullJitterBackoff(1.5, opts), /attempt/);
  assert.throws(() => fullJitterBackoff(0, { baseMs: -1, capMs: 10 }), /baseMs/);
  assert.throws(() => fullJitterBackoff(0, { baseMs: 10, capMs: 5 }), /capMs/);
  assert.throws(() => fullJitterBackoff(0, opts, () => 1), /random/);
});
