/**
 * The stall watchdog and the stutter meter on real workers and real
 * GStreamer. A live channel is starved on purpose: its upstream publisher is
 * SIGSTOPped, so the RTMP connection stays up and nothing arrives; its
 * source is reported stalled while its output keeps publishing. A looping
 * file channel runs next to it, over the same time, as the healthy control.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createLogger } from '../src/log.js';
import type { SourceEvent } from '../src/pool/pipeline-spec.js';
import type { PipelineEvent, WorkerPool } from '../src/pool/pool.js';
import { makeMp4, startPublisher, type Publisher } from './helpers/media.js';
import { startWorkerPool, waitPipeline as waitPoolPipeline, waitSource } from './helpers/pool.js';
import { startRelay as startRelayOrigin } from './helpers/relay.js';

const log = createLogger({ test: 'watchdog' });
/** Short, so the test is quick; the production default is 5000. */
const stallTimeoutMs = 3000;

let dir = '';
let clip = '';
let relay = '';
let pool: WorkerPool;
const disposers: Array<() => Promise<void> | void> = [];

function waitPipeline(channelId: string, states: PipelineEvent['state'][], timeoutMs: number): Promise<PipelineEvent> {
  return waitPoolPipeline(pool, channelId, states, timeoutMs);
}

function sourceEvent(channelId: string, kind: SourceEvent['kind'], timeoutMs: number): Promise<SourceEvent> {
  return waitSource(pool, channelId, kind, timeoutMs);
}

/** The next heartbeat's stats of a channel that match `pred`. */
function untilStats(channelId: string, pred: (s: NonNullable<ReturnType<typeof statsOf>>) => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      const s = statsOf(channelId);
      if (s !== undefined && pred(s)) return resolve();
      if (Date.now() > deadline) return reject(new Error(`${what}: last stats ${JSON.stringify(s)}`));
      setTimeout(tick, 100);
    };
    tick();
  });
}

function statsOf(channelId: string) {
  return pool.workers().flatMap((w) => w.stats).find((s) => s.channelId === channelId);
}

async function startRelay(root: string): Promise<string> {
  const relay = await startRelayOrigin(root);
  disposers.push(() => relay.stop());
  return relay.url;
}

function publish(stream: string): Publisher {
  const p = startPublisher(clip, `${relay}/${stream}`, { loop: true });
  disposers.push(async () => {
    // A stopped process ignores SIGTERM until it is continued.
    p.process.kill('SIGCONT');
    await p.stop();
  });
  return p;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vlive-watchdog-test-'));
  clip = await makeMp4(dir, { seconds: 2, width: 320, height: 180, fps: 25, name: 'clip' });
  relay = await startRelay(join(dir, 'relay'));
  pool = await startWorkerPool({ pipelineStartTimeoutMs: 15_000, stallTimeoutMs, log });
});

after(async () => {
  await pool?.dispose();
  for (const d of disposers.reverse()) await d();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

test('a starved live channel is reported stalled within the timeout; a healthy one next to it shows no stutter', async (t) => {
  const publisher = publish('in');
  const live = { channelId: 'starved', source: { kind: 'live' as const, label: 'primary' as const, protocol: 'rtmp' as const, url: `${relay}/in`, connectTimeoutMs: 5000, rtspTransport: 'tcp' as const, transcode: 'never' as const }, targets: [`${relay}/starved-out`] };
  const file = {
    channelId: 'healthy',
    source: { kind: 'vod' as const, items: [{ id: 'clip', path: clip }], loop: true },
    targets: [`${relay}/healthy-out`],
  };
  const bothPlaying = Promise.all([waitPipeline('starved', ['playing'], 20_000), waitPipeline('healthy', ['playing'], 20_000)]);
  await pool.startPipeline(live);
  await pool.startPipeline(file);
  await bothPlaying;
  // Both have reported numbers while flowing: bytes to the origin, no stall.
  await untilStats('starved', (s) => (s.targets[0]?.bytesSent ?? 0) > 0 && s.positionSeconds > 1, 10_000, 'starved channel flowing');
  await untilStats('healthy', (s) => (s.targets[0]?.bytesSent ?? 0) > 0, 10_000, 'healthy channel flowing');
  const healthyBefore = statsOf('healthy');
  assert.ok(healthyBefore !== undefined);

  // A relay's output outlives its source: the stall is the source's, reported
  // as a source event, and the output pipeline keeps its publish session.
  const stalled = sourceEvent('starved', 'down', stallTimeoutMs + 10_000);
  const stoppedAt = Date.now();
  publisher.process.kill('SIGSTOP');
  const ev = await stalled;
  const tookMs = Date.now() - stoppedAt;
  assert.equal(ev.kind, 'down');
  assert.match(ev.kind === 'down' ? ev.error : '', /^source stalled: no media for \d+ ms$/);
  assert.ok(tookMs <= stallTimeoutMs + 2000, `watchdog fired after ${tookMs} ms, limit ${stallTimeoutMs + 2000}`);
  await untilStats('starved', (s) => s.stallEvents === 1 && s.stutterSeconds > 1, 5_000, 'the stall counted in the heartbeat');
  const starved = statsOf('starved');
  assert.ok(starved !== undefined);
  assert.equal(starved.state, 'playing', 'the output pipeline plays on without its source');
  assert.ok((starved.targets[0]?.bytesSent ?? 0) > 0);

  // The healthy channel, judged over the same time, from a heartbeat taken after the stall.
  await untilStats('healthy', (s) => s.positionSeconds > healthyBefore.positionSeconds + tookMs / 1000, 5_000, 'healthy heartbeat after the stall');
  const healthy = statsOf('healthy');
  assert.ok(healthy !== undefined);
  assert.equal(healthy.state, 'playing');
  // Coupling to the starved neighbour would show as seconds (its stall is 3 s and more). A machine
  // loaded by the suite's other file may cost the healthy output a late sample or two, not more.
  assert.ok(healthy.stutterSeconds < 0.1, `healthy stutter: ${JSON.stringify(healthy)}`);
  assert.equal(healthy.stallEvents, 0);
  assert.ok(healthy.outputLagSeconds < 0.2, `healthy lag ${healthy.outputLagSeconds}`);
  assert.ok(healthy.loopBoundaries >= 2, `a 2 s file crosses loop boundaries: ${healthy.loopBoundaries}`);
  assert.ok((healthy.targets[0]?.bytesSent ?? 0) > (healthyBefore.targets[0]?.bytesSent ?? 0));
  assert.deepEqual(healthy.targets.map((x) => x.errors), [0]);
  t.diagnostic(`stall reported ${tookMs} ms after SIGSTOP; starved ${JSON.stringify(starved)}; healthy ${JSON.stringify(healthy)}`);

  // The channel layer hands the output a new source; a second stall adds up in the same pipeline.
  publisher.process.kill('SIGCONT');
  const up = sourceEvent('starved', 'up', 20_000);
  assert.equal(pool.setSource('starved', { ...live.source }, 'replace'), true);
  await up;
  const stalledAgain = sourceEvent('starved', 'down', stallTimeoutMs + 10_000);
  publisher.process.kill('SIGSTOP');
  const again = await stalledAgain;
  assert.match(again.kind === 'down' ? again.error : '', /^source stalled:/);
  await untilStats('starved', (s) => s.stallEvents === 2, 5_000, 'two stalls counted');
  const total = pool.channelCounters('starved');
  assert.ok(total !== null);
  assert.equal(total.stallEvents, 2, JSON.stringify(total));
  assert.equal(total.pipelines, 1, 'one output pipeline throughout');
  assert.ok(total.stutterSeconds > starved.stutterSeconds);
  assert.equal(pool.channelCounters('healthy')?.stallEvents, 0);
  const gaps = pool.channelCounters('healthy')?.boundaryGapSecondsTotal ?? -1;
  assert.ok(gaps >= 0 && gaps < 0.2, `healthy loop boundary gaps total ${gaps} s`);

  await pool.stopPipeline('healthy');
  const final = pool.channelCounters('healthy');
  // Over the whole test, two stalls of the neighbour of several seconds each: any coupling would add seconds here.
  assert.ok(final !== null && final.pipelines === 1, JSON.stringify(final));
  assert.ok(final.stutterSeconds < 0.1, `healthy stutter over the whole test: ${final.stutterSeconds} s`);
});
