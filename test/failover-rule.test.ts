/**
 * The relay's failover rule (src/channels/failover.ts) on its own: which
 * source the next attempt pulls, and the switch-back timer driven by a fake
 * clock. test/failover.test.ts drives the same rule end to end with real
 * relays; this one pins the edges (counts, time away, turns) in milliseconds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { activeSourceOf, nextSource, SwitchBack, type FailoverPolicy, type SourceState, type Timers } from '../src/channels/failover.js';

const policy: FailoverPolicy = { backupUrl: 'rtmp://127.0.0.1/live/backup', failoverAfterFailures: 3, failoverAfterMs: 10_000 };

describe('nextSource', () => {
  it('always pulls the primary when there is no backup', () => {
    const state: SourceState = { lostAt: 0, lastTried: 'primary' };
    for (const attempt of [1, 3, 50]) assert.equal(nextSource({ ...policy, backupUrl: null }, state, attempt, 1_000_000), 'primary');
  });

  it('keeps to the primary until failoverAfterFailures attempts, counting the loss', () => {
    const state: SourceState = { lostAt: 1_000, lastTried: 'primary' };
    assert.equal(nextSource(policy, state, 1, 1_500), 'primary');
    assert.equal(nextSource(policy, state, 2, 2_000), 'primary');
    assert.equal(nextSource(policy, state, 3, 2_500), 'backup');
  });

  it('fails over after failoverAfterMs away, whatever the count', () => {
    const state: SourceState = { lostAt: 1_000, lastTried: 'primary' };
    assert.equal(nextSource(policy, state, 1, 10_999), 'primary');
    assert.equal(nextSource(policy, state, 1, 11_000), 'backup');
  });

  it('takes turns between backup and primary once failover is due', () => {
    assert.equal(nextSource(policy, { lostAt: 0, lastTried: 'primary' }, 4, 0), 'backup');
    assert.equal(nextSource(policy, { lostAt: 0, lastTried: 'backup' }, 5, 0), 'primary');
  });

  it('counts no time away while the source plays (lostAt null)', () => {
    assert.equal(nextSource(policy, { lostAt: null, lastTried: 'primary' }, 1, 1e12), 'primary');
  });

  it('names the active source after the label', () => {
    assert.equal(activeSourceOf('primary'), 'PRIMARY');
    assert.equal(activeSourceOf('backup'), 'BACKUP');
  });
});

/** Timers on a clock that moves only when told. */
class FakeClock implements Timers {
  now = 0;
  #next = 1;
  readonly #due = new Map<number, { at: number; fn: () => void }>();

  set(fn: () => void, ms: number): unknown {
    const handle = this.#next++;
    this.#due.set(handle, { at: this.now + ms, fn });
    return handle;
  }

  clear(handle: unknown): void {
    this.#due.delete(handle as number);
  }

  get pending(): number {
    return this.#due.size;
  }

  advance(ms: number): void {
    this.now += ms;
    for (const [handle, t] of [...this.#due].sort((a, b) => a[1].at - b[1].at)) {
      if (t.at > this.now) continue;
      this.#due.delete(handle);
      t.fn();
    }
  }
}

describe('SwitchBack', () => {
  it('tries the primary once per interval after being armed', () => {
    const clock = new FakeClock();
    let tries = 0;
    const sb = new SwitchBack(30_000, () => tries++, clock);
    sb.arm();
    assert.equal(sb.armed, true);
    clock.advance(29_999);
    assert.equal(tries, 0);
    clock.advance(1);
    assert.equal(tries, 1);
    assert.equal(sb.armed, false, 'one try per arming: the next comes from a new arm');
    clock.advance(60_000);
    assert.equal(tries, 1);
  });

  it('keeps the first deadline when armed again, and can be armed again after it fired', () => {
    const clock = new FakeClock();
    let tries = 0;
    const sb = new SwitchBack(1_000, () => tries++, clock);
    sb.arm();
    clock.advance(600);
    sb.arm();
    assert.equal(clock.pending, 1);
    clock.advance(400);
    assert.equal(tries, 1);
    sb.arm();
    clock.advance(1_000);
    assert.equal(tries, 2);
  });

  it('never fires once cleared', () => {
    const clock = new FakeClock();
    let tries = 0;
    const sb = new SwitchBack(1_000, () => tries++, clock);
    sb.arm();
    sb.clear();
    assert.equal(sb.armed, false);
    assert.equal(clock.pending, 0);
    clock.advance(5_000);
    assert.equal(tries, 0);
  });
});
