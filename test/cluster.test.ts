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
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startScratchPostgres, type ScratchPostgres } from '../scripts/scratch-postgres.js';
import { createLogger } from '../src/log.js';
import { ManagedOrigin } from '../src/origin/nginx.js';
import { collect, gqlErrorCode, gqlOk, wsClient } from './helpers/gql.js';
import { startCpuLoad } from './helpers/load.js';
import { makeMp4, run } from './helpers/media.js';
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

type Node = ServiceProcess & { dir: string };

async function startNode(databaseUrl: string, name: string, lease = { leaseMs, heartbeatMs }, extraEnv: Record<string, string> = {}): Promise<Node> {
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
    ...extraEnv,
  });
  services.push(proc);
  return { ...proc, dir };
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

async function createChannels(url: string, count: number, prefix: string, extra: Record<string, unknown> = {}): Promise<string[]> {
  const vod = await gqlOk<{ registerVodResource: { id: string } }>(url, 'mutation { registerVodResource(input: { name: "small", path: "clips/small.mp4" }) { id } }');
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const d = await gqlOk<{ createVirtualLive: { id: string } }>(url, 'mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }', {
      i: { name: `${prefix}${i}`, sourceType: 'VOD', vodResourceId: vod.registerVodResource.id, ...extra },
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
  return new Map([...(await publisherSample()).streams].map(([name, clients]) => [name, clients.map((c) => c.id)]));
}

/**
 * One /stat sample: each stream's publishing clients with the earliest instant their
 * connection can have opened (the request's start minus the <time> nginx has seen
 * it for), and the request's start and end: the state was read between the two.
 */
async function publisherSample(): Promise<{ startAt: number; endAt: number; streams: Map<string, { id: string; connectedAtLeast: number }[]> }> {
  const startAt = Date.now();
  const res = await fetch(`http://127.0.0.1:${originHttpPort}/stat`);
  const xml = await res.text();
  const endAt = Date.now();
  const out = new Map<string, { id: string; connectedAtLeast: number }[]>();
  for (const stream of xml.matchAll(/<stream>([\s\S]*?)<\/stream>/g)) {
    const body = stream[1] ?? '';
    const name = /<name>([^<]*)<\/name>/.exec(body.replace(/<client>[\s\S]*?<\/client>/g, ''))?.[1];
    if (name === undefined) continue;
    const clients = [...body.matchAll(/<client>([\s\S]*?)<\/client>/g)]
      .map((c) => c[1] ?? '')
      .filter((c) => c.includes('<publishing/>'))
      .map((c) => ({ id: /<id>(\d+)<\/id>/.exec(c)?.[1] ?? '?', connectedAtLeast: startAt - Number(/<time>(\d+)<\/time>/.exec(c)?.[1] ?? Number.NaN) }));
    out.set(name, clients);
  }
  return { startAt, endAt, streams: out };
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

describe('admission in a cluster', () => {
  it('a node whose CPU budget a real load exceeds claims nothing and leaves its share to a node with room; with no room anywhere a start is refused', async () => {
    // One core of real load: the 2-core machine is about half busy, past node A's
    // budget of 30 % (and its own share of the smoothed load shows within seconds).
    const load = startCpuLoad(1);
    try {
      const url = await freshDatabase();
      const a = await startNode(url, 'budget-a', { leaseMs, heartbeatMs }, { VLIVE_CPU_BUDGET: '0.3' });
      const b = await startNode(url, 'budget-b');
      const nodes = await nodeIds(a.url);
      // The smoothed load (5 s time constant) must pass A's budget before the starts.
      await pollUntil(
        async () => (await gqlOk<{ nodes: { name: string; capacity: number; running: number }[] }>(a.url, '{ nodes { name capacity running } }')).nodes,
        (ns) => ns.some((n) => n.name === 'budget-a' && n.capacity <= n.running),
        20_000,
        'node A to advertise no room',
      );
      const ids = await createChannels(a.url, 6, 'adm');
      await startAll(a.url, ids);
      const owners = await query<{ ownerNodeId: string }>(url, 'SELECT "ownerNodeId" FROM "VirtualLive" WHERE id = ANY($1)', [ids]);
      assert.deepEqual(new Set(owners.map((o) => o.ownerNodeId)), new Set([nodes.get('budget-b')]), 'every start asked of A runs on B');

      // B goes; A alone has no room: a start is refused at the door and nothing runs it.
      b.kill('SIGTERM');
      await b.exited;
      const [extra] = await createChannels(a.url, 1, 'refused');
      assert.equal(await gqlErrorCode(a.url, startQ, { id: extra }), 'CAPACITY_EXHAUSTED');
      const [row] = await query<{ status: string; desiredState: string }>(url, 'SELECT status, "desiredState" FROM "VirtualLive" WHERE id = $1', [extra]);
      assert.deepEqual(row, { status: 'STOPPED', desiredState: 'STOPPED' }, 'the refused start changed nothing');
    } finally {
      await load.stop();
    }
  });
});

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

      // So does a programme set on A: C sends its slots now, not at its next one-minute refresh.
      const scheduled = victims[1] ?? '';
      const programme = { timeZone: 'UTC', fillerVodResourceId: vod, entries: [{ start: new Date(Date.now() + 3_600_000).toISOString(), vodResourceId: vod, durationSeconds: 60 }] };
      await gqlOk(a.url, 'mutation($id: ID!, $i: ProgrammeInput!) { setProgramme(virtualLiveId: $id, input: $i) { id } }', { id: scheduled, i: programme });
      await pollUntil(
        () => Promise.resolve(c.output()),
        (out) => new RegExp(`"playlist sent to the running channel".*"channel":"${scheduled}"`).test(out),
        5000,
        'C to send the programme set on A',
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

/** Every segment file under a node's data dir, relative to it (as Recording.path is). */
async function segmentFiles(dir: string): Promise<string[]> {
  const entries = await readdir(join(dir, 'recordings'), { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.mp4'))
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

interface RecordingRow {
  virtualLiveId: string;
  path: string;
  nodeName: string | null;
  startedMs: number;
  durationSeconds: number;
}

function recordingRows(url: string): Promise<RecordingRow[]> {
  return query<RecordingRow>(
    url,
    `SELECT "virtualLiveId", path, "nodeName", (extract(epoch FROM "startedAt") * 1000)::float8 AS "startedMs", "durationSeconds" FROM "Recording" ORDER BY "startedAt"`,
  );
}

/**
 * Shared by the two tests below: node X records three channels, is frozen and fenced,
 * and node Y takes them over and records them too, so each channel's segments lie on
 * two nodes' disks.
 */
describe('a node frozen with SIGSTOP, recording and snapshots on', () => {
  // A longer heartbeat widens the fence's margin (2 heartbeats) on a busy test machine.
  const fencing = { leaseMs: 6000, heartbeatMs: 1000 };
  const sweepEnv = { VLIVE_RETENTION_SWEEP_SECONDS: '1' };
  let url = '';
  let x: Node | undefined;
  let y: Node | undefined;
  let ids: string[] = [];

  after(async () => {
    x?.kill('SIGCONT');
    for (const s of [x, y]) s?.kill('SIGTERM');
    await Promise.all([x?.exited, y?.exited]);
  });

  it('is fenced: its publishers close before its leases end and the new ones connect after; its recordings are finalised, its late snapshots refused', async (t) => {
    url = await freshDatabase();
    const nx = (x = await startNode(url, 'frozen-x', fencing, sweepEnv));
    ids = await createChannels(nx.url, 3, 'f', { recording: { enabled: true, segmentSeconds: 2 }, snapshot: { enabled: true, intervalSeconds: 1 } });
    await startAll(nx.url, ids);
    await pollUntil(
      () => query<{ virtualLiveId: string }>(url, 'SELECT DISTINCT "virtualLiveId" FROM "Recording"'),
      (rows) => rows.length === ids.length,
      20_000,
      'X to list a segment of every channel',
    );
    const ny = (y = await startNode(url, 'taker-y', fencing, sweepEnv));
    const nodes = await nodeIds(ny.url);
    const xId = nodes.get('frozen-x');
    const yId = nodes.get('taker-y');
    const firstPubs = await publishers();
    const oldPublisher = new Map(ids.map((id) => [id, firstPubs.get(id)?.[0] ?? '']));
    assert.ok([...oldPublisher.values()].every((p) => p !== ''), 'X publishes all three');
    const originLogFrom = (await readFile(origin.paths.errorLog, 'utf8').catch(() => '')).length;

    // Two watchers, 100 ms apart each. The origin's: when X's publisher was first seen
    // gone (an upper bound of its close) and the earliest instant Y's publisher can have
    // connected (a lower bound). The database's: X's last lease expiry (database clock,
    // the same host), and each new snapTakenAt with the row's owner at that moment.
    const oldGoneAt = new Map<string, number>();
    const newConnectedAtLeast = new Map<string, number>();
    const lastExpiry = new Map<string, number>();
    const snapLast = new Map<string, number>();
    const snapMax = new Map<string, number>();
    const staleSnaps: string[] = [];
    let watching = true;
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 100));
    const originWatcher = (async () => {
      while (watching) {
        const sample = await publisherSample();
        for (const id of ids) {
          const clients = sample.streams.get(id) ?? [];
          const old = oldPublisher.get(id) ?? '';
          if (!clients.some((c) => c.id === old) && !oldGoneAt.has(id)) oldGoneAt.set(id, sample.endAt);
          const fresh = clients.find((c) => c.id !== old);
          if (fresh !== undefined && !newConnectedAtLeast.has(id)) newConnectedAtLeast.set(id, fresh.connectedAtLeast);
        }
        await pause();
      }
    })();
    const dbWatcher = (async () => {
      while (watching) {
        const rows = await db.query<{ id: string; ownerNodeId: string | null; expiresMs: number | null; snapMs: number | null }>(
          `SELECT id, "ownerNodeId", (extract(epoch FROM "leaseExpiresAt") * 1000)::float8 AS "expiresMs",
                  (extract(epoch FROM "snapTakenAt") * 1000)::float8 AS "snapMs" FROM "VirtualLive"`,
        );
        for (const r of rows.rows) {
          if (r.ownerNodeId === xId && r.expiresMs !== null) lastExpiry.set(r.id, Math.max(lastExpiry.get(r.id) ?? 0, r.expiresMs));
          if (r.snapMs === null) continue;
          // Once Y owns the row, a new snapTakenAt from before X's lease ended is X's, written too late.
          const changed = r.snapMs !== snapLast.get(r.id);
          snapLast.set(r.id, r.snapMs);
          snapMax.set(r.id, Math.max(snapMax.get(r.id) ?? 0, r.snapMs));
          if (changed && r.ownerNodeId === yId && r.snapMs < (lastExpiry.get(r.id) ?? 0)) staleSnaps.push(`${r.id}: ${new Date(r.snapMs).toISOString()}`);
        }
        await pause();
      }
    })();
    try {
      await pause();
      nx.kill('SIGSTOP');
      const frozenAt = Date.now();
      await pollUntil(
        () => query<{ ownerNodeId: string; status: string }>(url, 'SELECT "ownerNodeId", status FROM "VirtualLive"'),
        (rows) => rows.length === ids.length && rows.every((r) => r.ownerNodeId === yId && r.status === 'LIVING'),
        fencing.leaseMs + 15_000,
        'Y to own all three, LIVING',
      );
      await pollUntil(() => Promise.resolve(newConnectedAtLeast.size), (n) => n === ids.length, 5000, 'the origin watcher to see Y publish');
      // Never two publishers, measured at both ends (nginx-rtmp would refuse a second
      // publisher by itself, so counting publishers in /stat could not fail):
      // X's publisher closed before its lease ended, and Y's connected after that.
      // nginx's <time> comes from its cached clock: a few ms of slack.
      for (const id of ids) {
        const gone = oldGoneAt.get(id) ?? Number.NaN;
        const expiry = lastExpiry.get(id) ?? Number.NaN;
        const connected = newConnectedAtLeast.get(id) ?? Number.NaN;
        t.diagnostic(`${id}: after SIGSTOP, X's publisher seen gone at +${gone - frozenAt} ms, X's lease ended at +${expiry - frozenAt} ms, Y's publisher connected at or after +${connected - frozenAt} ms`);
        assert.ok(gone <= expiry, `${id}: X's publisher gone (seen at +${gone - frozenAt} ms) before its lease could be taken (+${expiry - frozenAt} ms)`);
        assert.ok(connected + 20 >= expiry, `${id}: Y's publisher connected (at or after +${connected - frozenAt} ms) only once X's lease had ended (+${expiry - frozenAt} ms)`);
      }
      const originLog = (await readFile(origin.paths.errorLog, 'utf8').catch(() => '')).slice(originLogFrom);
      assert.doesNotMatch(originLog, /already publishing/, 'the origin never had to refuse a second publisher');

      // X wakes up: it must notice, drop the channels and write nothing.
      nx.kill('SIGCONT');
      await pollUntil(() => Promise.resolve(nx.output()), (out) => (out.match(/lease lost/g) ?? []).length >= 3, 10_000, 'X to notice its lost leases');
      await new Promise((r) => setTimeout(r, 3 * fencing.heartbeatMs + 1000));
      const workers = await gqlOk<{ workers: { pipelines: number }[] }>(nx.url, '{ workers { pipelines } }');
      assert.equal(workers.workers.reduce((n, w) => n + w.pipelines, 0), 0, 'X runs nothing');
      const final = await query<{ ownerNodeId: string; status: string }>(url, 'SELECT "ownerNodeId", status FROM "VirtualLive"');
      assert.ok(final.every((r) => r.ownerNodeId === yId && r.status === 'LIVING'), JSON.stringify(final));
      const pubs = await publishers();
      for (const id of ids) assert.equal(pubs.get(id)?.length, 1, `one publisher of ${id}`);

      // Snapshots: X's worker went on taking them while X was frozen, until the fence;
      // delivered after SIGCONT, their times are older than Y's, and the lease refuses them.
      assert.deepEqual(staleSnaps, [], "no snapshot of X's listed once Y owned the channel");
      for (const id of ids) assert.ok((snapMax.get(id) ?? 0) > (lastExpiry.get(id) ?? Number.NaN), `${id}: Y's snapshots are listed`);

      // Recordings: every segment X wrote is listed as X's, the last one too (finalised
      // after the fence cut the publish, but before X's lease ended).
      // Y records them from its own start (its first segment closes a GOP or more after it).
      const rows = await pollUntil(
        () => recordingRows(url),
        (all) => ids.every((id) => all.some((r) => r.virtualLiveId === id && r.nodeName === 'taker-y')),
        15_000,
        'Y to list a segment of every channel',
      );
      const xRows = rows.filter((r) => r.nodeName === 'frozen-x');
      assert.deepEqual(xRows.map((r) => r.path).sort(), await segmentFiles(nx.dir), "X's rows are exactly X's files");
      assert.ok(rows.every((r) => r.nodeName === 'frozen-x' || r.nodeName === 'taker-y'), 'every row names its node');
      for (const id of ids) {
        const last = xRows.filter((r) => r.virtualLiveId === id).at(-1);
        assert.ok(last !== undefined, `${id}: X recorded it`);
        // The file's mtime is when X's worker last wrote it: the finalising moov.
        const writtenMs = (await stat(join(nx.dir, last.path))).mtimeMs;
        const expiry = lastExpiry.get(id) ?? Number.NaN;
        t.diagnostic(`${id}: X's last segment (${last.durationSeconds.toFixed(2)} s) written at +${Math.round(writtenMs - frozenAt)} ms`);
        assert.ok(writtenMs <= expiry, `${id}: X's last recording write (+${writtenMs - frozenAt} ms) came before its lease ended (+${expiry - frozenAt} ms)`);
        const probe = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', join(nx.dir, last.path)], 20_000);
        assert.ok(Number(probe.stdout.trim()) > 0, `${id}: X's last segment is playable (${probe.stdout.trim()} s)`);
      }
    } finally {
      watching = false;
      await Promise.all([originWatcher.catch(() => undefined), dbWatcher.catch(() => undefined)]);
      await db.end();
    }
  });

  it("keeps each node's recordings with it: URLs point at the holder, each node sweeps only its own files, a deleted channel's files go from every node", async () => {
    assert.ok(x !== undefined && y !== undefined && ids.length === 3, 'the fencing test ran');
    const [nx, ny] = [x, y];
    const [listed, aged, deleted] = ids as [string, string, string];
    const base = { 'frozen-x': new URL(nx.url).origin, 'taker-y': new URL(ny.url).origin };

    // Any node answers with the same URLs, each on the node whose disk holds the file.
    const recQ = 'query($id: ID!) { virtualLive(id: $id) { recordings { url node sizeBytes } } }';
    type Recs = { virtualLive: { recordings: { url: string; node: string | null; sizeBytes: number }[] } };
    const viaX = (await gqlOk<Recs>(nx.url, recQ, { id: listed })).virtualLive.recordings;
    const viaY = (await gqlOk<Recs>(ny.url, recQ, { id: listed })).virtualLive.recordings;
    assert.deepEqual(viaX, viaY);
    assert.deepEqual([...new Set(viaX.map((r) => r.node))].sort(), ['frozen-x', 'taker-y'], 'segments on both nodes');
    for (const r of viaX) {
      const holder = base[r.node as keyof typeof base];
      assert.ok(r.url.startsWith(`${holder}/recordings/${listed}/`), `${r.url} is served by ${r.node} (${holder})`);
      const res = await fetch(r.url);
      assert.equal(res.status, 200, r.url);
      assert.equal((await res.arrayBuffer()).byteLength, r.sizeBytes, r.url);
    }

    // Age one channel's segments past its 24 h: each node deletes the ones it holds,
    // file and row. A node that deleted another's row would leave that file behind forever.
    const agedRows = (await recordingRows(url)).filter((r) => r.virtualLiveId === aged);
    assert.ok(agedRows.some((r) => r.nodeName === 'frozen-x') && agedRows.some((r) => r.nodeName === 'taker-y'));
    await query(url, `UPDATE "Recording" SET "startedAt" = "startedAt" - interval '2 days' WHERE path = ANY($1)`, [agedRows.map((r) => r.path)]);
    const xListedBefore = (await recordingRows(url)).filter((r) => r.virtualLiveId === listed && r.nodeName === 'frozen-x').map((r) => r.path);
    await pollUntil(() => recordingRows(url), (rows) => !rows.some((r) => agedRows.some((a) => a.path === r.path)), 10_000, 'the aged rows to be swept');
    const holderDir = (r: RecordingRow): string => (r.nodeName === 'frozen-x' ? nx : ny).dir;
    for (const r of agedRows) {
      await assert.rejects(stat(join(holderDir(r), r.path)), { code: 'ENOENT' }, `${r.path} deleted by its holder ${r.nodeName}`);
    }
    const xListedAfter = (await recordingRows(url)).filter((r) => r.virtualLiveId === listed && r.nodeName === 'frozen-x').map((r) => r.path);
    assert.deepEqual(xListedAfter, xListedBefore, "X's other segments stay listed (no node swept them)");

    // Delete a channel through X: X's files go at once, Y's at Y's next sweep.
    await gqlOk(ny.url, stopQ, { id: deleted });
    await gqlOk(nx.url, 'mutation($id: ID!) { deleteVirtualLive(id: $id) }', { id: deleted });
    const filesOf = async (id: string): Promise<string[]> =>
      [...(await segmentFiles(nx.dir)), ...(await segmentFiles(ny.dir))].filter((p) => p.startsWith(`recordings/${id}/`));
    await pollUntil(() => filesOf(deleted), (files) => files.length === 0, 10_000, "the deleted channel's files gone from both nodes");
    for (const n of [nx, ny]) await assert.rejects(stat(join(n.dir, 'snapshots', `${deleted}.jpg`)), { code: 'ENOENT' }, `its snapshot gone from ${n.dir}`);
    assert.ok((await filesOf(listed)).length > 0, 'the other channels keep theirs');
  });
});
