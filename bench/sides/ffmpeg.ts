/**
 * The baseline: the classic design, one process per channel,
 *
 *   vod:   ffmpeg -re -stream_loop -1 -i clip.mp4 -c copy -f flv rtmp://127.0.0.1:PORT/live/ffN
 *   relay: ffmpeg -i rtmp://127.0.0.1:PORT/live/upstream -c copy -f flv rtmp://127.0.0.1:PORT/live/relayN
 *
 * publishing to an nginx-rtmp origin made by the service's own ManagedOrigin
 * (same binary, same generated nginx.conf as vlive's), started for the step.
 */
import { closeSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../src/log.js';
import { ManagedOrigin } from '../../src/origin/nginx.js';
import { spawnChild, type Child } from '../children.js';
import { freePorts } from '../net.js';
import { loopClip, publishedBy, UPSTREAM_STREAM, upstreamReady } from './publisher.js';
import type { SideContext, SideRun, StartOutcome } from './side.js';

const STOP_GRACE_MS = 5_000;

/** The origin's state log would interleave with the progress lines; only its errors matter here. */
function quietLogger(): Logger {
  const none = (): void => undefined;
  const log: Logger = {
    debug: none,
    info: none,
    warn: none,
    error: (msg, fields) => process.stderr.write(`bench origin: ${msg} ${JSON.stringify(fields ?? {})}\n`),
    child: () => log,
  };
  return log;
}

export async function openFfmpeg(ctx: SideContext): Promise<SideRun> {
  const [rtmpPort, hlsPort] = (await freePorts(2)) as [number, number];
  const dataDir = join(ctx.dir, 'data');
  await mkdir(dataDir, { recursive: true });
  const origin = new ManagedOrigin({
    dataDir,
    rtmpPort,
    hlsPort,
    hls: ctx.hls,
    logger: quietLogger(),
  });
  const logFd = openSync(ctx.logPath, 'a');
  const streams = Array.from({ length: ctx.channels }, (_, i) => (ctx.kind === 'vod' ? `ff${i}` : `relay${i}`));
  const publishers: Child[] = [];
  let upstream: Child | null = null;
  const tearDown = ctx.disposers.add(`ffmpeg ${ctx.kind} publishers and origin (N=${ctx.channels})`, async () => {
    await Promise.all(publishers.map((c) => c.stop(STOP_GRACE_MS)));
    await upstream?.stop(STOP_GRACE_MS);
    await origin.stop();
    closeSync(logFd);
  });
  try {
    await origin.start();
    if (ctx.kind === 'relay') {
      upstream = loopClip(ctx.clipPath, origin.publishUrl(UPSTREAM_STREAM), logFd);
      await upstreamReady(upstream, hlsPort, ctx.startTimeoutMs);
    }
  } catch (err) {
    await tearDown();
    throw err;
  }
  const upstreamUrl = origin.playUrls(UPSTREAM_STREAM).rtmp;

  return {
    side: 'ffmpeg',
    kind: ctx.kind,
    hls: ctx.hls,
    hlsPort,
    rtmpPort,
    streams,
    upstreamUrl: ctx.kind === 'relay' ? upstreamUrl : null,
    async start(index, watch): Promise<StartOutcome> {
      const stream = streams[index] as string;
      const t0 = performance.now();
      const child =
        ctx.kind === 'vod'
          ? loopClip(ctx.clipPath, origin.publishUrl(stream), logFd)
          : spawnChild(
              'ffmpeg',
              ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', upstreamUrl, '-c', 'copy', '-f', 'flv', origin.publishUrl(stream)],
              { stdio: ['ignore', 'ignore', logFd] },
            );
      publishers.push(child);
      try {
        const at = await publishedBy(child, stream, watch, ctx.startTimeoutMs);
        return { ok: true, latencyMs: at - t0, startedAtMs: t0 };
      } catch (err) {
        return { ok: false, latencyMs: performance.now() - t0, startedAtMs: t0, error: err instanceof Error ? err.message : String(err) };
      }
    },
    async chargedPids() {
      return publishers.filter((c) => c.running).map((c) => ({ role: 'ffmpeg', pid: c.pid }));
    },
    async originPid() {
      return origin.pid;
    },
    upstreamPid() {
      return upstream?.running === true ? upstream.pid : null;
    },
    async running() {
      return publishers.filter((c) => c.running).length;
    },
    tearDown,
  };
}
