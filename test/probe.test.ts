import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VliveError } from '../src/errors.js';
import { parseDiscovererOutput, probeMedia, toProbeResult } from '../src/media/probe.js';
import { makeMp4 } from './helpers/media.js';

async function rejectsWith(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof VliveError, `expected VliveError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('probeMedia', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vlive-probe-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('H.264/AAC mp4 is copyable, with resolution, frame rate and duration', async () => {
    const file = await makeMp4(dir, { seconds: 3, width: 640, height: 360, fps: 30, name: 'weird name #1 %20' });
    const r = await probeMedia(file);
    assert.equal(r.container, 'mp4');
    assert.equal(r.copyable, true);
    assert.ok(r.durationSeconds !== null && Math.abs(r.durationSeconds - 3) < 0.1, `duration ${r.durationSeconds}`);
    assert.deepEqual(
      { codec: r.video?.codec, w: r.video?.width, h: r.video?.height, fps: r.video?.frameRate },
      { codec: 'h264', w: 640, h: 360, fps: 30 },
    );
    assert.equal(typeof r.video?.profile, 'string');
    assert.deepEqual({ codec: r.audio?.codec, rate: r.audio?.sampleRate, ch: r.audio?.channels }, { codec: 'aac', rate: 48000, ch: 2 });
  });

  it('NTSC frame rates come out as fractions of 1001', async () => {
    const file = await makeMp4(dir, { seconds: 1, fps: '30000/1001', audio: false, container: 'mkv' });
    const r = await probeMedia(file);
    assert.equal(r.container, 'matroska');
    assert.ok(Math.abs((r.video?.frameRate ?? 0) - 29.97) < 0.01);
    assert.equal(r.audio, null);
    assert.equal(r.copyable, true);
  });

  it('MP3 audio is copyable; audio-only files too', async () => {
    const r = await probeMedia(await makeMp4(dir, { seconds: 1, video: false, audio: 'mp3', container: 'mkv' }));
    assert.equal(r.video, null);
    assert.equal(r.audio?.codec, 'mp3');
    assert.equal(r.audio?.sampleRate, 44100);
    assert.equal(r.copyable, true);
  });

  it('HEVC video is not copyable', async () => {
    const r = await probeMedia(await makeMp4(dir, { seconds: 1, video: 'hevc' }));
    assert.equal(r.video?.codec, 'hevc');
    assert.equal(r.audio?.codec, 'aac');
    assert.equal(r.copyable, false);
  });

  it('Opus audio is not copyable', async () => {
    const r = await probeMedia(await makeMp4(dir, { seconds: 1, audio: 'opus', container: 'mkv' }));
    assert.equal(r.video?.codec, 'h264');
    assert.equal(r.audio?.codec, 'opus');
    assert.equal(r.copyable, false);
  });

  it('a garbage file is MEDIA_UNREADABLE with an actionable message', async () => {
    const file = join(dir, 'garbage.mp4');
    await writeFile(file, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)));
    await rejectsWith(probeMedia(file), 'MEDIA_UNREADABLE', /not a media file.*garbage\.mp4|garbage\.mp4.*not a media file/);
  });

  it('a missing file is MEDIA_UNREADABLE', async () => {
    await rejectsWith(probeMedia(join(dir, 'nope.mp4')), 'MEDIA_UNREADABLE', /does not exist/);
  });

  it('a directory is refused, not walked', async () => {
    await rejectsWith(probeMedia(dir), 'MEDIA_UNREADABLE', /directory/);
  });
});

describe('parseDiscovererOutput', () => {
  it('ignores injected lines after the first stream of each kind', () => {
    const out = [
      'Properties:',
      '  Duration: 0:00:02.000000000',
      '  Seekable: yes',
      '  container #0: Matroska',
      '    audio #1: Opus',
      '      Language: x',
      '    audio #9: MPEG-4 AAC',
      '      Sample rate: 48000',
      '      Channels: 2 (front-left, front-right)',
      '',
    ].join('\n');
    const r = toProbeResult(parseDiscovererOutput(out), 'f');
    assert.equal(r.audio?.codec, 'opus');
    assert.equal(r.copyable, false);
    assert.equal(r.durationSeconds, 2);
  });

  it('a file with no audio or video is MEDIA_UNSUPPORTED', () => {
    const out = 'Properties:\n  Duration: 0:00:01.000000000\n  container #0: Matroska\n    subtitles #1: SubRip\n';
    assert.throws(() => toProbeResult(parseDiscovererOutput(out), 'f'), (e: unknown) => e instanceof VliveError && e.code === 'MEDIA_UNSUPPORTED');
  });
});
