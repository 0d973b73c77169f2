/**
 * WorkerPool with real child processes: the fake worker fixture (protocol
 * only) for placement and supervision rules, and the real worker where the
 * process behaviour itself is under test (kill -9, supervisor death).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { VliveError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { ChannelCounterBook } from '../src/pool/counters.js';
import { parseFromWorker, parseToWorker } from '../src/pool/ipc.js';
import { type PipelineSpec, type PipelineStats } from '../src/pool/pipeline-spec.js';
import { waitPipeline } from './helpers/pool.js';
import { WorkerPool, type WorkerLostEvent, type WorkerPoolOptions, type WorkerStateEvent } from '../src/pool/pool.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixture = (name: string): string => join(here, 'fixtures', `${name}.js`);
const log = createLogger({ test: 'pool' });

/** A pool of fake workers unless `real`, which runs dist/src/worker/main.js with GStreamer. */
function makePool(t: TestContext, opts: Partial<WorkerPoolOptions>, real = false): WorkerPool {
  const pool = new WorkerPool({
    size: 2,
    maxPipelinesPerWorker: 2,
    handshakeTimeoutMs: 5000,
    heartbeatIntervalMs: 200,
    stopGraceMs: 500,
    ...(real ? {} : { workerScript: fixture('worker-fake') }),
    log,
    ...opts,
  });
  t.after(() => pool.dispose());
  return pool;
}

function spec(channelId: string, port = 9): PipelineSpec {
  return {
    channelId,
    source: { kind: 'live', label: 'primary', protocol: 'rtmp', url: `rtmp://127.0.0.1:${port}/live/in`, connectTimeoutMs: 30_000, rtspTransport: 'tcp', transcode: 'never' },
    targets: [`rtmp://127.0.0.1:${port}/live/out`],
  };
}

/** A TCP port that accepts and never answers, so real pipelines stay 'starting'. */
async function blackhole(t: TestContext): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const address = server.address();
  assert.ok(address !== null && typeof address !== 'string');
  return address.port;
}

function next<T>(subscribe: (cb: (ev: T) => void) => () => void, pred: (ev: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const off = subscribe((ev) => {
      if (!pred(ev)) return;
      clearTimeout(timer);
      off();
      resolve(ev);
    });
  });
}

const onWorkerState = (pool: WorkerPool) => (cb: (ev: WorkerStateEvent) => void) => {
  pool.on('workerState', cb);
  return () => pool.off('workerState', cb);
};
const onWorkerLost = (pool: WorkerPool) => (cb: (ev: WorkerLostEvent) => void) => {
  pool.on('workerLost', cb);
  return () => pool.off('workerLost', cb);
};

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Processes we did not fork give no exit event: poll, with a deadline. */
async function untilGone(pids: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(alive)) {
    if (Date.now() > deadline) throw new Error(`still alive after ${timeoutMs} ms: ${pids.filter(alive).join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('placement spreads channels over the least-loaded workers, then capacity runs out', async (t) => {
  const pool = makePool(t, { size: 3, maxPipelinesPerWorker: 2 });
  await pool.start();
  assert.deepEqual(pool.capacity(), { total: 6, used: 0 });

  // Started together: placement reserves before it awaits, so they still spread.
  const first = await Promise.all(['a', 'b', 'c'].map((id) => pool.startPipeline(spec(id))));
  assert.equal(new Set(first.map((r) => r.workerId)).size, 3, `one each: ${JSON.stringify(first)}`);
  await Promise.all(['d', 'e', 'f'].map((id) => pool.startPipeline(spec(id))));
  assert.deepEqual(pool.workers().map((w) => [w.pipelines, w.relays]), [[2, 2], [2, 2], [2, 2]]);
  assert.deepEqual(pool.capacity(), { total: 6, used: 6 });

  await assert.rejects(pool.startPipeline(spec('g')), (err: unknown) => {
    assert.ok(err instanceof VliveError);
    assert.equal(err.code, 'CAPACITY_EXHAUSTED');
    assert.match(err.message, /all 6 pipeline slots are in use/);
    return true;
  });
  await assert.rejects(pool.startPipeline(spec('a')), (err: unknown) => err instanceof VliveError && err.code === 'INVALID_STATE');

  await pool.stopPipeline('b');
  assert.deepEqual(pool.capacity(), { total: 6, used: 5 });
  const again = await pool.startPipeline({ ...spec('g'), source: { kind: 'vod', items: [{ id: 'v', path: '/nowhere.mp4' }], loop: true } });
  assert.equal(again.workerId, first[1]?.workerId, 'the freed slot is the least loaded');
  assert.deepEqual(pool.workers().map((w) => [w.pipelines, w.relays]), [[2, 2], [2, 1], [2, 2]], 'a VOD channel is no relay');
  await pool.stopPipeline('no-such-channel'); // unknown ids resolve at once
});

test('kill -9 of a real worker: workerLost with its channels, and a replacement gets ready', async (t) => {
  const pool = makePool(t, { size: 2, maxPipelinesPerWorker: 4, heartbeatIntervalMs: 500, stopGraceMs: 2000 }, true);
  await pool.start();
  // Real pipelines whose source and target never answer: they stay placed on
  // their worker, 'starting', which is all this needs.
  const port = await blackhole(t);
  const placed = await Promise.all(['k1', 'k2', 'k3'].map(async (id) => ({ id, ...(await pool.startPipeline(spec(id, port))) })));
  const victim = pool.workers().find((w) => w.pipelines === 2);
  assert.ok(victim?.pid != null, JSON.stringify(pool.workers()));
  const victimId = victim.id;
  const slotPrefix = victimId.split('.')[0] ?? '';
  const mine = placed.filter((p) => p.workerId === victimId).map((p) => p.id);

  const lost = next(onWorkerLost(pool), (ev) => ev.workerId === victimId, 10_000, 'workerLost');
  const replaced = next(onWorkerState(pool), (ev) => ev.workerId.startsWith(`${slotPrefix}.`) && ev.workerId !== victimId && ev.state === 'ready', 10_000, 'replacement ready');
  process.kill(victim.pid, 'SIGKILL');

  const ev = await lost;
  assert.deepEqual([...ev.channelIds].sort(), mine.sort());
  assert.match(ev.reason, /SIGKILL/);
  await replaced;
  const slot = pool.workers().find((w) => w.id.startsWith(`${slotPrefix}.`));
  assert.equal(slot?.state, 'ready');
  assert.equal(slot?.restarts, 1);
  assert.equal(slot?.pipelines, 0, 'lost channels are not silently re-placed: the channel layer decides');
  assert.notEqual(slot?.pid, victim.pid);
  assert.equal(pool.capacity().used, 1);
});

test('a real worker stops every pipeline itself when its lease fence passes, and refuses new ones until renewed', async (t) => {
  const pool = makePool(t, { size: 1, maxPipelinesPerWorker: 4, heartbeatIntervalMs: 500 }, true);
  await pool.start();
  const port = await blackhole(t);
  // Renewed far ahead: nothing happens while the fence holds.
  pool.setFence(Date.now() + 60_000);
  await Promise.all(['f1', 'f2'].map((id) => pool.startPipeline(spec(id, port))));
  assert.equal(pool.capacity().used, 2);
  // The supervisor stops renewing (frozen, cut off): the worker acts on its own.
  const fencedAt = Date.now() + 300;
  const ended = Promise.all(['f1', 'f2'].map((id) => waitPipeline(pool, id, ['error', 'stopped'], 5000)));
  pool.setFence(fencedAt);
  for (const ev of await ended) {
    assert.equal(ev.state, 'error');
    assert.match(ev.error ?? '', /lease not renewed/);
  }
  assert.ok(Date.now() >= fencedAt, 'not before the fence');
  assert.equal(pool.capacity().used, 0);
  await assert.rejects(pool.startPipeline(spec('f3', port)), /lease not renewed/);
  pool.setFence(Date.now() + 60_000);
  await pool.startPipeline(spec('f4', port));
  assert.equal(pool.capacity().used, 1);
});

test('a worker that crashes during start-up is respawned with growing delays, not in a tight loop', async (t) => {
  const pool = makePool(t, {
    env: { FAKE_WORKER_CRASH_AT_START: '^w1\\.' },
    respawnBackoff: { baseMs: 200, capMs: 5000 },
    random: () => 0.999, // the top of each jitter range: delays 199, 399, 799, ... ms
  });
  const spawnTimes: number[] = [];
  pool.on('workerState', (ev) => {
    if (ev.workerId.startsWith('w1.') && ev.state === 'spawning') spawnTimes.push(Date.now());
  });
  const fourthSpawn = next(onWorkerState(pool), (ev) => ev.workerId === 'w1.4' && ev.state === 'spawning', 10_000, 'fourth spawn');
  await pool.start(); // w0 is fine, so the pool starts
  assert.equal(pool.workers()[0]?.state, 'ready');
  const w1 = pool.workers()[1];
  assert.ok(w1?.state === 'backoff' || w1?.state === 'spawning', w1?.state);
  assert.match(w1?.lastError ?? '', /exited with code 1/);

  await fourthSpawn;
  const gaps = spawnTimes.slice(1).map((at, i) => at - (spawnTimes[i] ?? at));
  t.diagnostic(`respawn gaps: ${gaps.join(', ')} ms`);
  // A tight loop would respawn every few tens of ms; the guard waits 199, 399, 799 ms.
  assert.equal(gaps.length, 3);
  assert.ok((gaps[0] ?? 0) >= 190 && (gaps[1] ?? 0) >= 390 && (gaps[2] ?? 0) >= 790, `gaps ${gaps.join(', ')}`);
  // The floors above already prove the delays double; the measured gaps also carry
  // each crash's start-up time, which a loaded machine stretches, so no stricter order is asserted.
  assert.deepEqual(pool.capacity(), { total: 2, used: 0 }, 'only the healthy worker counts');
});

test('a pool whose workers all fail the handshake rejects start() and leaves no process behind', async (t) => {
  for (const [script, why] of [
    ['worker-crash-at-start', /exited with code 1/],
    ['worker-no-handshake', /no handshake within 400 ms/],
  ] as const) {
    const pool = makePool(t, { size: 2, workerScript: fixture(script), handshakeTimeoutMs: 400 });
    const starting = pool.start();
    const pids = pool.workers().flatMap((w) => (w.pid !== null ? [w.pid] : []));
    assert.equal(pids.length, 2);
    await assert.rejects(starting, why);
    await untilGone(pids, 3000);
    assert.ok(pool.workers().every((w) => w.state === 'exited'), JSON.stringify(pool.workers()));
  }
});

test('a worker that stops sending heartbeats is killed and replaced', async (t) => {
  const pool = makePool(t, { size: 1, heartbeatIntervalMs: 100, env: { FAKE_WORKER_SILENT_AFTER_READY: '1' } });
  const lost = next(onWorkerLost(pool), () => true, 5000, 'workerLost');
  await pool.start();
  const ev = await lost;
  assert.match(ev.reason, /no heartbeat for \d+ ms \(killed by SIGKILL\)/);
});

test('a supervisor that was not running (SIGSTOP, a long pause) does not blame its worker for the heartbeats it did not read', async (t) => {
  const pool = makePool(t, { size: 1, heartbeatIntervalMs: 100 });
  await pool.start();
  const [before] = pool.workers();
  const lost: WorkerLostEvent[] = [];
  pool.on('workerLost', (ev) => lost.push(ev));
  // Blocked inside a timer callback, so the watchdog's overdue tick runs right after it,
  // before the poll phase reads the heartbeats the worker sent meanwhile (5 are the limit).
  await new Promise<void>((resolve) =>
    setTimeout(() => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
      resolve();
    }, 0),
  );
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(lost.map((ev) => ev.reason), [], 'no worker lost');
  const [after] = pool.workers();
  assert.equal(after?.pid, before?.pid, 'the same worker process');
  assert.equal(after?.state, 'ready');
});

test('stop escalates from shutdown to SIGTERM to SIGKILL within the grace', async (t) => {
  const pool = makePool(t, { size: 1, stopGraceMs: 300, env: { FAKE_WORKER_STUBBORN: '1' } });
  await pool.start();
  const pid = pool.workers()[0]?.pid;
  assert.ok(typeof pid === 'number');
  const startedAt = Date.now();
  await pool.dispose();
  const took = Date.now() - startedAt;
  assert.ok(took >= 550 && took < 3000, `took ${took} ms`);
  assert.ok(!alive(pid));
  assert.equal(pool.workers()[0]?.state, 'exited');
});

test('real workers exit by themselves when their supervisor is killed with -9', async (t) => {
  const sup = spawn(process.execPath, [fixture('supervisor')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const workerPids: number[] = [];
  t.after(() => {
    sup.kill('SIGKILL');
    for (const pid of workerPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    sup.stdout.setEncoding('utf8');
    sup.stdout.on('data', (c: string) => {
      buf += c;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    sup.once('exit', (code) => reject(new Error(`supervisor exited with ${code}`)));
  });
  workerPids.push(...(JSON.parse(line) as number[]));
  assert.equal(workerPids.length, 2);
  assert.ok(workerPids.every(alive));
  sup.kill('SIGKILL');
  await untilGone(workerPids, 5000);
});

function stats(channelId: string, over: Partial<PipelineStats> = {}): PipelineStats {
  return {
    channelId,
    state: 'playing',
    positionSeconds: 1,
    outputLagSeconds: 0,
    stutterSeconds: 0,
    stallEvents: 0,
    loopBoundaries: 0,
    boundaryGapsSeconds: [],
    framesOut: 0,
    targets: [{ index: 0, bytesSent: 0, errors: 0, bitrateBps: 0 }],
    ...over,
  };
}

test('the fence command is validated at the boundary', () => {
  assert.deepEqual(parseToWorker({ type: 'fence', untilMs: 1_700_000_000_000 }), { type: 'fence', untilMs: 1_700_000_000_000 });
  for (const untilMs of ['1', null, Number.NaN, Number.POSITIVE_INFINITY, undefined]) {
    assert.equal(parseToWorker({ type: 'fence', untilMs }), null, String(untilMs));
  }
});

test('heartbeat stats are validated at the boundary, field by field', () => {
  const ok = { type: 'heartbeat', rssBytes: 1, frameDurationSeconds: 0.04, pipelines: [stats('a')] };
  assert.deepEqual(parseFromWorker(ok), ok);
  const bad: Array<Partial<Record<keyof PipelineStats, unknown>>> = [
    { outputLagSeconds: -1 },
    { stutterSeconds: Number.NaN },
    { stallEvents: 1.5 },
    { loopBoundaries: -1 },
    { boundaryGapsSeconds: ['x'] },
    { targets: [{ index: 0, bytesSent: -5, errors: 0, bitrateBps: 0 }] },
    { targets: undefined },
  ];
  for (const over of bad) {
    assert.equal(parseFromWorker({ ...ok, pipelines: [{ ...stats('a'), ...over }] }), null, JSON.stringify(over));
  }
  assert.equal(parseFromWorker({ ...ok, frameDurationSeconds: 0 }), null);
  // Terminal pipeline messages may carry the final stats; malformed ones are refused whole.
  const final = { type: 'pipeline', channelId: 'a', state: 'error', error: 'stalled: no media progress for 5000 ms', stats: stats('a', { stallEvents: 1 }) };
  assert.deepEqual(parseFromWorker(final), final);
  assert.equal(parseFromWorker({ ...final, stats: { channelId: 'a' } }), null);
  // stallTimeoutMs is part of the handshake.
  const init = { type: 'init', workerId: 'w0.1', heartbeatIntervalMs: 1000, maxPipelines: 2, startTimeoutMs: 1000, stallTimeoutMs: 5000 };
  assert.deepEqual(parseToWorker(init), init);
  assert.equal(parseToWorker({ ...init, stallTimeoutMs: 0 }), null);
});

test('channel counters add up across pipeline restarts and worker losses', () => {
  const book = new ChannelCounterBook();
  assert.equal(book.get('c'), null);
  // First pipeline: two heartbeats, then it stalls (final stats on the terminal message).
  book.running(stats('c', { stutterSeconds: 0.5, targets: [{ index: 0, bytesSent: 100, errors: 0, bitrateBps: 0 }], boundaryGapsSeconds: [0.01] }));
  book.running(stats('c', { stutterSeconds: 1, targets: [{ index: 0, bytesSent: 200, errors: 0, bitrateBps: 0 }] }));
  book.ended(stats('c', { state: 'error', stutterSeconds: 3, stallEvents: 1, loopBoundaries: 2, framesOut: 100, targets: [{ index: 0, bytesSent: 250, errors: 1, bitrateBps: 0 }], boundaryGapsSeconds: [0.02] }));
  // Second pipeline runs, then its worker dies: its last heartbeat counts.
  book.running(stats('c', { stutterSeconds: 0.25, loopBoundaries: 1, framesOut: 40, targets: [{ index: 0, bytesSent: 50, errors: 0, bitrateBps: 0 }, { index: 1, bytesSent: 10, errors: 2, bitrateBps: 0 }] }));
  const live = book.get('c');
  assert.ok(live !== null);
  assert.equal(live.stallEvents, 1);
  assert.equal(live.stutterSeconds, 3.25);
  book.lost('c');
  // Third: stalls again.
  book.ended(stats('c', { state: 'error', stutterSeconds: 2, stallEvents: 1 }));
  assert.deepEqual(book.get('c'), {
    pipelines: 3,
    stutterSeconds: 5.25,
    stallEvents: 2,
    loopBoundaries: 3,
    framesOut: 140,
    boundaryGapSecondsTotal: 0.03,
    targets: [
      { index: 0, bytesSent: 300, errors: 1, bitrateBps: 0 },
      { index: 1, bytesSent: 10, errors: 2, bitrateBps: 0 },
    ],
  });
  book.forget('c');
  assert.equal(book.get('c'), null);
});
