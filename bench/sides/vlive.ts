/**
 * The vlive side: the service as a child process (`node dist/src/main.js`)
 * with a scratch data dir and free ports, driven only through its GraphQL
 * API, as an operator would. Its managed nginx-rtmp is the origin.
 *
 * VOD steps loop the clip as VOD channels; relay steps create ONLINE
 * channels whose source is the upstream stream at the same origin.
 */
import { closeSync, openSync } from 'node:fs';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { originPaths, RTMP_APP } from '../../src/origin/config.js';
import { spawnChild, type Child } from '../children.js';
import { freePorts, gql, GqlError } from '../net.js';
import { processTree } from '../procfs.js';
import { loopClip, UPSTREAM_STREAM, upstreamReady } from './publisher.js';
import type { SideContext, SideRun, StartOutcome } from './side.js';

export interface VliveOptions {
  /** VLIVE_WORKERS; null keeps the service's default (CPU cores). */
  readonly workers: number | null;
  /** The vlive tree to run `dist/src/main.js` from. */
  readonly vliveDir: string;
}

const READY_TIMEOUT_MS = 60_000;
const MAX_RATE_LIMITED_RETRIES = 5;
const API_TIMEOUT_MS = 60_000;
/** The service stops every pipeline and persists states on SIGTERM; give it time, then SIGKILL. */
const STOP_GRACE_MS = 15_000;

/** Resolves once the service printed "vlive is up."; rejects if it exits first or after READY_TIMEOUT_MS. */
export function waitUntilUp(service: Child): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const out = service.process.stdout as Readable;
    out.setEncoding('utf8');
    const timer = setTimeout(() => reject(new Error(`the service did not say "vlive is up." within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    out.on('data', (chunk: string) => {
      seen = (seen + chunk).slice(-4096);
      if (seen.includes('vlive is up.')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void service.exited.then((exit) => {
      clearTimeout(timer);
      reject(new Error(`the service exited during start-up (code ${exit.code}, signal ${exit.signal}); see its log`));
    });
  });
}

/**
 * A BENCH_VLIVE_DIR tree older than VLIVE_ORIGIN_HLS ignores the variable;
 * measuring it as "HLS off" would be wrong, so its origin's conf is checked.
 */
async function checkOriginHls(dataDir: string, hls: boolean): Promise<void> {
  const conf = await readFile(originPaths(dataDir).conf, 'utf8');
  if (/^\s*hls on;/m.test(conf) !== hls) {
    throw new Error(`the measured service's origin has HLS ${hls ? 'off' : 'on'} though VLIVE_ORIGIN_HLS=${hls ? 'on' : 'off'}; is BENCH_VLIVE_DIR older than that setting?`);
  }
}

/** What every channel of the step is created with: the clip, registered here, or the upstream stream. */
async function channelSource(url: string, ctx: SideContext, upstreamUrl: string): Promise<Record<string, unknown>> {
  if (ctx.kind === 'relay') return { sourceType: 'ONLINE', sourceUrl: upstreamUrl };
  const vod = await gql<{ registerVodResource: { id: string } }>(
    url,
    'mutation($i: RegisterVodResourceInput!) { registerVodResource(input: $i) { id } }',
    { i: { name: 'bench clip', path: 'clip.mp4' } },
    API_TIMEOUT_MS,
  );
  return { sourceType: 'VOD', vodResourceId: vod.registerVodResource.id, loop: true };
}

/** Creates the N channels; creating is not what is measured, it only has to be done before the starts. */
async function createChannels(url: string, ctx: SideContext, upstreamUrl: string): Promise<string[]> {
  const input = await channelSource(url, ctx, upstreamUrl);
  const ids: string[] = [];
  for (let i = 0; i < ctx.channels; i++) {
    const d = await gql<{ createVirtualLive: { id: string } }>(
      url,
      'mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }',
      { i: { name: `bench ${i}`, ...input } },
      API_TIMEOUT_MS,
    );
    ids.push(d.createVirtualLive.id);
  }
  return ids;
}

/** The vlive side, and its GraphQL endpoint for tools beyond the comparison (bench/fanout.ts). */
export async function openVlive(ctx: SideContext, options: VliveOptions): Promise<SideRun & { readonly apiUrl: string }> {
  const dataDir = join(ctx.dir, 'data');
  const mediaRoot = join(dataDir, 'media');
  await mkdir(mediaRoot, { recursive: true });
  // A copy, not a symlink: the service confines VOD paths to its media root.
  await copyFile(ctx.clipPath, join(mediaRoot, 'clip.mp4'));
  const [httpPort, rtmpPort, hlsPort] = (await freePorts(3)) as [number, number, number];
  // The shipped admission limit (500 per worker) unless a step needs more.
  const perWorker = Math.max(500, Math.ceil(ctx.channels / (options.workers ?? availableParallelism())));
  const logFd = openSync(ctx.logPath, 'a');
  // BENCH_VLIVE_NODE_ARGS: Node flags for the service alone (e.g. --cpu-prof, which NODE_OPTIONS refuses).
  const nodeArgs = (process.env['BENCH_VLIVE_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const service = spawnChild(process.execPath, [...nodeArgs, join(options.vliveDir, 'dist', 'src', 'main.js')], {
    cwd: options.vliveDir,
    stdio: ['ignore', 'pipe', logFd],
    env: {
      ...process.env,
      VLIVE_DATA_DIR: dataDir,
      VLIVE_HTTP_PORT: String(httpPort),
      VLIVE_RTMP_PORT: String(rtmpPort),
      VLIVE_HLS_PORT: String(hlsPort),
      VLIVE_MAX_PIPELINES_PER_WORKER: String(perWorker),
      VLIVE_START_TIMEOUT_MS: String(ctx.startTimeoutMs),
      VLIVE_ORIGIN_HLS: ctx.hls ? 'on' : 'off',
      VLIVE_LOG_LEVEL: process.env['VLIVE_LOG_LEVEL'] ?? 'warn',
      ...(options.workers !== null ? { VLIVE_WORKERS: String(options.workers) } : {}),
    },
  });
  const upstreamUrl = `rtmp://127.0.0.1:${rtmpPort}/${RTMP_APP}/${UPSTREAM_STREAM}`;
  let upstream: Child | null = null;
  const tearDown = ctx.disposers.add(`vlive service, ${ctx.kind} (N=${ctx.channels})`, async () => {
    await service.stop(STOP_GRACE_MS);
    await upstream?.stop(STOP_GRACE_MS);
    closeSync(logFd);
  });
  try {
    await waitUntilUp(service);
    await checkOriginHls(dataDir, ctx.hls);
    if (ctx.kind === 'relay') {
      upstream = loopClip(ctx.clipPath, upstreamUrl, logFd);
      await upstreamReady(upstream, hlsPort, ctx.startTimeoutMs);
    }
    const url = `http://127.0.0.1:${httpPort}/graphql`;
    const ids = await createChannels(url, ctx, upstreamUrl);

    const tree = async () => (service.running ? processTree(service.pid) : []);
    return {
      side: 'vlive',
      apiUrl: url,
      kind: ctx.kind,
      hls: ctx.hls,
      hlsPort,
      rtmpPort,
      // The service names each channel's stream after its id.
      streams: ids,
      upstreamUrl: ctx.kind === 'relay' ? upstreamUrl : null,
      async start(index): Promise<StartOutcome> {
        const id = ids[index] as string;
        let t0 = performance.now();
        for (let attempt = 0; ; attempt++) {
          t0 = performance.now();
          try {
            const d = await gql<{ startVirtualLive: { status: string; errorString: string | null } }>(
              url,
              'mutation($id: ID!) { startVirtualLive(id: $id) { status errorString } }',
              { id },
              ctx.startTimeoutMs + 5_000,
            );
            const latencyMs = performance.now() - t0;
            const s = d.startVirtualLive;
            return s.status === 'LIVING' ? { ok: true, latencyMs, startedAtMs: t0 } : { ok: false, latencyMs, startedAtMs: t0, error: `${s.status}: ${s.errorString ?? ''}` };
          } catch (err) {
            // The API's start/stop rate limit says when to come back; the step paces
            // starts under it, so this is rare, and the latency counts from the accepted try.
            if (err instanceof GqlError && err.code === 'RATE_LIMITED' && attempt < MAX_RATE_LIMITED_RETRIES) {
              const seconds = Number(/retry in (\d+) s/.exec(err.message)?.[1] ?? 1);
              await sleep(seconds * 1000);
              continue;
            }
            return { ok: false, latencyMs: performance.now() - t0, startedAtMs: t0, error: err instanceof Error ? err.message : String(err) };
          }
        }
      },
      async chargedPids() {
        return (await tree())
          .filter((p) => p.comm !== 'nginx')
          .map((p) => ({ role: p.pid === service.pid ? 'service' : 'workers', pid: p.pid }));
      },
      async originPid() {
        return (await tree()).find((p) => p.comm === 'nginx')?.pid ?? null;
      },
      upstreamPid() {
        return upstream?.running === true ? upstream.pid : null;
      },
      async running() {
        const d = await gql<{ virtualLives: { status: string }[] }>(url, '{ virtualLives { status } }', {}, API_TIMEOUT_MS);
        return d.virtualLives.filter((v) => v.status === 'LIVING').length;
      },
      tearDown,
    };
  } catch (err) {
    await tearDown();
    throw err;
  }
}
