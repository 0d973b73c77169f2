import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReconnectBudget } from '../src/channels/reconnect-budget.js';

test('a burst passes at once, then attempts are spread at the refill rate', () => {
  const b = new ReconnectBudget(10, 5, 0);
  const waits = Array.from({ length: 25 }, () => b.reserve(0));
  assert.deepEqual(waits.slice(0, 5), [0, 0, 0, 0, 0]);
  // The 6th waits one token (100 ms), the 25th twenty tokens.
  assert.equal(waits[5], 100);
  assert.equal(waits[24], 2000);
  for (let i = 6; i < 25; i++) assert.ok((waits[i] ?? 0) > (waits[i - 1] ?? 0), 'the queue is fair and never bunches');
});

test('an idle budget fills up again, never beyond the burst', () => {
  const b = new ReconnectBudget(10, 3, 0);
  for (let i = 0; i < 3; i++) b.reserve(0);
  assert.equal(b.reserve(10_000), 0);
  assert.equal(b.reserve(10_000), 0);
  assert.equal(b.reserve(10_000), 0);
  assert.equal(b.reserve(10_000), 100, 'three tokens at most, however long it was idle');
  assert.throws(() => new ReconnectBudget(0, 1, 0), /perSecond/);
});
