/**
 * Several nodes on one PostgreSQL (issue #10), all real: a PostgreSQL cluster the
 * test starts and stops itself, service processes on their own ports, worker
 * processes, and one shared nginx-rtmp origin whose /stat judges who publishes.
 *
 * Short leases keep it fast: lease 4 s, heartbeat 500 ms, so the worker fence falls
 * 3 s after the last renewal began and other nodes may claim 4 s after it (the
 * fencing test uses 6 s and 1 s, for a wider margin on a busy machine).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startScratchPostgres, type ScratchPostgres } from '../scripts/scratch-postgres.js';
import { createLogger } from '../src/log.js';
import { ManagedOrigin } from '../src/origin/nginx.js';
import { collect, gqlOk, wsClient } from './helpers/gql.js';
import { makeMp4 } from './helpers/media.js';
import { freePort } from './helpers/ports.js';
import { pollUntil, spawnService, type ServiceProcess } from './helpers/service.js';

const leaseMs = 4000;
const heartbeatMs = 500;

let postgres: ScratchPostgres;
let origin: ManagedOrigin;
let originHttpPort: number;
let root: string;
let mediaRoot: string;
const services: ServiceProcess[] = [];
let dbCount = 0;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'vlive-cluster-'));
  mediaRoot = join(root, 'media');
  await mkdir(join(mediaRoot, 'clips'), { recursive: true });
  const [pgStarted] = await Promise.all([
    startScratchPostgres(),
    makeMp4(join(mediaRoot, 'clips'), { name: 'small', seconds: 4, width: 320, height: 240, fps: 25 }),
  ]);
  postgres = pgStarted;
  originHttpPort = await freePort();
  origin = new ManagedOrigin({ dataDir: join(root, 'origin'), rtmpPort: await freePort(), hlsPort: originHttpPort, logger: createLogger({ proc: 'test-origin' }) });
  await origin.start();
});

after(async () => {
  for (const s of services) s.kill('SIGKILL');
  await Promise.all(services.map((s) => s.exited));
  await origin?.stop();
  await postgres?.stop();
  await rm(root, { recursive: true, force: true });
});

async function freshDatabase(): Promise<string> {
  dbCount += 1;
  return postgres.createDatabase(`vlive_cluster_${dbCount}`);
}

async function startNode(databaseUrl: string, name: string, lease = { leaseMs, heartbeatMs }): Promise<ServiceProcess> {
  const dir = join(root, `${name}-${Date.now()}`);
  const proc = await spawnService({
    VLIVE_DATA_DIR: dir,
    VLIVE_MEDIA_ROOT: mediaRoot,
    DATABASE_URL: databaseUrl,
    VLIVE_HTTP_PORT: String(await freePort()),
    VLIVE_ORIGIN_RTMP_URL: origin.publishUrl('x').replace(/\/x$/, ''),
    VLIVE_NODE_NAME: name,
    VLIVE_LEASE_MS: String(lease.leaseMs),
    VLIVE_NODE_HEARTBEAT_MS: String(lease.heartbeatMs),
    VLIVE_WORKERS: '1',
    VLIVE_CPU_BUDGET: '1',
  });
  services.push(proc);
  return proc;
}

async function query<T extends pg.QueryResultRow>(databaseUrl: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

async function createChannels(url: string, count: number, prefix: string): Promise<string[]> {
  const vod = await gqlOk<{ registerVodResource: { id: string } }>(url, 'mutation { registerVodResource(input: { name: "small", path: "clips/small.mp4" }) { id } }');
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const d = await gqlOk<{ createVirtualLive: { id: string } }>(url, 'mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }', {
      i: { name: `${prefix}${i}`, sourceType: 'VOD', vodResourceId: vod.registerVodResource.id },
    });
    ids.push(d.createVirtualLive.id);
  }
  return ids;
}

const startQ = 'mutation($id: ID!) { startVirtualLive(id: $id) { status errorString ownerNodeId } }';
const stopQ = 'mutation($id: ID!) { stopVirtualLive(id: $id) { status } }';

async function startAll(url: string, ids: string[]): Promise<void> {
  const results = await Promise.all(ids.map((id) => gqlOk<{ startVirtualLive: { status: string; errorString: string | null } }>(url, startQ, { id })));
  for (const r of results) assert.equal(r.startVirtualLive.status, 'LIVING', r.startVirtualLive.errorString ?? '');
}

async function nodeIds(url: string): Promise<Map<string, string>> {
  const d = await gqlOk<{ nodes: { id: string; name: string; alive: boolean }[] }>(url, '{ nodes { id name alive } }');
  return new Map(d.nodes.filter((n) => n.alive).map((n) => [n.name, n.id]));
}

/** Publishing client ids per stream, from the shared origin's /stat. */
async function publishers(): Promise<Map<string, string[]>> {
  const res = await fetch(`http://127.0.0.1:${originHttpPort}/stat`);
  const xml = await res.text();
  const out = new Map<string, string[]>();
  for (const stream of xml.matchAll(/<stream>([\s\S]*?)<\/stream>/g)) {
    const body = stream[1] ?? '';
    const name = /<name>([^<]*)<\/name>/.exec(body.replace(/<client>[\s\S]*?<\/client>/g, ''))?.[1];
    if (name === undefined) continue;
    const ids = [...body.matchAll(/<client>([\s\S]*?)<\/client>/g)]
      .map((c) => c[1] ?? '')
      .filter((c) => c.includes('<publishing/>'))
      .map((c) => /<id>(\d+)<\/id>/.exec(c)?.[1] ?? '?');
    out.set(name, ids);
  }
  return out;
}

describe('cluster start-up', () => {
  it('two nodes starting together on an empty database migrate it once, and both come up', async () => {
    const url = await freshDatabase();
    const [a, b] = await Promise.all([startNode(url, 'mig-a'), startNode(url, 'mig-b')]);
    const rows = await query<{ migration_name: string; n: number }>(url, 'SELECT migration_name, count(*)::int AS n FROM _prisma_migrations GROUP BY 1');
    assert.ok(rows.length >= 6, `every migration recorded: ${rows.length}`);
    for (const r of rows) assert.equal(r.n, 1, `${r.migration_name} recorded once`);
    const applied = [a, b].map((s) => Number(/"migrationsApplied":(\d+)/.exec(s.output())?.[1] ?? -1));
    assert.deepEqual(applied.sort(), [0, rows.length], `one node applied everything, the other nothing: ${applied.join(', ')}`);
    const nodes = await nodeIds(a.url);
    assert.deepEqual([...nodes.keys()].sort(), ['mig-a', 'mig-b']);
    a.kill('SIGTERM');
    b.kill('SIGTERM');
    assert.deepEqual(await Promise.all([a.exited, b.exited]), [0, 0]);
  });
});

describe('a single node on SQLite', () => {
  it('lists itself as the only node, and its channels have no lease', async () => {
    const dir = join(root, `sqlite-${Date.now()}`);
    const node = await spawnService({
      VLIVE_DATA_DIR: dir,
      VLIVE_MEDIA_ROOT: mediaRoot,
      VLIVE_HTTP_PORT: String(await freePort()),
      VLIVE_ORIGIN_RTMP_URL: origin.publishUrl('x').replace(/\/x$/, ''),
      VLIVE_NODE_NAME: 'solo',
      VLIVE_WORKERS: '1',
      VLIVE_CPU_BUDGET: '1',
    });
    services.push(node);
    try {
      const [id = ''] = await createChannels(node.url, 1, 's');
      await startAll(node.url, [id]);
      const d = await gqlOk<{ nodes: { name: string; alive: boolean; running: number; capacity: number }[]; virtualLive: { ownerNodeId: string | null; leaseEpoch: number } }>(
        node.url,
        '{ nodes { name alive running capacity } virtualLive(id: "' + id + '") { ownerNodeId leaseEpoch } }',
      );
      assert.deepEqual(d.nodes.map((n) => [n.name, n.alive, n.running]), [['solo', true, 1]]);
      assert.ok((d.nodes[0]?.capacity ?? 0) > 0);
      assert.deepEqual(d.virtualLive, { ownerNodeId: null, leaseEpoch: 0 });
    } finally {
      node.kill('SIGTERM');
      assert.equal(await node.exited, 0);
    }
  });
});

interface Change {
  virtualLiveStatusChanged: { id: string; status: string; previous: string | null; at: string };
}

describe('three nodes', () => {
  it('see each other’s transitions, act on any channel, take over the channels of a node killed with -9, and hand over on SIGTERM', async (t) => {
    const url = await freshDatabase();
    const c = await startNode(url, 'node-c');
    const ids = await createChannels(c.url, 11, 'k');
    await startAll(c.url, ids);
    const [a, b] = await Promise.all([startNode(url, 'node-a'), startNode(url, 'node-b')]);
    const nodes = await nodeIds(a.url);
    assert.equal(nodes.size, 3);
    const owners = await query<{ ownerNodeId: string }>(url, 'SELECT "ownerNodeId" FROM "VirtualLive"');
    assert.ok(owners.every((o) => o.ownerNodeId === nodes.get('node-c')), 'node C owns all 11');

    const client = wsClient(a.url);
    const sub = collect<Change>(client, 'subscription { virtualLiveStatusChanged { id status previous at } }');
    try {
      await new Promise((r) => setTimeout(r, 300));
      // A stop sent to A, carried out by C (the owner), seen by A's subscription.
      const [extra, ...victims] = ids as [string, ...string[]];
      const stopped = await gqlOk<{ stopVirtualLive: { status: string } }>(a.url, stopQ, { id: extra });
      assert.equal(stopped.stopVirtualLive.status, 'STOPPED');
      await sub.until((e) => e.some((x) => x.virtualLiveStatusChanged.id === extra && x.virtualLiveStatusChanged.status === 'STOPPED' && x.virtualLiveStatusChanged.previous === 'LIVING'), 5000);
      assert.match(c.output(), new RegExp(`"channel status".*"channel":"${extra}".*"to":"STOPPED"`), 'C made the transition');

      // A playlist edit sent to A reaches the pipeline that C runs.
      const edited = victims[0] ?? '';
      const pl = await gqlOk<{ virtualLive: { playlist: { id: string }[] } }>(a.url, `{ virtualLive(id: "${edited}") { playlist { id } } }`);
      const vod = pl.virtualLive.playlist[0]?.id ?? '';
      await gqlOk(a.url, 'mutation($id: ID!, $i: UpdateVirtualLiveInput!) { updateVirtualLive(id: $id, input: $i) { id } }', { id: edited, i: { playlist: [vod, vod] } });
      await pollUntil(
        () => Promise.resolve(c.output()),
        (out) => new RegExp(`"playlist sent to the running channel".*"channel":"${edited}".*"items":2`).test(out),
        5000,
        'C to apply the playlist edited on A',
      );

      const before = sub.events.length;
      const killedAt = Date.now();
      c.kill('SIGKILL');
      await c.exited;
      const livingAgain = (e: Change[]): boolean =>
        victims.every((id) => e.slice(before).some((x) => x.virtualLiveStatusChanged.id === id && x.virtualLiveStatusChanged.status === 'LIVING'));
      await sub.until(livingAgain, leaseMs + 15_000);
      const lastLiving = Math.max(...sub.events.slice(before).filter((x) => x.virtualLiveStatusChanged.status === 'LIVING').map((x) => Date.parse(x.virtualLiveStatusChanged.at)));
      t.diagnostic(`all 10 LIVING again ${lastLiving - killedAt} ms after kill -9 (lease ${leaseMs} ms)`);
      assert.ok(lastLiving - killedAt <= leaseMs + 3000, `all 10 LIVING again ${lastLiving - killedAt} ms after the kill (lease ${leaseMs} ms)`);
      const after = await query<{ ownerNodeId: string; status: string }>(url, 'SELECT "ownerNodeId", status FROM "VirtualLive" WHERE id = ANY($1)', [victims]);
      const survivors = new Set([nodes.get('node-a'), nodes.get('node-b')]);
      assert.ok(after.every((r) => survivors.has(r.ownerNodeId) && r.status === 'LIVING'), JSON.stringify(after));
      const spread = new Set(after.map((r) => r.ownerNodeId));
      assert.equal(spread.size, 2, 'both survivors took a share');
      const pubs = await publishers();
      for (const id of victims) assert.equal(pubs.get(id)?.length, 1, `one publisher of ${id}`);

      // SIGTERM hands A's channels over to B at once, without waiting for the leases to expire.
      await client.dispose();
      const termAt = Date.now();
      a.kill('SIGTERM');
      await pollUntil(
        () => query<{ ownerNodeId: string; status: string }>(url, 'SELECT "ownerNodeId", status FROM "VirtualLive" WHERE id = ANY($1)', [victims]),
        (rows) => rows.every((r) => r.ownerNodeId === nodes.get('node-b') && r.status === 'LIVING'),
        leaseMs + 10_000,
        'B to run all 10',
      );
      const handedOverMs = Date.now() - termAt;
      t.diagnostic(`SIGTERM of A: its channels LIVING on B ${handedOverMs} ms later`);
      assert.equal(await a.exited, 0);
      // A kept renewing until it had stopped its pipelines, so waiting for expiry would take more than a lease.
      assert.ok(handedOverMs < leaseMs, `handed over in ${handedOverMs} ms, not left to expire (lease ${leaseMs} ms)`);
    } finally {
      await client.dispose();
      for (const s of [a, b]) s.kill('SIGTERM');
      await Promise.all([a.exited, b.exited]);
    }
  });
});

describe('a node frozen with SIGSTOP', () => {
  it('is fenced: its workers stop its channels before the lease can be taken, and the origin never sees two publishers', async (t) => {
    const url = await freshDatabase();
    // A longer heartbeat widens the fence's margin (2 heartbeats) on a busy test machine.
    const fencing = { leaseMs: 6000, heartbeatMs: 1000 };
    const x = await startNode(url, 'frozen-x', fencing);
    const ids = await createChannels(x.url, 3, 'f');
    await startAll(x.url, ids);
    const y = await startNode(url, 'taker-y', fencing);
    const nodes = await nodeIds(y.url);
    const xId = nodes.get('frozen-x');
    const yId = nodes.get('taker-y');
    const firstPubs = await publishers();
    const oldPublisher = new Map(ids.map((id) => [id, firstPubs.get(id)?.[0] ?? '']));
    assert.ok([...oldPublisher.values()].every((p) => p !== ''), 'X publishes all three');

    // Two watchers, 100 ms apart each: the origin's publishers, and X's leases. A
    // sample is an upper bound of when X's publisher went away; X's last lease expiry
    // (database clock, the same host) is a lower bound of when Y could claim.
    let maxPublishers = 0;
    const oldGoneAt = new Map<string, number>();
    const lastExpiry = new Map<string, number>();
    let watching = true;
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 100));
    const originWatcher = (async () => {
      while (watching) {
        const pubs = await publishers();
        const seenAt = Date.now();
        for (const id of ids) {
          const p = pubs.get(id) ?? [];
          maxPublishers = Math.max(maxPublishers, p.length);
          if (!p.includes(oldPublisher.get(id) ?? '') && !oldGoneAt.has(id)) oldGoneAt.set(id, seenAt);
        }
        await pause();
      }
    })();
    const leaseWatcher = (async () => {
      while (watching) {
        const rows = await db.query<{ id: string; ownerNodeId: string | null; expiresMs: number | null }>(
          `SELECT id, "ownerNodeId", (extract(epoch FROM "leaseExpiresAt") * 1000)::float8 AS "expiresMs" FROM "VirtualLive"`,
        );
        for (const r of rows.rows) {
          if (r.ownerNodeId === xId && r.expiresMs !== null) lastExpiry.set(r.id, Math.max(lastExpiry.get(r.id) ?? 0, r.expiresMs));
        }
        await pause();
      }
    })();
    try {
      await pause();
      x.kill('SIGSTOP');
      const frozenAt = Date.now();
      const owned = await pollUntil(
        () => query<{ ownerNodeId: string; status: string }>(url, 'SELECT "ownerNodeId", status FROM "VirtualLive"'),
        (rows) => rows.every((r) => r.ownerNodeId === yId && r.status === 'LIVING'),
        fencing.leaseMs + 15_000,
        'Y to own all three, LIVING',
      );
      assert.equal(owned.length, 3);
      await pollUntil(() => Promise.resolve(oldGoneAt.size), (n) => n === ids.length, 5000, 'the origin watcher to see X gone');
      for (const id of ids) {
        const gone = oldGoneAt.get(id) ?? Number.NaN;
        const expiry = lastExpiry.get(id) ?? Number.NaN;
        t.diagnostic(`${id}: X's publisher seen gone ${gone - frozenAt} ms after SIGSTOP; X's lease ended ${expiry - frozenAt} ms after it`);
        assert.ok(gone <= expiry, `${id}: X's publisher gone (seen at +${gone - frozenAt} ms) before its lease could be taken (+${expiry - frozenAt} ms)`);
      }
      // X wakes up: it must notice, drop the channels and write nothing.
      x.kill('SIGCONT');
      await pollUntil(() => Promise.resolve(x.output()), (out) => (out.match(/lease lost/g) ?? []).length >= 3, 10_000, 'X to notice its lost leases');
      await new Promise((r) => setTimeout(r, 3 * fencing.heartbeatMs + 1000));
      const workers = await gqlOk<{ workers: { pipelines: number }[] }>(x.url, '{ workers { pipelines } }');
      assert.equal(workers.workers.reduce((n, w) => n + w.pipelines, 0), 0, 'X runs nothing');
      const final = await query<{ ownerNodeId: string; status: string }>(url, 'SELECT "ownerNodeId", status FROM "VirtualLive"');
      assert.ok(final.every((r) => r.ownerNodeId === yId && r.status === 'LIVING'), JSON.stringify(final));
      const pubs = await publishers();
      for (const id of ids) assert.equal(pubs.get(id)?.length, 1, `one publisher of ${id}`);
      assert.ok(maxPublishers <= 1, `never two publishers on one stream (saw ${maxPublishers})`);
    } finally {
      watching = false;
      await Promise.all([originWatcher.catch(() => undefined), leaseWatcher.catch(() => undefined)]);
      await db.end();
      x.kill('SIGCONT');
      for (const s of [x, y]) s.kill('SIGTERM');
      await Promise.all([x.exited, y.exited]);
    }
  });
});
