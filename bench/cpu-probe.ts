/**
 * Quick CPU probe for the worker's pipelines, in one process and without the
 * supervisor: N looping file channels pushed to a local nginx-rtmp, then the
 * CPU this process burns over a steady window, from /proc/self/stat.
 *
 *   UV_THREADPOOL_SIZE=128 node dist/bench/cpu-probe.js [--channels 50] [--height 360]
 *     [--warmup 10] [--window 20] [--sample-ms 100] [--templates DIR] [--targets 1] [--runs 1]
 *
 * Run it with a worker's V8 flags (`workerExecArgv` in src/pool/worker-handle.ts),
 * e.g. `node --max-semi-space-size=1 dist/bench/cpu-probe.js …`: without them its
 * memory figures are not a worker's.
 *
 * --templates points at a copy of pipelines/ with edited .gst files, to
 * compare launch-line variants without touching the real ones.
 * --relay: the channels are live relays of one stream that ffmpeg publishes
 * to the origin (the file, looped), instead of file channels. The spec is
 * built loosely typed so this file also runs in older trees, to compare.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../src/log.js';
import { ManagedOrigin } from '../src/origin/nginx.js';
import { PipelineHost } from '../src/worker/host.js';
import { initNative } from '../src/gst/native.js';
import { loadTemplates } from '../src/gst/templates.js';
import { makeMp4, startPublisher, type Publisher } from '../test/helpers/media.js';

const { values } = parseArgs({
  options: {
    channels: { type: 'string', default: '50' },
    height: { type: 'string', default: '360' },
    warmup: { type: 'string', default: '10' },
    window: { type: 'string', default: '20' },
    'sample-ms': { type: 'string', default: '100' },
    templates: { type: 'string' },
    targets: { type: 'string', default: '1' },
    runs: { type: 'string', default: '1' },
    port: { type: 'string', default: '29411' },
    media: { type: 'string' },
    relay: { type: 'boolean', default: false },
  },
});
const n = Number(values.channels);
const height = Number(values.height);
const width = Math.round((height * 16) / 9 / 2) * 2;
const ticks = 100; // USER_HZ

function cpuTicks(): number {
  return userTicks() + systemTicks();
}
function statFields(): string[] {
  const f = readFileSync('/proc/self/stat', 'utf8');
  return f.slice(f.lastIndexOf(')') + 2).split(' ');
}
function userTicks(): number {
  return Number(statFields()[11]);
}
/** Kernel time: on loopback TCP this includes the receiving side's protocol work, done in the sender's syscall. */
function systemTicks(): number {
  return Number(statFields()[12]);
}
/** CPU ticks by thread name (comm), digits folded so 'queue12:src' counts as 'queue#:src'. */
function threadTicks(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    let f: string;
    try {
      f = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue;
    }
    const comm = f.slice(f.indexOf('(') + 1, f.lastIndexOf(')')).replace(/\d+/g, '#');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    out.set(comm, (out.get(comm) ?? 0) + Number(rest[11]) + Number(rest[12]));
  }
  return out;
}
/** Voluntary context switches of every thread of this process: how often its threads went to sleep and were woken. */
function wakeups(): number {
  let sum = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      sum += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/self/task/${tid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // the thread ended meanwhile
    }
  }
  return sum;
}
/** CPU ticks of another process (the origin's nginx processes). */
function pidTicks(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) {
    try {
      const rest = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      sum += Number(rest[11]) + Number(rest[12]);
    } catch {
      // gone
    }
  }
  return sum;
}
function nginxPids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(dir)) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}
/** This process's proportional memory, and what of it is the malloc heap (where Buffers' bytes live), MiB. */
function memory(): { pssMiB: number; mallocHeapMiB: number; arrayBuffersMiB: number; v8HeapMiB: number } {
  const mib = (kb: number): number => +(kb / 1024).toFixed(1);
  const pss = Number(/^Pss:\s+(\d+)/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1] ?? 0);
  const heap = /\[heap\]\n(?:.*\n)*?Pss:\s+(\d+)/.exec(readFileSync('/proc/self/smaps', 'utf8'))?.[1];
  const m = process.memoryUsage();
  return { pssMiB: mib(pss), mallocHeapMiB: mib(Number(heap ?? 0)), arrayBuffersMiB: mib(m.arrayBuffers / 1024), v8HeapMiB: mib(m.heapTotal / 1024) };
}
function threads(): number {
  return Number(/Threads:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'vlive-cpu-probe-'));
const log = createLogger({ part: 'probe' });
const port = Number(values.port);
const origin = new ManagedOrigin({ dataDir: dir, rtmpPort: port, hlsPort: port + 1, logger: log });
let publisher: Publisher | null = null;
try {
  const file = values.media ?? (await makeMp4(dir, { seconds: 10, width, height, name: `probe-${height}` }));
  await origin.start();
  if (values.relay) {
    publisher = startPublisher(file, origin.publishUrl('upstream'), { loop: true });
    await origin.waitForPublish('upstream', 10_000);
  }
  initNative();
  const templates = loadTemplates(values.templates);
  const states = new Map<string, string>();
  for (let run = 0; run < Number(values.runs); run += 1) {
    const host = new PipelineHost({
      templates,
      maxPipelines: n,
      startTimeoutMs: 30_000,
      stallTimeoutMs: 10_000,
      frameDurationSeconds: 1 / 25,
      sampleIntervalMs: Number(values['sample-ms']),
      log,
      send: (m) => {
        if (m.type === 'pipeline') states.set(m.channelId, m.state);
      },
    });
    for (let i = 0; i < n; i += 1) {
      const targets = Array.from({ length: Number(values.targets) }, (_, t) => `rtmp://127.0.0.1:${port}/live/p${run}c${i}t${t}`);
      const source = values.relay
        ? { kind: 'live', label: 'primary', protocol: 'rtmp', url: origin.publishUrl('upstream'), connectTimeoutMs: 10_000, rtspTransport: 'tcp', transcode: 'never' }
        : { kind: 'vod', items: [{ id: 'clip', path: file }], loop: true };
      const spec = { channelId: `c${i}`, source, targets };
      host.start(spec as Parameters<PipelineHost['start']>[0]);
    }
    await sleep(Number(values.warmup) * 1000);
    const t0 = cpuTicks();
    const s0 = systemTicks();
    const th0 = threadTicks();
    const v0 = wakeups();
    const originPids = nginxPids();
    const o0 = pidTicks(originPids);
    const w0 = performance.now();
    await sleep(Number(values.window) * 1000);
    const cpu = (cpuTicks() - t0) / ticks;
    const systemShare = cpu > 0 ? (systemTicks() - s0) / ticks / cpu : 0;
    const wall = (performance.now() - w0) / 1000;
    const wakeupsPerChannelSecond = (wakeups() - v0) / n / wall;
    const originCores = (pidTicks(originPids) - o0) / ticks / wall;
    const byThread: Record<string, number> = {};
    for (const [comm, t] of threadTicks()) {
      const cores = (t - (th0.get(comm) ?? 0)) / ticks / wall;
      if (cores >= 0.005) byThread[comm] = +cores.toFixed(3);
    }
    const stats = host.stats();
    const playing = stats.filter((s) => s.state === 'playing').length;
    const stutter = stats.reduce((a, s) => a + s.stutterSeconds, 0);
    const maxLag = Math.max(...stats.map((s) => s.outputLagSeconds));
    const loops = stats.reduce((a, s) => a + s.loopBoundaries, 0);
    const mem = memory();
    // With --expose-gc: what of the Buffers was garbage waiting for a full collection.
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const afterGc = gc === undefined ? undefined : memory();
    console.log(
      JSON.stringify({
        run,
        channels: n,
        height,
        playing,
        threads: threads(),
        cores: +(cpu / wall).toFixed(3),
        cpuSecPerChannelMin: +((cpu / n) * (60 / wall)).toFixed(3),
        systemShare: +systemShare.toFixed(2),
        wakeupsPerChannelSecond: +wakeupsPerChannelSecond.toFixed(1),
        originCores: +originCores.toFixed(3),
        stutterSecondsTotal: +stutter.toFixed(2),
        maxLagSeconds: +maxLag.toFixed(2),
        loopBoundaries: loops,
        errors: [...states.values()].filter((s) => s === 'error').length,
        memory: mem,
        ...(afterGc === undefined ? {} : { memoryAfterFullGc: afterGc }),
        byThread,
      }),
    );
    await host.stopAll();
    states.clear();
    await sleep(1000);
  }
} finally {
  await publisher?.stop();
  await origin.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
