/**
 * ffmpeg publishing the clip, looped in real time, to an RTMP URL: the
 * baseline's VOD channel, and in relay steps the upstream stream that both
 * sides relay (published to the side's own origin, charged to neither side).
 */
import { spawnChild, type Child } from '../children.js';
import { OriginWatch } from '../origin-watch.js';

/** The relay steps' source stream at the side's origin. */
export const UPSTREAM_STREAM = 'upstream';

/** `logFd`: where its stderr goes. */
export function loopClip(clipPath: string, url: string, logFd: number): Child {
  return spawnChild(
    'ffmpeg',
    ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clipPath, '-c', 'copy', '-f', 'flv', url],
    { stdio: ['ignore', 'ignore', logFd] },
  );
}

/**
 * Resolves with the time the origin first reported `stream` published by
 * `child`; rejects when `child` exits first or after `timeoutMs`.
 */
export function publishedBy(child: Child, stream: string, watch: OriginWatch, timeoutMs: number): Promise<number> {
  return Promise.race([
    watch.waitPublishing(stream, timeoutMs),
    child.exited.then((e) => Promise.reject(new Error(`ffmpeg publishing ${stream} exited (code ${e.code}, signal ${e.signal})`))),
  ]);
}

/** Waits until the upstream `child` publishes at the origin whose /stat is on `hlsPort`. */
export async function upstreamReady(child: Child, hlsPort: number, timeoutMs: number): Promise<void> {
  const watch = new OriginWatch(hlsPort, 50);
  watch.start();
  try {
    await publishedBy(child, UPSTREAM_STREAM, watch, timeoutMs);
  } finally {
    await watch.stop();
  }
}
