/**
 * The chaos soak: one node running a mix of channels for a while, faults
 * injected at random, independent receivers listening, and at the end a
 * report of what the faults cost and what they left behind.
 *
 *   npm run soak                         # 10 minutes
 *   node dist/bench/soak.js --seconds 3600 [--fault-every 20] [--seed N]
 *
 * The mix (issue #18): 40 VOD channels (10 of them also pushing to a "CDN"),
 * 10 relays of a stream published to a separate source nginx, 5 on-demand
 * channels (2 kept up by a receiver, 3 idle), 5 recording channels whose
 * recordings live on a small tmpfs. The service is `node dist/src/main.js`
 * with its own nginx-rtmp origin, as a user runs it.
 *
 * Faults, one at a time, each logged with its time: kill -9 of a worker;
 * kill -9 of the origin nginx; the relays' source dropped for 5 s; the CDN
 * refusing for 10 s (its nginx stopped); SIGSTOP of a worker for 3 s; the
 * recordings' disk full for 10 s; a burst of 25 stops then 25 starts.
 * Back to LIVING is measured from the end of the fault (the source back,
 * SIGCONT sent, the disk freed, the kill done, the burst answered) to every
 * channel wanted RUNNING being LIVING again.
 *
 * Receivers (ffprobe from Debian) play a sample of channels from the origin
 * and are started again whenever their session ends. A DTS regression is a
 * packet whose DTS is not above the previous one of its track by less than
 * a second. A timeline reset (a new publish after a crash, which starts its
 * DTS at 0) is counted apart, as the fault explains it: a backward jump of a
 * second or more, or one back into a timeline's first second (a channel
 * republished twice within a second jumps back by less than one).
 *
 * Writes bench/results/soak-<time>.json and .md, and soak-latest.json/.md.
 */
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, statfs, unlink, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createLogger } from '../src/log.js';
import { ManagedOrigin } from '../src/origin/nginx.js';
import { spawnChild, type Child } from './children.js';
import { measuredTree } from './machine.js';
import { makeClip } from './media.js';
import { freePorts, gql } from './net.js';
import { processTree } from './procfs.js';
import { loopClip } from './sides/publisher.js';
import { waitUntilUp } from './sides/vlive.js';
import { PacketLines } from './receiver.js';
import { percentile, seededRandom } from './stats.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '600' },
    'fault-every': { type: 'string', default: '20' },
    seed: { type: 'string' },
    'results-dir': { type: 'string', default: 'bench/results' },
    out: { type: 'string' },
    /** Comma-separated fault types, injected in this order (then again); default: every type, shuffled by the seed. */
    faults: { type: 'string' },
  },
});
const durationSeconds = Number(values.seconds);
const faultEverySeconds = Number(values['fault-every']);
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
const random = seededRandom(seed);
const log = createLogger({ part: 'soak' });

const faultTypes = ['worker-kill', 'origin-kill', 'source-drop', 'target-refuse', 'worker-stop', 'disk-full', 'api-burst'] as const;
type FaultType = (typeof faultTypes)[number];
interface FaultRecord {
  readonly type: FaultType;
  readonly atSeconds: number;
  readonly endSeconds: number;
  readonly backToLivingMs: number | null;
  readonly detail: string;
}

const run = (cmd: string, args: string[]): Promise<string> =>
  new Promise((resolve, reject) => execFile(cmd, args, (err, out, errOut) => (err ? reject(new Error(`${cmd}: ${errOut || err.message}`)) : resolve(out))));

/** A receiver that plays one channel for the whole soak, starting ffprobe again whenever its session ends. */
class SoakReceiver {
  regressions = 0;
  resets = 0;
  packets = 0;
  sessions = 0;
  #child: Child | null = null;
  #stopped = false;
  #last: Record<string, number | undefined> = {};
  readonly #lines = new PacketLines();

  constructor(
    readonly stream: string,
    private readonly url: string,
  ) {
    this.#spawn();
  }

  #spawn(): void {
    if (this.#stopped) return;
    this.sessions += 1;
    this.#last = {};
    this.#lines.reset();
    const child = spawnChild('stdbuf', ['-oL', 'ffprobe', '-v', 'quiet', '-rw_timeout', '5000000', '-show_entries', 'packet=codec_type,dts_time', '-of', 'compact=p=0:nk=1', this.url], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    this.#child = child;
    const out = child.process.stdout as Readable;
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => this.#onData(chunk));
    void child.exited.then(() => setTimeout(() => this.#spawn(), 500));
  }

  #onData(chunk: string): void {
    this.#lines.feed(chunk, (track, d) => {
      this.packets += 1;
      const prev = this.#last[track];
      if (prev !== undefined && d <= prev) {
        if (prev - d >= 1 || d < 1) this.resets += 1;
        else this.regressions += 1;
      }
      this.#last[track] = d;
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#child?.stop(2000);
  }
}

interface ChannelView {
  id: string;
  status: string;
  desiredState: string;
}

const dir = await mkdtemp(join(tmpdir(), 'vlive-soak-'));
const dataDir = join(dir, 'data');
const recordingsDir = join(dataDir, 'recordings');
const started = Date.now();
const since = (): number => (Date.now() - started) / 1000;
const cleanups: (() => Promise<void>)[] = [];
let exitCode = 0;
try {
  await mkdir(join(dataDir, 'media'), { recursive: true });
  await mkdir(recordingsDir, { recursive: true });
  // The recordings' own small disk, so that "disk full" is real and touches nothing else.
  await run('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', recordingsDir]);
  cleanups.push(async () => void (await run('umount', ['-l', recordingsDir]).catch(() => undefined)));
  const clip = await makeClip(join(dataDir, 'media'), { seconds: 10, width: 640, height: 360, fps: 25, videoKbps: 500, audioKbps: 64 });

  const [httpPort, rtmpPort, hlsPort, srcRtmp, srcHttp, cdnRtmp, cdnHttp] = (await freePorts(7)) as [number, number, number, number, number, number, number];
  const sources = new ManagedOrigin({ dataDir: join(dir, 'sources'), rtmpPort: srcRtmp, hlsPort: srcHttp, hls: false, logger: log });
  await sources.start();
  cleanups.push(() => sources.stop());
  const cdn = new ManagedOrigin({ dataDir: join(dir, 'cdn'), rtmpPort: cdnRtmp, hlsPort: cdnHttp, hls: false, logger: log });
  await cdn.start();
  cleanups.push(() => cdn.stop());
  const logFd = openSync(join(dir, 'soak.log'), 'a');
  cleanups.push(async () => closeSync(logFd));
  let upstream = loopClip(clip, sources.publishUrl('src', false), logFd);
  cleanups.push(async () => void (await upstream.stop(2000)));
  await sources.waitForPublish('src', 15_000, { hls: false });

  const service = spawnChild(process.execPath, [join(process.cwd(), 'dist', 'src', 'main.js')], {
    stdio: ['ignore', 'pipe', logFd],
    env: {
      ...process.env,
      VLIVE_DATA_DIR: dataDir,
      VLIVE_HTTP_PORT: String(httpPort),
      VLIVE_RTMP_PORT: String(rtmpPort),
      VLIVE_HLS_PORT: String(hlsPort),
      VLIVE_CPU_BUDGET: '1',
      VLIVE_LOG_LEVEL: 'warn',
    },
  });
  cleanups.push(async () => void (await service.stop(20_000)));
  await waitUntilUp(service);
  const url = `http://127.0.0.1:${httpPort}/graphql`;
  const api = <T>(query: string, variables: Record<string, unknown> = {}): Promise<T> => gql<T>(url, query, variables, 60_000);

  // The channels.
  const vod = (await api<{ registerVodResource: { id: string } }>('mutation { registerVodResource(input: {name: "soak", path: "clip.mp4"}) { id } }')).registerVodResource.id;
  const create = async (input: Record<string, unknown>): Promise<string> =>
    (await api<{ createVirtualLive: { id: string } }>('mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }', { i: input })).createVirtualLive.id;
  const vods: string[] = [];
  for (let i = 0; i < 40; i++) {
    vods.push(await create({ name: `vod ${i}`, sourceType: 'VOD', vodResourceId: vod, loop: true, hls: false, ...(i < 10 ? { pushTargets: [cdn.publishUrl(`cdn${i}`, false)] } : {}) }));
  }
  const relays: string[] = [];
  for (let i = 0; i < 10; i++) relays.push(await create({ name: `relay ${i}`, sourceType: 'ONLINE', sourceUrl: sources.publishUrl('src', false), hls: false }));
  const onDemand: string[] = [];
  for (let i = 0; i < 5; i++) onDemand.push(await create({ name: `on demand ${i}`, sourceType: 'VOD', vodResourceId: vod, loop: true, hls: false, onDemand: true, touchDurationSeconds: 5, idleDelaySeconds: 5 }));
  const recording: string[] = [];
  for (let i = 0; i < 5; i++) recording.push(await create({ name: `rec ${i}`, sourceType: 'VOD', vodResourceId: vod, loop: true, hls: false, recording: { enabled: true, segmentSeconds: 10, retainHours: 1 } }));
  const startAll = async (ids: string[], q = 'mutation($id: ID!) { startVirtualLive(id: $id) { status } }'): Promise<void> => {
    for (let i = 0; i < ids.length; i += 10) await Promise.all(ids.slice(i, i + 10).map((id) => api(q, { id })));
  };
  await startAll([...vods, ...relays, ...recording]);

  const originUrl = (id: string): string => `rtmp://127.0.0.1:${rtmpPort}/live-nohls/${id}`;
  const receivers = [vods[0], vods[20], relays[0], relays[5], recording[0], onDemand[0], onDemand[1]]
    .filter((id): id is string => id !== undefined)
    .map((id) => new SoakReceiver(id, originUrl(id)));
  cleanups.push(async () => void (await Promise.all(receivers.map((r) => r.stop()))));

  const channels = async (): Promise<ChannelView[]> => (await api<{ virtualLives: ChannelView[] }>('{ virtualLives { id status desiredState } }')).virtualLives;
  const wantedNotLiving = (cs: ChannelView[]): ChannelView[] => cs.filter((c) => c.desiredState === 'RUNNING' && c.status !== 'LIVING');
  /** Ms until every channel wanted RUNNING is LIVING, polled every 200 ms; null after `limitMs`. */
  const backToLiving = async (limitMs: number): Promise<number | null> => {
    const t0 = performance.now();
    while (performance.now() - t0 < limitMs) {
      const cs = await channels().catch(() => null);
      if (cs !== null && wantedNotLiving(cs).length === 0) return Math.round(performance.now() - t0);
      await sleep(200);
    }
    return null;
  };
  const seenPids = new Set<number>();
  /** RSS and open fds of the service and of its workers (nginx apart: the origin is restarted by one of the faults). */
  const resources = async (): Promise<{ rssBytes: number; fds: number; service: { rssBytes: number; fds: number } }> => {
    let rssBytes = 0;
    let fds = 0;
    const service_ = { rssBytes: 0, fds: 0 };
    for (const p of await processTree(service.pid)) {
      seenPids.add(p.pid);
      if (p.comm === 'nginx') continue;
      const status = await readFile(`/proc/${p.pid}/status`, 'utf8').catch(() => '');
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
      const n = (await readdir(`/proc/${p.pid}/fd`).catch(() => [])).length;
      rssBytes += rss;
      fds += n;
      if (p.pid === service.pid) Object.assign(service_, { rssBytes: rss, fds: n });
    }
    return { rssBytes, fds, service: service_ };
  };
  const workers = async (): Promise<number[]> => (await processTree(service.pid)).filter((p) => p.pid !== service.pid && p.comm !== 'nginx').map((p) => p.pid);

  if ((await backToLiving(60_000)) === null) throw new Error('the channels did not all reach LIVING at the start');
  await sleep(5000);
  const before = await resources();
  log.info('soak running', { seconds: durationSeconds, seed, channels: vods.length + relays.length + onDemand.length + recording.length });

  const faults: FaultRecord[] = [];
  const inject = async (type: FaultType): Promise<{ detail: string }> => {
    switch (type) {
      case 'worker-kill': {
        const pid = (await workers())[0];
        if (pid !== undefined) process.kill(pid, 'SIGKILL');
        return { detail: `worker ${pid}` };
      }
      case 'origin-kill': {
        const nginx = (await processTree(service.pid)).filter((p) => p.comm === 'nginx');
        for (const p of nginx) process.kill(p.pid, 'SIGKILL');
        return { detail: `${nginx.length} nginx processes` };
      }
      case 'source-drop': {
        await upstream.stop(1000);
        await sleep(5000);
        upstream = loopClip(clip, sources.publishUrl('src', false), logFd);
        return { detail: 'source gone 5 s' };
      }
      case 'target-refuse': {
        await cdn.stop();
        await sleep(10_000);
        await cdn.start();
        return { detail: 'CDN down 10 s' };
      }
      case 'worker-stop': {
        const pid = (await workers())[0];
        if (pid !== undefined) process.kill(pid, 'SIGSTOP');
        await sleep(3000);
        if (pid !== undefined) process.kill(pid, 'SIGCONT');
        return { detail: `worker ${pid} stopped 3 s` };
      }
      case 'disk-full': {
        const fs = await statfs(recordingsDir);
        const filler = join(recordingsDir, 'filler');
        await writeFile(filler, Buffer.alloc(Math.max(0, fs.bavail * fs.bsize - 4096))).catch(() => undefined);
        await sleep(10_000);
        await unlink(filler).catch(() => undefined);
        return { detail: 'recordings disk full 10 s' };
      }
      case 'api-burst': {
        const picked = [...vods].sort(() => random() - 0.5).slice(0, 25);
        await Promise.all(picked.map((id) => api('mutation($id: ID!) { stopVirtualLive(id: $id) { status } }', { id })));
        await Promise.all(picked.map((id) => api('mutation($id: ID!) { startVirtualLive(id: $id) { status } }', { id })));
        return { detail: '25 stops, then 25 starts' };
      }
    }
  };
  // Every type before any repeats, in an order of the seed's choosing, or the order asked for.
  const chosen = values.faults?.split(',').map((t) => {
    if (!(faultTypes as readonly string[]).includes(t)) throw new Error(`--faults: unknown fault type ${t}; known: ${faultTypes.join(', ')}`);
    return t as FaultType;
  });
  let bag: FaultType[] = [];
  const endAt = durationSeconds - 15;
  for (;;) {
    await sleep((0.5 + random()) * faultEverySeconds * 1000);
    if (since() >= endAt) break;
    if (bag.length === 0) bag = chosen !== undefined ? [...chosen].reverse() : [...faultTypes].sort(() => random() - 0.5);
    const type = bag.pop() as FaultType;
    const atSeconds = since();
    const { detail } = await inject(type);
    const endSeconds = since();
    await resources(); // note the new workers' pids for the orphan check
    const back = await backToLiving(60_000);
    faults.push({ type, atSeconds: round1(atSeconds), endSeconds: round1(endSeconds), backToLivingMs: back, detail });
    log.info('fault', { type, atSeconds: round1(atSeconds), backToLivingMs: back, detail });
  }

  // The end: settle, then judge.
  await backToLiving(60_000);
  const final = await channels();
  const notInDesiredState = final.filter((c) => (c.desiredState === 'RUNNING' ? c.status !== 'LIVING' : c.status !== 'STOPPED' && !onDemand.includes(c.id)));
  const after = await resources();
  const recs = await api<{ virtualLive: { recordings: { startedAt: string; durationSeconds: number }[] } | null }[]>(
    `{ ${recording.map((id, i) => `r${i}: virtualLive(id: "${id}") { recordings { startedAt durationSeconds } }`).join(' ')} }`,
  ).then((d) => Object.values(d) as unknown as ({ recordings: { startedAt: string; durationSeconds: number }[] } | null)[]);
  const faultWindows = faults.map((f) => [f.atSeconds - 1, f.endSeconds + (f.backToLivingMs ?? 60_000) / 1000 + 12] as const);
  let recordedSeconds = 0;
  let unexplainedGapSeconds = 0;
  for (const r of recs) {
    const segs = (r?.recordings ?? []).map((s) => ({ start: (Date.parse(s.startedAt) - started) / 1000, dur: s.durationSeconds })).sort((a, b) => a.start - b.start);
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i] as { start: number; dur: number };
      recordedSeconds += s.dur;
      const next = segs[i + 1];
      if (next === undefined) continue;
      const gapStart = s.start + s.dur;
      const gap = next.start - gapStart;
      if (gap > 2 && !faultWindows.some(([a, b]) => gapStart < b && next.start > a)) unexplainedGapSeconds += gap;
    }
  }

  await Promise.all(receivers.map((r) => r.stop()));
  await service.stop(20_000);
  await sleep(1000);
  const orphans: number[] = [];
  for (const pid of seenPids) {
    if (pid !== service.pid && (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null)) !== null) orphans.push(pid);
  }

  const byType = faultTypes.map((type) => {
    const of = faults.filter((f) => f.type === type);
    const ms = of.map((f) => f.backToLivingMs).filter((v): v is number => v !== null);
    return { type, count: of.length, notRecovered: of.length - ms.length, backToLivingMs: { p50: percentile(ms, 50), p99: percentile(ms, 99), max: ms.length === 0 ? null : Math.max(...ms) } };
  });
  const tree = await measuredTree(process.cwd());
  const report = {
    commit: tree.commit,
    dirty: tree.dirty,
    startedAt: new Date(started).toISOString(),
    durationSeconds: round1(since()),
    seed,
    channels: { vod: vods.length, vodPushingToCdn: 10, relay: relays.length, onDemand: onDemand.length, recording: recording.length },
    faults: byType,
    faultLog: faults,
    dtsRegressions: receivers.reduce((a, r) => a + r.regressions, 0),
    timelineResets: receivers.reduce((a, r) => a + r.resets, 0),
    receivers: receivers.map((r) => ({ stream: r.stream, packets: r.packets, sessions: r.sessions, dtsRegressions: r.regressions, timelineResets: r.resets })),
    orphans: orphans.length,
    notInDesiredState: notInDesiredState.length,
    notInDesiredStateChannels: notInDesiredState,
    rssGrowthBytes: after.rssBytes - before.rssBytes,
    fdGrowth: after.fds - before.fds,
    resources: { before, after },
    recordings: { channels: recording.length, recordedSeconds: round1(recordedSeconds), unexplainedGapSeconds: round1(unexplainedGapSeconds) },
  };
  const text = `${JSON.stringify(report, null, 2)}\n`;
  console.log(text);
  if (values.out !== undefined) await writeFile(values.out, text);
  else {
    await mkdir(values['results-dir'], { recursive: true });
    const stamp = report.startedAt.replace(/[:.]/g, '-').replace(/-\d+Z$/, 'Z');
    const md = markdown(report);
    for (const name of [`soak-${stamp}`, 'soak-latest']) {
      await writeFile(join(values['results-dir'], `${name}.json`), text);
      await writeFile(join(values['results-dir'], `${name}.md`), md);
    }
  }
} catch (err) {
  console.error(`soak: ${String(err)}; logs in ${dir}`);
  exitCode = 1;
} finally {
  for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  if (exitCode === 0) await rm(dir, { recursive: true, force: true });
}
process.exit(exitCode);

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

function markdown(r: {
  commit: string | null;
  dirty: boolean | null;
  startedAt: string;
  durationSeconds: number;
  seed: number;
  faults: { type: string; count: number; notRecovered: number; backToLivingMs: { p50: number | null; p99: number | null; max: number | null } }[];
  dtsRegressions: number;
  timelineResets: number;
  orphans: number;
  notInDesiredState: number;
  rssGrowthBytes: number;
  fdGrowth: number;
  recordings: { recordedSeconds: number; unexplainedGapSeconds: number };
}): string {
  const rows = r.faults.map((f) => `| ${f.type} | ${f.count} | ${f.notRecovered} | ${f.backToLivingMs.p50 ?? '–'} | ${f.backToLivingMs.p99 ?? '–'} | ${f.backToLivingMs.max ?? '–'} |`);
  return [
    '# Chaos soak',
    '',
    `Run ${r.startedAt}, ${r.durationSeconds} s, seed ${r.seed}; vlive commit \`${r.commit ?? 'unknown'}\`${r.dirty === true ? ' (dirty)' : ''}. 40 VOD (10 pushing to a CDN), 10 relays, 5 on demand, 5 recording, on one node (\`npm run soak\`, bench/soak.ts).`,
    '',
    '| fault | count | not recovered in 60 s | back to LIVING p50 ms | p99 ms | max ms |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    `- DTS regressions seen by the receivers: **${r.dtsRegressions}**; timeline resets (a new publish after a crash, counted apart): ${r.timelineResets}`,
    `- Orphan processes after the service stopped: **${r.orphans}**; channels not in their desired state at the end: **${r.notInDesiredState}**`,
    `- Growth of the service's and workers' RSS: ${(r.rssGrowthBytes / 2 ** 20).toFixed(1)} MiB; of their open fds: ${r.fdGrowth}`,
    `- Recordings: ${r.recordings.recordedSeconds} s recorded; gaps between segments that no fault explains: ${r.recordings.unexplainedGapSeconds} s`,
    '',
  ].join('\n');
}
