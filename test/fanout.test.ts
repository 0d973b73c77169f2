/**
 * Subscription fan-out: batches of status changes, and identical
 * subscriptions sharing one execution (src/api/fanout.ts). The batching rule
 * is checked on the real event emitter with real timers; the sharing on a
 * real service, with real channels going live, as graphql-ws clients see it.
 * The latency under 1,000 subscribers is the benchmark's (npm run bench:fanout).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { StatusEvents, type StatusChange } from '../src/channels/events.js';
import { statusChangeBatches } from '../src/api/subscriptions.js';
import { registerClip, startTestApp, type TestApp } from './helpers/app.js';
import { collect, gqlOk, wsClient } from './helpers/gql.js';

function change(id: string, status: StatusChange['status']): StatusChange {
  return { id, status, previous: null, errorString: null, at: new Date(), warnings: [], reconnectAttempts: 0, nextAttemptAt: null, activeSource: 'PRIMARY', viewers: 0 };
}

/** A batch as `id:STATUS` strings; none when the iterator has ended. */
function names(r: IteratorResult<StatusChange[]>): string[] {
  return r.done === true ? [] : r.value.map((c) => `${c.id}:${c.status}`);
}

describe('status change batches', () => {
  it('gathers the changes of one window into one batch, in order, and only the watched channel', async () => {
    const events = new StatusEvents();
    const all = statusChangeBatches(events, null, 20);
    const one = statusChangeBatches(events, 'b', 20);
    for (const [id, s] of [['a', 'STARTING'], ['b', 'STARTING'], ['a', 'LIVING'], ['b', 'LIVING']] as const) events.publish(change(id, s));
    assert.deepEqual(names(await all.next()), ['a:STARTING', 'b:STARTING', 'a:LIVING', 'b:LIVING']);
    assert.deepEqual(names(await one.next()), ['b:STARTING', 'b:LIVING']);
    // A change after the window has closed opens the next batch.
    await sleep(40);
    events.publish(change('a', 'STOPPED'));
    assert.deepEqual(names(await all.next()), ['a:STOPPED']);
    // Ending the iterator unsubscribes it: later changes reach nobody and its timer is gone.
    await all.return?.();
    await one.return?.();
    events.publish(change('a', 'STARTING'));
    assert.equal((await all.next()).done, true);
  });
});

describe('shared subscriptions', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t?.dispose());

  it('identical subscriptions share one execution and see the same batches as the per-event stream', async () => {
    const vod = await registerClip(t);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await gqlOk<{ createVirtualLive: { id: string } }>(t.url, `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`, {
        i: { name: `fan ${i}`, sourceType: 'VOD', vodResourceId: vod, loop: true },
      });
      ids.push(c.createVirtualLive.id);
    }
    type Batch = { virtualLiveStatusChanges: { id: string; status: string }[] };
    type One = { virtualLiveStatusChanged: { id: string; status: string } };
    const batchQuery = 'subscription { virtualLiveStatusChanges { id status } }';
    const clients = [wsClient(t.url), wsClient(t.url), wsClient(t.url), wsClient(t.url)];
    const [a, b, c] = clients.slice(0, 3).map((cl) => collect<Batch>(cl, batchQuery));
    const single = collect<One>(clients[3] ?? wsClient(t.url), 'subscription { virtualLiveStatusChanged { id status } }');
    assert.ok(a !== undefined && b !== undefined && c !== undefined);
    try {
      const subs = async (want: { subscribers: number; executions: number }): Promise<void> => {
        for (const deadline = Date.now() + 5000; ; await sleep(20)) {
          const now = t.app.api.subscriptions();
          if (now.subscribers === want.subscribers && now.executions === want.executions) return;
          if (Date.now() > deadline) assert.deepEqual(now, want);
        }
      };
      // Three identical subscriptions run as one; the per-event one is another.
      await subs({ subscribers: 4, executions: 2 });

      await Promise.all(ids.map((id) => gqlOk(t.url, `mutation($id: ID!) { startVirtualLive(id: $id) { status } }`, { id })));
      const flat = (x: Batch[]): string[] => x.flatMap((e) => e.virtualLiveStatusChanges.map((s) => `${s.id}:${s.status}`));
      const allLiving = (x: Batch[]): boolean => ids.every((id) => flat(x).includes(`${id}:LIVING`));
      await Promise.all([a, b, c].map((s) => s.until(allLiving)));
      await single.until((x) => ids.every((id) => x.some((e) => e.virtualLiveStatusChanged.id === id && e.virtualLiveStatusChanged.status === 'LIVING')));
      await sleep(100);
      // One execution, one result: every sharer got the very same batches.
      assert.deepEqual(b.events, a.events);
      assert.deepEqual(c.events, a.events);
      assert.deepEqual(a.errors, []);
      // The batches hold exactly the per-event stream, in its order.
      assert.deepEqual(flat(a.events), single.events.map((e) => `${e.virtualLiveStatusChanged.id}:${e.virtualLiveStatusChanged.status}`));
      // Per channel: STARTING then LIVING; a further LIVING is a detail event (the first item on air, playout.ts).
      const transitions = (id: string): string[] =>
        flat(a.events)
          .filter((s) => s.startsWith(`${id}:`))
          .filter((s, i, all) => i === 0 || all[i - 1] !== s);
      for (const id of ids) assert.deepEqual(transitions(id), [`${id}:STARTING`, `${id}:LIVING`]);

      // Leaving: the share runs while one sharer is left, and closes with the last.
      a.dispose();
      b.dispose();
      await subs({ subscribers: 2, executions: 2 });
      c.dispose();
      await subs({ subscribers: 1, executions: 1 });

      // A subscription that fails is answered with its error and shares nothing.
      const bad = collect<Batch>(clients[0] ?? wsClient(t.url), 'subscription { virtualLiveStatusChanges(id: "cm0000000000000000000000") { id } }');
      for (const deadline = Date.now() + 5000; bad.errors.length === 0 && Date.now() < deadline; ) await sleep(20);
      assert.match(JSON.stringify(bad.errors), /NOT_FOUND/);
      await subs({ subscribers: 1, executions: 1 });
    } finally {
      single.dispose();
      for (const cl of clients) await cl.dispose();
    }
  });
});
