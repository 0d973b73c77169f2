/**
 * The one media file both sides loop, made at run time with ffmpeg's lavfi
 * sources into the scratch dir (never committed). Constant-ish bit rate and
 * a fixed one-second GOP, so both sides push the same bytes per second and
 * the origin's GOP cache is the same size.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type { ClipSpec } from './options.js';

export function run(cmd: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else reject(new Error(`${cmd} failed: ${err.message.split('\n')[0] ?? ''}\n${stderr.slice(-2000)}`));
    });
  });
}

/** Writes `<dir>/clip.mp4` (H.264 High + AAC-LC, faststart) and returns its path. */
export async function makeClip(dir: string, c: ClipSpec): Promise<string> {
  const out = join(dir, 'clip.mp4');
  const kbps = `${c.videoKbps}k`;
  await run(
    'ffmpeg',
    [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-t', String(c.seconds), '-i', `testsrc2=size=${c.width}x${c.height}:rate=${c.fps}`,
      '-f', 'lavfi', '-t', String(c.seconds), '-i', 'sine=frequency=440:sample_rate=48000',
      '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
      '-b:v', kbps, '-maxrate', kbps, '-bufsize', `${c.videoKbps * 2}k`,
      '-g', String(c.fps), '-keyint_min', String(c.fps), '-sc_threshold', '0',
      '-c:a', 'aac', '-ac', '2', '-b:a', `${c.audioKbps}k`,
      '-movflags', '+faststart',
      out,
    ],
    300_000,
  );
  return out;
}
