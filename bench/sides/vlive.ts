/**
 * The vlive side: the service as a child process (`node dist/src/main.js`)
 * with a scratch data dir and free ports, driven only through its GraphQL
 * API, as an operator would. Its managed nginx-rtmp is the origin.
 */
import { closeSync, openSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnChild, type Child } from '../children.js';
import { freePorts, gql, GqlError } from '../net.js';
import { processTree } from '../procfs.js';
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

function waitUntilUp(service: Child): Promise<void> {
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

export async function openVlive(ctx: SideContext, options: VliveOptions): Promise<SideRun> {
  const dataDir = join(ctx.dir, 'data');
  const mediaRoot = join(dataDir, 'media');
  await mkdir(mediaRoot, { recursive: true });
  // A copy, not a symlink: the service confines VOD paths to its media root.
  await copyFile(ctx.clipPath, join(mediaRoot, 'clip.mp4'));
  const [httpPort, rtmpPort, hlsPort] = (await freePorts(3)) as [number, number, number];
  // The shipped admission limit (200 per worker) unless a step needs more.
  const perWorker = Math.max(200, Math.ceil(ctx.channels / (options.workers ?? availableParallelism())));
  const logFd = openSync(ctx.logPath, 'a');
  const service = spawnChild(process.execPath, [join(options.vliveDir, 'dist', 'src', 'main.js')], {
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
      VLIVE_LOG_LEVEL: process.env['VLIVE_LOG_LEVEL'] ?? 'warn',
      ...(options.workers !== null ? { VLIVE_WORKERS: String(options.workers) } : {}),
    },
  });
  const tearDown = ctx.disposers.add(`vlive service (N=${ctx.channels})`, async () => {
    await service.stop(STOP_GRACE_MS);
    closeSync(logFd);
  });
  try {
    await waitUntilUp(service);
    const url = `http://127.0.0.1:${httpPort}/graphql`;
    const vod = await gql<{ registerVodResource: { id: string } }>(
      url,
      'mutation($i: RegisterVodResourceInput!) { registerVodResource(input: $i) { id } }',
      { i: { name: 'bench clip', path: 'clip.mp4' } },
      API_TIMEOUT_MS,
    );
    // Creating is not what is measured; it only has to be done before the starts.
    const ids: string[] = [];
    for (let i = 0; i < ctx.channels; i++) {
      const d = await gql<{ createVirtualLive: { id: string } }>(
        url,
        'mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }',
        { i: { name: `bench ${i}`, sourceType: 'VOD', vodResourceId: vod.registerVodResource.id, loop: true } },
        API_TIMEOUT_MS,
      );
      ids.push(d.createVirtualLive.id);
    }

    const tree = async () => (service.running ? processTree(service.pid) : []);
    return {
      side: 'vlive',
      hlsPort,
      rtmpPort,
      // The service names each channel's stream after its id.
      streams: ids,
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
            return s.status === 'LIVING' ? { ok: true, latencyMs } : { ok: false, latencyMs, error: `${s.status}: ${s.errorString ?? ''}` };
          } catch (err) {
            // The API's start/stop rate limit says when to come back; the step paces
            // starts under it, so this is rare, and the latency counts from the accepted try.
            if (err instanceof GqlError && err.code === 'RATE_LIMITED' && attempt < MAX_RATE_LIMITED_RETRIES) {
              const seconds = Number(/retry in (\d+) s/.exec(err.message)?.[1] ?? 1);
              await sleep(seconds * 1000);
              continue;
            }
            return { ok: false, latencyMs: performance.now() - t0, error: err instanceof Error ? err.message : String(err) };
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
