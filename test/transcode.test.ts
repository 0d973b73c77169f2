/**
 * Transcoding at registration, judged by ffprobe (libavformat) and by the
 * worker's own MP4 reader: inputs the worker cannot copy (HEVC, Opus, MKV)
 * must come out as H.264 High + AAC-LC MP4 with a constant GOP.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readMp4 } from '../src/media/mp4.js';
import { defaultProfile, transcode, validateProfile, type TranscodeProfile } from '../src/vods/transcode.js';
import { makeMp4, probePackets, run, type PacketStream } from './helpers/media.js';

async function formatDuration(file: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file], 30_000);
  return Number(stdout.trim());
}

function stream(s: PacketStream | null, what: string): PacketStream {
  assert.ok(s !== null, `no ${what} stream`);
  return s;
}

/** Keyframe times in decode order, seconds. */
function keyframeTimes(s: PacketStream): number[] {
  return s.dts.filter((_, i) => s.keyframes[i] === true);
}

/** The leftovers a failed or finished job must not leave: .part and the faststart scratch file. */
async function partials(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith('.part'));
}

describe('transcode', () => {
  let dir = '';
  let hevcOpusMkv = '';
  let opusOnly = '';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vlive-transcode-'));
    [hevcOpusMkv, opusOnly] = await Promise.all([
      makeMp4(dir, { seconds: 3, video: 'hevc', audio: 'opus', container: 'mkv', name: 'hevc-opus' }),
      makeMp4(dir, { seconds: 3, video: false, audio: 'opus', container: 'mkv', name: 'opus-only' }),
    ]);
  });
  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('turns HEVC + Opus in MKV into H.264 High + AAC-LC MP4 with a constant GOP', async () => {
    const output = join(dir, 'prepared.mp4');
    const fractions: number[] = [];
    const gopSeconds = 1;
    const started = performance.now();
    await transcode({
      input: hevcOpusMkv,
      output,
      hasVideo: true,
      hasAudio: true,
      frameRate: 25,
      profile: { ...defaultProfile, gopSeconds },
      onProgress: (f) => fractions.push(f),
    });
    const tookMs = performance.now() - started;
    assert.ok(tookMs < 20_000, `took ${tookMs} ms`);

    const report = await probePackets(output, 30);
    const video = stream(report.video, 'video');
    const audio = stream(report.audio, 'audio');
    assert.equal(report.streams.length, 2);
    assert.equal(video.codecName, 'h264');
    assert.equal(video.profile, 'High');
    assert.equal(video.width, 320);
    assert.equal(video.height, 240);
    // Constant frame rate: every frame 40 ms after the one before. The
    // first may be longer: ffmpeg starts MKV video a few ms late (aligned
    // to Opus pre-skip) and mp4mux keeps A/V sync by stretching frame 0.
    const steps = video.dts.slice(1).map((t, i) => t - (video.dts[i] ?? NaN));
    assert.equal(steps.length, 74, 'frame count');
    assert.ok(steps.slice(1).every((d) => Math.abs(d - 0.04) < 0.001), `frame steps ${steps.join(', ')}`);
    assert.ok((steps[0] ?? NaN) >= 0.039 && (steps[0] ?? NaN) < 0.05, `first frame step ${steps[0]}`);
    assert.equal(audio.codecName, 'aac');
    assert.equal(audio.profile, 'LC');

    const [inSeconds, outSeconds] = await Promise.all([formatDuration(hevcOpusMkv), formatDuration(output)]);
    assert.ok(Math.abs(outSeconds - inSeconds) <= 0.1, `duration ${outSeconds} s vs input ${inSeconds} s`);

    // IDR every gopSeconds, none between: 3 s at a 1 s GOP gives 0, 1, 2.
    const keys = keyframeTimes(video);
    assert.equal(keys.length, 3, `keyframes at ${keys.join(', ')}`);
    for (let i = 1; i < keys.length; i++) {
      const gap = (keys[i] ?? NaN) - (keys[i - 1] ?? NaN);
      assert.ok(Math.abs(gap - gopSeconds) < 0.5 / 25, `keyframe interval ${gap} s`);
    }

    // The worker's own reader accepts it.
    const mp4 = await readMp4(output);
    const codecs = mp4.tracks.map((t) => `${t.kind}:${t.codec}`).sort();
    assert.deepEqual(codecs, ['audio:aac', 'video:h264']);
    const vt = mp4.tracks.find((t) => t.kind === 'video');
    assert.equal(vt?.avcProfile, 100);

    assert.deepEqual(fractions, [...fractions].sort((a, b) => a - b), 'progress never decreases');
    assert.equal(fractions.at(-1), 1);
    assert.deepEqual(await partials(dir), []);
  });

  it('resizes to the profile size, letterboxing instead of stretching', async () => {
    const output = join(dir, 'small.mp4');
    await transcode({
      input: hevcOpusMkv,
      output,
      hasVideo: true,
      hasAudio: true,
      frameRate: 25,
      profile: { ...defaultProfile, width: 320, height: 180, videoKbps: 400, preset: 'ultrafast' },
    });
    const video = stream((await probePackets(output, 30)).video, 'video');
    assert.equal(video.codecName, 'h264');
    assert.equal(video.width, 320);
    assert.equal(video.height, 180);
  });

  it('makes an AAC-only MP4 from an Opus-only file', async () => {
    const output = join(dir, 'audio.mp4');
    await transcode({ input: opusOnly, output, hasVideo: false, hasAudio: true, frameRate: null, profile: defaultProfile });
    const report = await probePackets(output, 30);
    assert.deepEqual(report.streams.map((s) => s.codecName), ['aac']);
    const mp4 = await readMp4(output);
    assert.deepEqual(mp4.tracks.map((t) => t.codec), ['aac']);
    const [inSeconds, outSeconds] = await Promise.all([formatDuration(opusOnly), formatDuration(output)]);
    assert.ok(Math.abs(outSeconds - inSeconds) <= 0.1, `duration ${outSeconds} s vs input ${inSeconds} s`);
  });

  it('rejects a broken input with a readable reason and leaves nothing behind', async () => {
    const sub = await mkdtemp(join(dir, 'broken-'));
    const input = join(sub, 'junk.mkv');
    await writeFile(input, randomBytes(256 * 1024));
    const output = join(sub, 'junk.mp4');
    await assert.rejects(
      transcode({ input, output, hasVideo: true, hasAudio: true, frameRate: 25, profile: defaultProfile }),
      (err: unknown) => {
        assert.ok(err instanceof Error);
        assert.match(err.message, /^transcode failed: .*type of stream/);
        assert.ok(!err.message.includes(sub), `server path leaked: ${err.message}`);
        return true;
      },
    );
    assert.deepEqual(await readdir(sub), ['junk.mkv']);
  });

  it('kills the child at the timeout and leaves nothing behind', async () => {
    const sub = await mkdtemp(join(dir, 'timeout-'));
    const output = join(sub, 'late.mp4');
    await assert.rejects(
      transcode({ input: hevcOpusMkv, output, hasVideo: true, hasAudio: true, frameRate: 25, profile: defaultProfile, timeoutMs: 1 }),
      /timed out after 1 ms/,
    );
    assert.deepEqual(await readdir(sub), []);
  });

  it('takes paths with spaces, quotes and ! as properties, not launch text', async () => {
    const sub = join(dir, `we ird "dir" ! x`);
    await mkdir(sub);
    const input = await makeMp4(sub, { seconds: 2, video: 'hevc', audio: 'opus', container: 'mkv', name: `in put 'q' "dq" ! ; name=x` });
    const output = join(sub, `out "q" ! filesink location='x'.mp4`);
    await transcode({ input, output, hasVideo: true, hasAudio: true, frameRate: 25, profile: { ...defaultProfile, preset: 'ultrafast' } });
    const report = await probePackets(output, 30);
    assert.deepEqual(report.streams.map((s) => s.codecName).sort(), ['aac', 'h264']);
    assert.deepEqual((await readdir(sub)).sort(), [`in put 'q' "dq" ! ; name=x.mkv`, `out "q" ! filesink location='x'.mp4`].sort());
  });

  it('validateProfile names the bad field', async () => {
    validateProfile(defaultProfile);
    validateProfile({ ...defaultProfile, width: 1920, height: 1080, preset: 'medium', gopSeconds: 0.5 });
    const bad: Array<[Partial<TranscodeProfile>, RegExp]> = [
      [{ width: 321, height: 240 }, /profile\.width must be an even integer from 16 to 3840, got 321/],
      [{ width: 320, height: 181 }, /profile\.height must be an even integer/],
      [{ width: 4000, height: 2000 }, /profile\.width/],
      [{ width: 320, height: null }, /both be set or both be null/],
      [{ videoKbps: 1_000_000 }, /profile\.videoKbps must be an integer from 100 to 20000/],
      [{ videoKbps: 50 }, /profile\.videoKbps/],
      [{ audioKbps: 8 }, /profile\.audioKbps must be an integer from 32 to 512/],
      [{ audioKbps: Number.NaN }, /profile\.audioKbps/],
      [{ gopSeconds: 0 }, /profile\.gopSeconds must be a number from 0.5 to 10/],
      [{ gopSeconds: 60 }, /profile\.gopSeconds/],
      [{ preset: 'placebo' as TranscodeProfile['preset'] }, /profile\.preset must be one of ultrafast/],
    ];
    for (const [patch, message] of bad) {
      assert.throws(() => validateProfile({ ...defaultProfile, ...patch }), (err: unknown) => err instanceof RangeError && message.test(err.message), JSON.stringify(patch));
    }
    // transcode() refuses before forking anything.
    await assert.rejects(
      transcode({ input: hevcOpusMkv, output: join(dir, 'never.mp4'), hasVideo: true, hasAudio: true, frameRate: 25, profile: { ...defaultProfile, width: 321, height: 240 } }),
      RangeError,
    );
  });
});
