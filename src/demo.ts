/**
 * The demo channel that `npm start --demo` brings up, so that a new user has
 * a stream to play with no other setup. Its media is made here with
 * GStreamer (nothing is downloaded): 10 s of colour bars with a running
 * clock and a tone, H.264 + AAC in MP4, looped by the channel.
 */
import { execFile } from 'node:child_process';
import { access, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { App } from './app.js';
import type { Logger } from './log.js';
import { describeGstFailure } from './gst/elements.js';
import { launchArgv, loadTemplate } from './gst/templates.js';

const run = promisify(execFile);
const demoPath = 'demo/vlive-demo.mp4';
const demoName = 'Demo channel';

async function makeDemoMedia(target: string): Promise<void> {
  // gst-launch parses its arguments as launch syntax, so it only ever sees
  // the fixed template and a path we made ourselves (mkdtemp under the temp
  // dir); the result is then moved to wherever the media root is.
  const scratch = await mkdtemp(join(tmpdir(), 'vlive-demo-'));
  try {
    const out = join(scratch, 'demo.mp4');
    try {
      await run('gst-launch-1.0', ['-q', '-e', ...launchArgv(loadTemplate('demo-media')), `location=${out}`], { timeout: 60_000 });
    } catch (err) {
      throw new Error(`making the demo media failed: ${describeGstFailure(err)}`);
    }
    await rename(out, target).catch(async () => {
      // A media root on another file system: copy through the rename fallback.
      const { copyFile } = await import('node:fs/promises');
      await copyFile(out, target);
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Registers, creates and starts the demo channel unless it exists; returns its play URLs. */
export async function ensureDemoChannel(app: App, log: Logger): Promise<{ id: string; rtmp: string; hls: string | null }> {
  const existing = (await app.channels.list()).find((c) => c.name === demoName);
  const target = join(app.config.mediaRoot, demoPath);
  const haveFile = await access(target).then(() => true, () => false);
  if (!haveFile) {
    log.info('making demo media', { path: target });
    await mkdir(join(app.config.mediaRoot, 'demo'), { recursive: true });
    await makeDemoMedia(target);
  }
  let id = existing?.id;
  if (!id) {
    const vod = (await app.vods.list()).find((v) => v.path === demoPath) ?? (await app.vods.register({ name: 'Demo media', path: demoPath }));
    const channel = await app.channels.create({ name: demoName, sourceType: 'VOD', vodResourceId: vod.id, loop: true });
    id = channel.id;
  }
  const started = await app.channels.start(id);
  if (started.status !== 'LIVING') throw new Error(`demo channel did not go live: ${started.errorString ?? started.status}`);
  return { id, ...app.channels.playUrls(started) };
}
