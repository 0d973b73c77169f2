import assert from 'node:assert/strict';
import { it } from 'node:test';
import { assertTransition, canTransition, IllegalTransitionError, liveStatuses, triggerOf } from '../src/channels/status.js';
import { KeyedLock } from '../src/channels/lock.js';

it('allows the lifecycle moves and refuses the others', () => {
  assert.ok(canTransition('STOPPED', 'STARTING'));
  assert.ok(canTransition('STARTING', 'LIVING'));
  assert.ok(canTransition('LIVING', 'RECONNECTING'));
  assert.ok(canTransition('RECONNECTING', 'LIVING'));
  assert.ok(canTransition('ERROR', 'STARTING'));
  assert.throws(() => assertTransition('STOPPED', 'LIVING'), /STOPPED → LIVING/);
  assert.throws(() => assertTransition('ERROR', 'LIVING'));
  for (const s of liveStatuses) if (s !== 'STOPPED') assert.ok(canTransition(s, 'STOPPED'), `${s} can stop`);
});

it('names the trigger of each edge, and refuses the others with a coded error', () => {
  assert.match(triggerOf('RECONNECTING', 'ERROR') ?? '', /gave up/);
  assert.equal(triggerOf('STOPPED', 'LIVING'), null);
  assert.throws(
    () => assertTransition('ERROR', 'RECONNECTING', 'ch1'),
    (err: unknown) => err instanceof IllegalTransitionError && err.code === 'INVALID_STATE' && /ERROR → RECONNECTING on channel ch1/.test(err.message),
  );
});

it('runs one operation at a time per key, and keys independently', async () => {
  const lock = new KeyedLock();
  const order: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const a1 = lock.run('a', async () => {
    order.push('a1 start');
    await gate;
    order.push('a1 end');
  });
  const a2 = lock.run('a', async () => {
    order.push('a2');
  });
  await lock.run('b', async () => {
    order.push('b');
  });
  release();
  await Promise.all([a1, a2]);
  assert.deepEqual(order, ['a1 start', 'b', 'a1 end', 'a2']);
  await assert.rejects(lock.run('a', () => Promise.reject(new Error('boom'))), /boom/);
  await lock.run('a', async () => order.push('after failure'));
  assert.equal(order.at(-1), 'after failure');
});
