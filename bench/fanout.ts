/**
 * Subscription fan-out under a restart wave: how late status events reach
 * many graphql-ws subscribers of one node.
 *
 *   node dist/bench/fanout.js [--subscribers 1000] [--channels 200] [--scope all|batch|one]
 *
 * The service runs as in the benchmark (bench/sides/vlive.ts: a child
 * process, scratch data dir, free ports, its own nginx) with N looping VOD
 * channels of a small clip. S subscribers connect over WebSocket
 * (graphql-transport-ws, spoken directly with `ws`, so the client library's
 * own work is not in the figure) and subscribe to every channel's changes
 * (`--scope all`, event by event; `--scope batch`, the batched
 * subscription an operator's console uses) or to one channel each
 * (`--scope one`, a player page; subscriber i watches channel i mod N).
 * Every event of a batch counts as one delivery, at the batch's arrival.
 * Then every worker is killed with SIGKILL: every channel goes RECONNECTING
 * and back to LIVING, the wave.
 *
 * Latency of one delivery: the instant the subscriber's socket handed the
 * message over, less the event's `at` (set by the service when it publishes
 * the status it has just written). Same machine, same clock. The subscribers
 * share this one process: on a saturated machine their own wait for CPU is in
 * the figure, as it would be in any real client on the same machine; the
 * report gives the machine's busy share over the wave so that can be judged.
 *
 * Writes bench/results/fanout-<time>.json and fanout-latest.json.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { Disposers } from './children.js';
import { measuredTree } from './machine.js';
import { makeClip } from './media.js';
import { gql } from './net.js';
import { OriginWatch } from './origin-watch.js';
import { machineCpu, processTree } from './procfs.js';
import { openVlive } from './sides/vlive.js';
import { percentile } from './stats.js';

const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '1000' },
    channels: { type: 'string', default: '200' },
    scope: { type: 'string', default: 'all' },
    'results-dir': { type: 'string', default: 'bench/results' },
  },
});
const subscribers = Number(values.subscribers);
const channels = Number(values.channels);
const scope = values.scope;
if (scope !== 'all' && scope !== 'batch' && scope !== 'one') throw new Error('--scope must be all, batch or one');

interface Delivery {
  readonly atMs: number;
  readonly arrivedMs: number;
}

/** One subscriber: connects, subscribes, and keeps each message's arrival time and text for later. */
class Subscriber {
  readonly received: { arrivedMs: number; data: string }[] = [];
  readonly #ws: WebSocket;
  readonly ready: Promise<void>;

  readonly #field: string;

  constructor(url: string, channelId: string | null, batched: boolean) {
    this.#field = batched ? 'virtualLiveStatusChanges' : 'virtualLiveStatusChanged';
    this.#ws = new WebSocket(url, 'graphql-transport-ws');
    this.ready = new Promise((resolve, reject) => {
      this.#ws.once('error', reject);
      this.#ws.on('open', () => this.#ws.send(JSON.stringify({ type: 'connection_init', payload: {} })));
      this.#ws.on('message', (data: Buffer) => {
        const arrivedMs = performance.timeOrigin + performance.now();
        const text = data.toString('utf8');
        if (text.includes('"type":"next"')) {
          this.received.push({ arrivedMs, data: text });
          return;
        }
        const msg = JSON.parse(text) as { type: string };
        if (msg.type === 'connection_ack') {
          const args = channelId === null ? '' : `(id: "${channelId}")`;
          this.#ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: `subscription { ${this.#field}${args} { id status at } }` } }));
          // The server registers the subscription as it handles this message; give it that turn.
          setTimeout(resolve, 50);
        } else if (msg.type === 'error') reject(new Error(text));
      });
    });
  }

  deliveries(): Delivery[] {
    return this.received.flatMap(({ arrivedMs, data }) => {
      const got = (JSON.parse(data) as { payload: { data: Record<string, { at: string } | { at: string }[]> } }).payload.data[this.#field];
      return (Array.isArray(got) ? got : got === undefined ? [] : [got]).map((e) => ({ atMs: Date.parse(e.at), arrivedMs }));
    });
  }

  close(): void {
    this.#ws.close();
  }
}

const disposers = new Disposers();
let keep = false;
const dir = await mkdtemp(join(tmpdir(), 'vlive-fanout-'));
process.on('SIGINT', () => void disposers.drain(() => undefined).then(() => process.exit(130)));
try {
  const clipPath = await makeClip(dir, { seconds: 10, width: 640, height: 360, fps: 25, videoKbps: 500, audioKbps: 64 });
  const side = await openVlive(
    { clipPath, dir, kind: 'vod', channels, hls: false, startTimeoutMs: 30_000, logPath: join(dir, 'service.log'), disposers },
    { workers: null, vliveDir: process.cwd() },
  );
  // Never started: the vlive side's start waits for its own answer, not for the watch.
  const watch = new OriginWatch(side.hlsPort, 50);
  for (let i = 0; i < channels; i += 10) {
    const outcomes = await Promise.all(Array.from({ length: Math.min(10, channels - i) }, (_, k) => side.start(i + k, watch)));
    const failed = outcomes.find((o) => !o.ok);
    if (failed !== undefined) throw new Error(`a start failed: ${failed.error ?? ''}`);
  }
  const pool = (await side.chargedPids()).filter((p) => p.role === 'service')[0];
  if (pool === undefined) throw new Error('no service process');
  const url = side.apiUrl.replace('http://', 'ws://');

  const subs = Array.from({ length: subscribers }, (_, i) => new Subscriber(url, scope === 'one' ? (side.streams[i % channels] ?? null) : null, scope === 'batch'));
  await Promise.all(subs.map((s) => s.ready));
  await sleep(2000);
  for (const s of subs) s.received.length = 0;

  // The wave: every worker dies at once; every channel goes RECONNECTING, then LIVING again.
  const workers = (await processTree(pool.pid)).filter((p) => p.pid !== pool.pid && p.comm !== 'nginx');
  const busy0 = await machineCpu();
  const killedAt = Date.now();
  for (const w of workers) process.kill(w.pid, 'SIGKILL');
  const gqlUrl = side.apiUrl;
  let living = 0;
  const failures: string[] = [];
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
    await sleep(500);
    const d = await gql<{ virtualLives: { status: string }[] }>(gqlUrl, '{ virtualLives { status } }', {}, 30_000).catch((err: unknown) => {
      failures.push(`${new Date().toISOString()} status poll: ${String(err)}`);
      return null;
    });
    if (d === null) continue;
    living = d.virtualLives.filter((v) => v.status === 'LIVING').length;
    if (living === channels && Date.now() - killedAt > 3000) break;
  }
  await sleep(2000); // the last events' deliveries
  const busy1 = await machineCpu();
  const waveSeconds = (Date.now() - killedAt) / 1000;

  const latencies: number[] = [];
  let events = 0;
  for (const s of subs) {
    for (const d of s.deliveries()) {
      latencies.push(d.arrivedMs - d.atMs);
      events += 1;
    }
  }
  for (const s of subs) s.close();
  latencies.sort((a, b) => a - b);
  const round = (v: number | null): number | null => (v === null ? null : Math.round(v * 10) / 10);
  const tree = await measuredTree(process.cwd());
  const report = {
    commit: tree.commit,
    dirty: tree.dirty,
    startedAt: new Date(killedAt).toISOString(),
    subscribers,
    scope,
    channels,
    workersKilled: workers.length,
    channelsLivingAfter: living,
    waveSeconds: Math.round(waveSeconds * 10) / 10,
    events,
    messages: subs.reduce((n, s) => n + s.received.length, 0),
    eventsPerSubscriber: Math.round((events / subscribers) * 10) / 10,
    latencyMs: { p50: round(percentile(latencies, 50)), p99: round(percentile(latencies, 99)), max: round(latencies[latencies.length - 1] ?? null) },
    pollFailures: failures,
    machineBusyDuringWave: Math.round(((busy1.busy - busy0.busy) / Math.max(1, busy1.total - busy0.total)) * 100) / 100,
  };
  console.log(JSON.stringify(report, null, 2));
  await mkdir(values['results-dir'], { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-').replace(/-\d+Z$/, 'Z');
  const text = `${JSON.stringify(report, null, 2)}\n`;
  await writeFile(join(values['results-dir'], `fanout-${stamp}.json`), text);
  await writeFile(join(values['results-dir'], 'fanout-latest.json'), text);
} catch (err) {
  console.error(`fanout: ${String(err)}; the service's log: ${join(dir, 'service.log')}`);
  keep = true;
  process.exitCode = 1;
} finally {
  await disposers.drain((name, err) => console.error(`cleanup ${name}: ${String(err)}`));
  if (!keep) await rm(dir, { recursive: true, force: true });
}

