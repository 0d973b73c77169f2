/**
 * Turns for status writes (src/channels/write-turns.ts): at most N at once,
 * in the order asked, and the event loop is served between turns, which is
 * what keeps status events flowing during a restart wave (npm run
 * bench:fanout measures that on a real service).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { WriteTurns } from '../src/channels/write-turns.js';

describe('write turns', () => {
  it('runs at most N at once, in the order asked, and passes on a failure', async () => {
    const turns = new WriteTurns(2);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const jobs = Array.from({ length: 8 }, (_, i) =>
      turns.run(async () => {
        running++;
        peak = Math.max(peak, running);
        order.push(i);
        await sleep(5);
        running--;
        if (i === 3) throw new Error('write 3 failed');
        return i;
      }),
    );
    const results = await Promise.allSettled(jobs);
    assert.equal(peak, 2);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(
      results.map((r) => (r.status === 'fulfilled' ? r.value : String(r.reason))),
      [0, 1, 2, 'Error: write 3 failed', 4, 5, 6, 7],
    );
  });

  it('serves the event loop between turns, even when every write finishes in microtasks', async () => {
    const turns = new WriteTurns(1);
    const log: string[] = [];
    // Writes that never leave the microtask queue, as a synchronous SQLite driver behind promises.
    const writes = Array.from({ length: 5 }, (_, i) => turns.run(async () => void log.push(`write ${i}`)));
    // An I/O-phase callback queued after them must not wait for all of them.
    const served = new Promise<void>((resolve) => setImmediate(() => (log.push('loop'), resolve())));
    await Promise.all([...writes, served]);
    const at = log.indexOf('loop');
    assert.ok(at > 0 && at < log.length - 1, `the loop ran between writes: ${log.join(', ')}`);
  });
});
