/**
 * Pool supervision seen from outside: worker crashes, service crashes and
 * restarts, graceful shutdown, and admission control, with real processes.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Admission } from '../src/channels/admission.js';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/client.js';
import { startTestApp, testEnv, type TestApp } from './helpers/app.js';
import { collect, gql, gqlErrorCode, gqlOk, wsClient } from './helpers/gql.js';
import { startCpuLoad, type CpuLoad } from './helpers/load.js';
import { makeMp4 } from './helpers/media.js';
import { eventually, isAlive, spawnService } from './helpers/service.js';

interface Change {
  virtualLiveStatusChanged: { id: string; status: string; previous: string | null; at: string };
}

async function setupChannels(url: string, mediaRoot: string, count: number, fps = 25): Promise<string[]> {
  await mkdir(join(mediaRoot, 'clips'), { recursive: true });
  await makeMp4(join(mediaRoot, 'clips'), { name: 'small', seconds: 4, width: 320, height: 240, fps });
  const vod = await gqlOk<{ registerVodResource: { id: string } }>(
    url,
    'mutation { registerVodResource(input: { name: "small", path: "clips/small.mp4" }) { id } }',
  );
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const d = await gqlOk<{ createVirtualLive: { id: string } }>(
      url,
      'mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }',
      { i: { name: `ch${i}`, sourceType: 'VOD', vodResourceId: vod.registerVodResource.id } },
    );
    ids.push(d.createVirtualLive.id);
  }
  return ids;
}

const startQ = 'mutation($id: ID!) { startVirtualLive(id: $id) { status errorString worker } }';

async function startAll(url: string, ids: string[]): Promise<void> {
  const results = await Promise.all(
    ids.map((id) => gqlOk<{ startVirtualLive: { status: string; errorString: string | null } }>(url, startQ, { id })),
  );
  for (const r of results) assert.equal(r.startVirtualLive.status, 'LIVING', r.startVirtualLive.errorString ?? '');
}

describe('a worker killed with -9', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ VLIVE_WORKERS: '2' });
  });
  after(async () => t?.dispose());

  it('has its 20 channels LIVING again within 3 s, and the other worker is untouched', async () => {
    const ids = await setupChannels(t.url, t.mediaRoot, 40);
    await startAll(t.url, ids);
    const channels = await gqlOk<{ virtualLives: { id: string; worker: string }[] }>(t.url, '{ virtualLives { id worker } }');
    const byWorker = new Map<string, string[]>();
    for (const c of channels.virtualLives) byWorker.set(c.worker, [...(byWorker.get(c.worker) ?? []), c.id]);
    const [victimId, victimChannels] = [...byWorker.entries()].sort((a, b) => b[1].length - a[1].length)[0] ?? ['', []];
    assert.ok(victimChannels.length >= 20, `placement spreads 40 channels: ${victimChannels.length} on the busiest`);
    const workers = await gqlOk<{ workers: { id: string; pid: number }[] }>(t.url, '{ workers { id pid } }');
    const victimPid = workers.workers.find((w) => w.id === victimId)?.pid;
    assert.ok(victimPid);

    const client = wsClient(t.url);
    const sub = collect<Change>(client, 'subscription { virtualLiveStatusChanged { id status previous at } }');
    try {
      await new Promise((r) => setTimeout(r, 300));
      const killedAt = Date.now();
      process.kill(victimPid, 'SIGKILL');
      const victims = new Set(victimChannels);
      const livingAgain = (e: Change[]) =>
        [...victims].every((id) => e.some((x) => x.virtualLiveStatusChanged.id === id && x.virtualLiveStatusChanged.status === 'LIVING'));
      await sub.until(livingAgain, 10_000);
      // Transitions only: an event whose status equals previous reports details (a reconnect attempt, an item on air).
      const transitions = sub.events.filter((x) => x.virtualLiveStatusChanged.status !== x.virtualLiveStatusChanged.previous);
      const lastLiving = Math.max(
        ...transitions
          .filter((x) => victims.has(x.virtualLiveStatusChanged.id) && x.virtualLiveStatusChanged.status === 'LIVING')
          .map((x) => Date.parse(x.virtualLiveStatusChanged.at)),
      );
      assert.ok(lastLiving - killedAt <= 3000, `all LIVING again ${lastLiving - killedAt} ms after the kill`);
      for (const id of victims) {
        const seq = transitions.filter((x) => x.virtualLiveStatusChanged.id === id).map((x) => x.virtualLiveStatusChanged.status);
        assert.deepEqual(seq, ['RECONNECTING', 'LIVING'], `channel ${id}`);
      }
      const bystanders = transitions.filter((x) => !victims.has(x.virtualLiveStatusChanged.id));
      assert.deepEqual(bystanders, [], 'channels on the healthy worker saw no change');
    } finally {
      sub.dispose();
      await client.dispose();
    }
    const now = await gqlOk<{ virtualLives: { status: string; restartCount: number }[]; workers: { state: string }[] }>(
      t.url,
      '{ virtualLives { status restartCount } workers { state } }',
    );
    assert.equal(now.virtualLives.length, 40, 'nothing lost in the database');
    assert.ok(now.virtualLives.every((c) => c.status === 'LIVING'));
    assert.equal(now.virtualLives.filter((c) => c.restartCount === 1).length, victimChannels.length);
    await eventually(
      async () => (await gqlOk<{ workers: { state: string }[] }>(t.url, '{ workers { state } }')).workers.every((w) => w.state === 'READY'),
      10_000,
      'a replacement worker',
    );
  });
});

describe('admission control', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ VLIVE_WORKERS: '1', VLIVE_MAX_PIPELINES_PER_WORKER: '2' });
  });
  after(async () => t?.dispose());

  it('refuses a start beyond capacity with CAPACITY_EXHAUSTED and leaves the others alone', async () => {
    const ids = await setupChannels(t.url, t.mediaRoot, 3);
    await startAll(t.url, ids.slice(0, 2));
    assert.equal(await gqlErrorCode(t.url, startQ, { id: ids[2] }), 'CAPACITY_EXHAUSTED');
    const now = await gqlOk<{ virtualLives: { id: string; status: string; desiredState: string }[] }>(
      t.url,
      '{ virtualLives { id status desiredState } }',
    );
    assert.deepEqual(
      now.virtualLives.map((c) => [c.status, c.desiredState]),
      [['LIVING', 'RUNNING'], ['LIVING', 'RUNNING'], ['STOPPED', 'STOPPED']],
    );
  });
});

describe('admission control by CPU and memory budgets', () => {
  for (const [env, why] of [
    [{ VLIVE_CPU_BUDGET: '0.000001' }, /CPU budget is spent/],
    [{ VLIVE_WORKER_MEMORY_BUDGET_BYTES: '1' }, /memory budget is spent/],
  ] as const) {
    it(`refuses a start when ${Object.keys(env)[0]} is spent, and starts nothing`, async () => {
      const t = await startTestApp({ VLIVE_WORKERS: '1', ...env });
      try {
        const [id] = await setupChannels(t.url, t.mediaRoot, 1);
        // Workers report memory by heartbeat; the CPU is sampled from the start.
        await eventually(async () => (await gqlOk<{ workers: { rssBytes: number }[] }>(t.url, '{ workers { rssBytes } }')).workers.every((w) => w.rssBytes > 0), 5000, 'a heartbeat');
        const r = await gql(t.url, startQ, { id });
        assert.equal(r.errors?.[0]?.extensions?.code, 'CAPACITY_EXHAUSTED');
        assert.match(r.errors?.[0]?.message ?? '', why);
        const now = await gqlOk<{ virtualLives: { status: string; desiredState: string }[]; workers: { pipelines: number }[] }>(
          t.url,
          '{ virtualLives { status desiredState } workers { pipelines } }',
        );
        assert.deepEqual(now.virtualLives, [{ status: 'STOPPED', desiredState: 'STOPPED' }]);
        assert.equal(now.workers[0]?.pipelines, 0);
      } finally {
        await t.dispose();
      }
    });
  }
});

describe('admission control at the default CPU budget', () => {
  const budget = loadConfig({}).cpuBudget;
  let t: TestApp;
  let answeredAt = 0;
  let otherWork: CpuLoad | undefined;
  let meter: Admission | undefined;
  before(async () => {
    // Someone else's work: a tenth of the machine, as a build or a desktop
    // leaves an otherwise idle machine. It must not count as channel cost.
    otherWork = startCpuLoad(0.1 * cpus().length);
    // Reads the machine as the service's admission does (the same smoothing).
    meter = new Admission({ cpuBudget: budget, workerMemoryBudgetBytes: 2 ** 40, workers: () => [] });
    t = await startTestApp({ VLIVE_WORKERS: '2', VLIVE_CPU_BUDGET: String(budget) });
    answeredAt = Date.now();
  });
  after(async () => {
    meter?.dispose();
    await otherWork?.stop();
    await t?.dispose();
  });

  // Issue #16 item 6: a new user's npm start (one channel running), then 20
  // small channels started at once, 15 s later: 17 were refused.
  it('admits 20 small VOD channels started at once next to a running one on an idle machine', async (c) => {
    const ids = await setupChannels(t.url, t.mediaRoot, 21, 10);
    await startAll(t.url, ids.slice(0, 1));
    // As reported: 15 s after the service answered, when the smoothed machine
    // load (about 5 s) no longer starts from zero but shows the machine.
    await new Promise((r) => setTimeout(r, Math.max(0, answeredAt + 15_000 - Date.now())));
    // The service refuses a start only past the budget (80 %); 20 small VOD
    // starts beside one running channel are expected to cost about 4 % of
    // this machine (README, Admission). Below 65 % busy, the load would
    // have to jump by most of the machine within the second before the checks
    // to refuse one. This file runs alone (scripts/test.sh), so the machine
    // is ours; a machine held busier than that by others fails here, with the
    // figure, rather than passing a claim it could not check.
    const idle = 0.65;
    const busy = (): string => `${((meter?.cpuBusy ?? 1) * 100).toFixed(0)} %`;
    await eventually(async () => (meter?.cpuBusy ?? 1) <= idle, 120_000, `the machine to be idle (below ${idle * 100} % busy)`);
    c.diagnostic(`the machine ${busy()} busy before the burst`);
    const results = await Promise.all(
      ids.slice(1).map((id) => gql<{ startVirtualLive: { status: string; errorString: string | null } }>(t.url, startQ, { id })),
    );
    const refusals = results.flatMap((r) => (r.errors ?? []).map((e) => `${e.extensions?.code ?? ''}: ${e.message}`));
    assert.deepEqual(refusals, [], `${refusals.length} of 20 refused, the machine ${busy()} busy`);
    for (const r of results) assert.equal(r.data?.startVirtualLive.status, 'LIVING', r.data?.startVirtualLive.errorString ?? '');
  });
});

describe('the service process', () => {
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vlive-svc-'));
    env = { ...(await testEnv(dir)), VLIVE_LOG_LEVEL: 'warn' };
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  const childPids = async (url: string): Promise<number[]> => {
    const w = await gqlOk<{ workers: { pid: number }[] }>(url, '{ workers { pid } }');
    const nginx = Number((await readFile(join(dir, 'origin', 'nginx.pid'), 'utf8')).trim());
    return [...w.workers.map((x) => x.pid), nginx];
  };
  const statuses = async (url: string) =>
    (await gqlOk<{ virtualLives: { status: string; desiredState: string }[] }>(url, '{ virtualLives { status desiredState } }')).virtualLives;

  it('after kill -9 leaves no orphans and the next start resumes the running channels', async () => {
    const first = await spawnService(env);
    let ids: string[];
    let pids: number[];
    try {
      ids = await setupChannels(first.url, join(dir, 'media'), 3);
      await startAll(first.url, ids.slice(0, 2));
      pids = await childPids(first.url);
      first.kill('SIGKILL');
      await first.exited;
    } finally {
      first.kill('SIGKILL');
    }
    await eventually(async () => !(await Promise.all(pids.map(isAlive))).some(Boolean), 5000, 'children to die with the service');

    const second = await spawnService(env);
    try {
      await eventually(
        async () => (await statuses(second.url)).filter((c) => c.status === 'LIVING').length === 2,
        15_000,
        'two channels LIVING again',
      );
      const now = await statuses(second.url);
      assert.deepEqual(now.map((c) => c.desiredState), ['RUNNING', 'RUNNING', 'STOPPED']);
      assert.equal(now[2]?.status, 'STOPPED');
    } finally {
      second.kill('SIGTERM');
      assert.equal(await second.exited, 0, second.output());
    }
  });

  it('stops gracefully on SIGTERM, keeping desired states for the next start', async () => {
    const svc = await spawnService(env);
    let pids: number[] = [];
    try {
      await eventually(async () => (await statuses(svc.url)).filter((c) => c.status === 'LIVING').length === 2, 15_000, 'resume');
      pids = await childPids(svc.url);
    } finally {
      svc.kill('SIGTERM');
    }
    assert.equal(await svc.exited, 0, svc.output());
    assert.deepEqual(await Promise.all(pids.map(isAlive)), pids.map(() => false), 'workers and nginx stopped');
    const db = await openDatabase(`file:${join(dir, 'vlive.db')}`);
    try {
      const rows = await db.prisma.virtualLive.findMany({ orderBy: { createdAt: 'asc' } });
      assert.deepEqual(
        rows.map((r) => [r.status, r.desiredState, r.workerId]),
        [['STOPPED', 'RUNNING', null], ['STOPPED', 'RUNNING', null], ['STOPPED', 'STOPPED', null]],
        'final states persisted, desired states kept',
      );
    } finally {
      await db.close();
    }
    const again = await spawnService(env);
    try {
      await eventually(async () => (await statuses(again.url)).filter((c) => c.status === 'LIVING').length === 2, 15_000, 'resume');
      assert.deepEqual((await statuses(again.url)).map((c) => c.desiredState), ['RUNNING', 'RUNNING', 'STOPPED']);
    } finally {
      again.kill('SIGTERM');
      await again.exited;
    }
  });
});
