/**
 * Channel leases on a real PostgreSQL (src/cluster/leases.ts), without media: what
 * the keepers claim, renew and lose, and the fenced writes of the repository. The
 * holder records the keeper's calls; the channel domain's reactions to them are
 * tested end to end in cluster.test.ts. Also the webhook outbox's claims, which
 * must post each event once when two nodes deliver from one database.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startScratchPostgres, type ScratchPostgres } from '../scripts/scratch-postgres.js';
import { ChannelRepository, LeaseLostError } from '../src/channels/repository.js';
import { LeaseKeeper, type LeaseHolder } from '../src/cluster/leases.js';
import { openDatabase, type Database } from '../src/db/client.js';
import { createLogger } from '../src/log.js';
import { WebhookOutbox } from '../src/webhooks/outbox.js';
import { pollUntil } from './helpers/service.js';
import { webhookReceiver } from './helpers/webhook-receiver.js';

const leaseMs = 1500;
const heartbeatMs = 300;
const log = createLogger({ test: 'leases' });

let postgres: ScratchPostgres;
let db: Database;
const keepers: LeaseKeeper[] = [];

before(async () => {
  postgres = await startScratchPostgres();
  db = await openDatabase(await postgres.createDatabase('vlive_leases'));
});

after(async () => {
  await Promise.all(keepers.map((k) => k.stop()));
  await db?.close();
  await postgres?.stop();
});

class Recorder implements LeaseHolder {
  readonly claimed: string[] = [];
  readonly lost: string[] = [];
  runClaimed(id: string): void {
    this.claimed.push(id);
  }
  onLeaseLost(id: string): void {
    this.lost.push(id);
  }
  onDesiredChanged(): void {}
}

function keeper(name: string, fences: number[] = []): { keeper: LeaseKeeper; holder: Recorder } {
  const holder = new Recorder();
  const k = new LeaseKeeper({
    db: db.prisma,
    nodeId: randomUUID(),
    nodeName: name,
    apiUrl: `http://${name}/graphql`,
    leaseMs,
    heartbeatMs,
    capacity: () => 100,
    running: () => holder.claimed.length - holder.lost.length,
    fence: (untilMs) => fences.push(untilMs),
    log,
  });
  k.attach(holder, { desiredChanged: () => undefined, playlistChanged: () => undefined });
  keepers.push(k);
  return { keeper: k, holder };
}

async function channels(n: number): Promise<string[]> {
  await db.prisma.virtualLive.deleteMany({});
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = await db.prisma.virtualLive.create({ data: { name: `c${i}`, sourceType: 'ONLINE', sourceUrl: 'rtmp://127.0.0.1/live/in', desiredState: 'RUNNING' } });
    ids.push(c.id);
  }
  return ids;
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('lease keepers', () => {
  it('claim orphans, renew what they hold, and fence their workers 2 heartbeats before the lease ends', async () => {
    const ids = await channels(3);
    const fences: number[] = [];
    const a = keeper('a', fences);
    const startedAt = Date.now();
    await a.keeper.start();
    assert.deepEqual([...a.holder.claimed].sort(), [...ids].sort());
    for (const id of ids) assert.equal(a.keeper.epochOf(id), 1);
    const first = fences[0] ?? 0;
    assert.ok(first >= startedAt + leaseMs - 2 * heartbeatMs && first <= Date.now() + leaseMs - 2 * heartbeatMs, `fence ${first - startedAt} ms after start`);
    // Well past one lease: still held, because renewed.
    await pause(2 * leaseMs);
    assert.deepEqual(a.holder.lost, []);
    assert.ok(fences.length >= 5, `renewed ${fences.length} times`);
    const rows = await db.prisma.virtualLive.findMany();
    for (const r of rows) {
      assert.equal(r.ownerNodeId, a.keeper.nodeId);
      assert.ok((r.leaseExpiresAt?.getTime() ?? 0) > Date.now() + leaseMs - 3 * heartbeatMs, 'renewed recently');
    }
    // A lease given back is no longer renewed (even if its release write had failed).
    const [released = ''] = ids;
    await a.keeper.release(released);
    const row = await db.prisma.virtualLive.findUniqueOrThrow({ where: { id: released } });
    assert.equal(row.ownerNodeId, null);
    await a.keeper.stop();
  });

  it('share a dead node’s channels between the survivors, with higher epochs, and refuse the stale owner’s writes', async () => {
    const ids = await channels(10);
    const a = keeper('dies');
    await a.keeper.start();
    assert.equal(a.holder.claimed.length, 10);
    const b = keeper('b');
    const c = keeper('c');
    await Promise.all([b.keeper.start(), c.keeper.start()]);
    assert.equal(b.holder.claimed.length + c.holder.claimed.length, 0, 'nothing to claim while A renews');
    // A dies: no more heartbeats, its leases run out.
    await a.keeper.stop();
    const diedAt = Date.now();
    await pollUntil(() => Promise.resolve(b.holder.claimed.length + c.holder.claimed.length), (n) => n === 10, leaseMs + 5 * heartbeatMs, 'B and C to claim all 10');
    const tookMs = Date.now() - diedAt;
    assert.ok(tookMs >= leaseMs - heartbeatMs, `not before the lease ran out (${tookMs} ms)`);
    assert.deepEqual([b.holder.claimed.length, c.holder.claimed.length], [5, 5], 'a fair share each');
    assert.equal(new Set([...b.holder.claimed, ...c.holder.claimed]).size, 10, 'no channel claimed twice');
    for (const id of ids) assert.equal(b.keeper.epochOf(id) ?? c.keeper.epochOf(id), 2);

    const repo = new ChannelRepository(db.prisma);
    const [id = ''] = ids;
    await assert.rejects(repo.writeFenced(id, { status: 'STOPPED' }, { kind: 'owner', nodeId: a.keeper.nodeId, epoch: 1 }), LeaseLostError);
    await assert.rejects(repo.writeFenced(id, { status: 'STOPPED' }, { kind: 'unowned' }), LeaseLostError, 'a live lease is not an orphan');
    const owner = b.keeper.epochOf(id) !== null ? b.keeper : c.keeper;
    const written = await repo.writeFenced(id, { status: 'LIVING' }, { kind: 'owner', nodeId: owner.nodeId, epoch: 2 });
    assert.equal(written.status, 'LIVING');

    const nodes = await b.keeper.nodes();
    assert.deepEqual(nodes.map((n) => [n.name, n.alive]).sort(), [['b', true], ['c', true]], 'a stopped node leaves the list');
  });
});

describe('webhook outboxes of two nodes on one PostgreSQL', () => {
  it('post each event once: every delivery row is claimed by one node', async () => {
    const rx = await webhookReceiver(() => 200);
    // Two nodes: two connections, so the claims race for real (on SQLite one file serialises them).
    const url = await postgres.createDatabase('vlive_webhooks');
    const [dbA, dbB] = [await openDatabase(url), await openDatabase(url)];
    const a = new WebhookOutbox({ db: dbA.prisma, log, nodeId: 'a', allowPrivate: true, pollMs: 20 });
    const b = new WebhookOutbox({ db: dbB.prisma, log, nodeId: 'b', allowPrivate: true, pollMs: 20 });
    try {
      await a.add({ url: rx.url, events: ['ERROR'], secret: 'a-test-secret-of-some-length' });
      a.start();
      b.start();
      await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? a : b).enqueue('ERROR', { n: i })));
      await pollUntil(() => Promise.resolve(rx.ok.length), (n) => n >= 60, 20_000, '60 events received');
      await pause(500);
      const ns = rx.ok.map((r) => r.json.data['n']);
      assert.equal(ns.length, 60, 'no event posted twice');
      assert.equal(new Set(ns).size, 60);
      const rows = await dbA.prisma.webhookDelivery.findMany({ select: { status: true, attempts: true } });
      assert.deepEqual([...new Set(rows.map((r) => `${r.status} ${r.attempts}`))], ['DELIVERED 1'], 'each row delivered at its first attempt, by one node');
    } finally {
      await a.stop();
      await b.stop();
      await Promise.all([dbA.close(), dbB.close(), rx.close()]);
    }
  });
});
