/**
 * The MP4 sample-index reader, judged by an independent demuxer: every
 * sample's size, file position, keyframe flag and timestamps must match
 * what ffprobe (libavformat's mov demuxer) reports for the same file.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Mp4Error, readMp4, trackSeconds, type Mp4File, type Mp4Track } from '../src/media/mp4.js';
import { makeMp4, run } from './helpers/media.js';

interface ProbedStream {
  readonly codecName: string;
  readonly codecType: string;
  readonly timeBase: number;
  readonly profile: string | undefined;
  readonly level: number | undefined;
  readonly sampleRate: number | undefined;
  readonly channels: number | undefined;
  readonly packets: { pts: number; dts: number; size: number; pos: number; key: boolean }[];
}

interface FfprobeJson {
  streams: { index: number; codec_name: string; codec_type: string; time_base: string; profile?: string; level?: number; sample_rate?: string; channels?: number }[];
  packets: { stream_index: number; pts: number; dts: number; size: string; pos: string; flags: string }[];
}

async function ffprobe(file: string): Promise<ProbedStream[]> {
  const { stdout } = await run('ffprobe', [
    '-v', 'error',
    '-show_entries', 'stream=index,codec_name,codec_type,time_base,profile,level,sample_rate,channels',
    '-show_packets', '-show_entries', 'packet=stream_index,pts,dts,size,pos,flags',
    '-of', 'json', file,
  ], 30_000);
  const json = JSON.parse(stdout) as FfprobeJson;
  return json.streams.map((s) => {
    const [num, den] = s.time_base.split('/').map(Number);
    return {
      codecName: s.codec_name,
      codecType: s.codec_type,
      timeBase: (num ?? 0) / (den ?? 1),
      profile: s.profile,
      level: s.level,
      sampleRate: s.sample_rate === undefined ? undefined : Number(s.sample_rate),
      channels: s.channels,
      packets: json.packets
        .filter((p) => p.stream_index === s.index)
        .map((p) => ({ pts: p.pts, dts: p.dts, size: Number(p.size), pos: Number(p.pos), key: p.flags.includes('K') })),
    };
  });
}

/** Asserts that every track's samples are ffprobe's packets, in seconds to 1e-6. */
async function assertMatchesFfprobe(file: string, mp4: Mp4File): Promise<ProbedStream[]> {
  const streams = await ffprobe(file);
  assert.equal(mp4.tracks.length, streams.length, 'track count');
  mp4.tracks.forEach((t, i) => {
    const s = streams[i];
    assert.ok(s !== undefined);
    assert.equal(t.kind, s.codecType, `track ${i} kind`);
    const n = t.samples.count;
    assert.equal(n, s.packets.length, `track ${i} sample count`);
    for (let k = 0; k < n; k++) {
      const p: ProbedStream['packets'][number] | undefined = s.packets[k];
      assert.ok(p !== undefined);
      const what = `track ${i} sample ${k}`;
      assert.equal(t.samples.size[k], p.size, `${what} size`);
      assert.equal(t.samples.offset[k], p.pos, `${what} pos`);
      assert.equal(t.samples.sync[k] === 1, p.key, `${what} keyframe`);
      const dts = (t.samples.dts[k] ?? NaN) / t.timescale;
      const pts = ((t.samples.dts[k] ?? NaN) + (t.samples.cts[k] ?? NaN)) / t.timescale;
      assert.ok(Math.abs(dts - p.dts * s.timeBase) < 1e-6, `${what} dts ${dts} vs ${p.dts * s.timeBase}`);
      assert.ok(Math.abs(pts - p.pts * s.timeBase) < 1e-6, `${what} pts ${pts} vs ${p.pts * s.timeBase}`);
    }
  });
  return streams;
}

function track(mp4: Mp4File, kind: 'video' | 'audio'): Mp4Track {
  const t = mp4.tracks.find((x) => x.kind === kind);
  assert.ok(t !== undefined, `no ${kind} track`);
  return t;
}

async function rejectsMp4(file: string, pattern: RegExp): Promise<void> {
  const started = Date.now();
  await assert.rejects(readMp4(file), (err: unknown) => {
    assert.ok(err instanceof Mp4Error, `expected Mp4Error, got ${String(err)}`);
    assert.equal(err.name, 'Mp4Error');
    assert.match(err.message, pattern);
    return true;
  });
  assert.ok(Date.now() - started < 2_000, 'refused quickly');
}

const AVC_PROFILES: Record<string, number> = { Baseline: 66, 'Constrained Baseline': 66, Main: 77, High: 100 };

describe('readMp4', () => {
  let dir = '';
  const files: Record<'plain' | 'uneven' | 'audioOnly' | 'videoOnly' | 'hevcOpus' | 'mp3' | 'mov', string> = {
    plain: '', uneven: '', audioOnly: '', videoOnly: '', hevcOpus: '', mp3: '', mov: '',
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vlive-mp4-'));
    const [plain, uneven, audioOnly, videoOnly, hevcOpus, mp3, mov] = await Promise.all([
      makeMp4(dir, { seconds: 2, name: 'plain' }),
      makeMp4(dir, { seconds: 2, audioSeconds: 2.5, name: 'uneven' }),
      makeMp4(dir, { seconds: 2, video: false, name: 'audio-only' }),
      makeMp4(dir, { seconds: 2, audio: false, name: 'video-only' }),
      makeMp4(dir, { seconds: 2, video: 'hevc', audio: 'opus', name: 'hevc-opus' }),
      makeMp4(dir, { seconds: 2, video: false, audio: 'mp3', name: 'mp3' }),
      makeMp4(dir, { seconds: 2, container: 'mov', name: 'qt' }),
    ]);
    Object.assign(files, { plain, uneven, audioOnly, videoOnly, hevcOpus, mp3, mov });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('h264 + aac: every sample matches ffprobe', async () => {
    const mp4 = await readMp4(files.plain);
    assert.equal(mp4.brand, 'isom');
    assert.deepEqual(mp4.tracks.map((t) => [t.kind, t.codec, t.fourcc]), [['video', 'h264', 'avc1'], ['audio', 'aac', 'mp4a']]);
    assert.ok(Math.abs(mp4.movieDurationSeconds - 2) < 0.05, `movie ${mp4.movieDurationSeconds}`);
    const streams = await assertMatchesFfprobe(files.plain, mp4);

    const v = track(mp4, 'video');
    assert.deepEqual([v.width, v.height, v.sampleRate, v.channels], [320, 240, 0, 0]);
    assert.equal(v.config?.[0], 1, 'avcC configurationVersion');
    assert.equal(v.avcProfile, AVC_PROFILES[streams[0]?.profile ?? '']);
    assert.equal(v.avcLevel, streams[0]?.level);
    assert.equal(v.samples.sync[0], 1);
    assert.ok(v.samples.sync.slice(1, 25).every((f) => f === 0), 'one keyframe per one-second GOP');
    assert.equal(v.samples.sync[25], 1);

    const a = track(mp4, 'audio');
    assert.deepEqual([a.sampleRate, a.channels], [streams[1]?.sampleRate, streams[1]?.channels]);
    assert.deepEqual([a.width, a.height, a.avcProfile, a.avcLevel], [0, 0, null, null]);
    assert.equal((a.config?.[0] ?? 0) >> 3, 2, 'AudioSpecificConfig says AAC-LC');
    assert.ok(Math.abs(trackSeconds(v) - 2) < 0.04 && Math.abs(trackSeconds(a) - 2) < 0.03, `${trackSeconds(v)} ${trackSeconds(a)}`);
  });

  it('B-frames: the edit list makes dts start negative and the first pts 0', async () => {
    const v = track(await readMp4(files.plain), 'video');
    const pts = Array.from(v.samples.dts, (d, i) => d + (v.samples.cts[i] ?? 0));
    assert.ok((v.samples.dts[0] ?? 0) < 0, `first dts ${v.samples.dts[0]}`);
    assert.equal(pts[0], 0);
    assert.equal(Math.min(...pts), 0);
    assert.ok(v.samples.cts.some((c, i) => c !== v.samples.cts[0] && i > 0), 'composition offsets vary');
  });

  it('audio longer than video: track durations differ by the extra half second', async () => {
    const mp4 = await readMp4(files.uneven);
    await assertMatchesFfprobe(files.uneven, mp4);
    const v = trackSeconds(track(mp4, 'video'));
    const a = trackSeconds(track(mp4, 'audio'));
    assert.ok(Math.abs(v - 2) < 0.04, `video ${v}`);
    assert.ok(Math.abs(a - 2.5) < 0.03, `audio ${a}`);
    assert.ok(Math.abs(a - v - 0.5) < 0.04, `difference ${a - v}`);
  });

  it('audio-only aac and video-only h264', async () => {
    const audio = await readMp4(files.audioOnly);
    await assertMatchesFfprobe(files.audioOnly, audio);
    assert.deepEqual(audio.tracks.map((t) => [t.kind, t.codec, t.sampleRate, t.channels]), [['audio', 'aac', 48000, 2]]);
    const video = await readMp4(files.videoOnly);
    await assertMatchesFfprobe(files.videoOnly, video);
    assert.deepEqual(video.tracks.map((t) => [t.kind, t.codec]), [['video', 'h264']]);
  });

  it('hevc video has no config; opus audio is named', async () => {
    const mp4 = await readMp4(files.hevcOpus);
    await assertMatchesFfprobe(files.hevcOpus, mp4);
    const v = track(mp4, 'video');
    assert.deepEqual([v.codec, v.fourcc, v.config, v.avcProfile, v.width, v.height], ['hevc', 'hvc1', null, null, 320, 240]);
    const a = track(mp4, 'audio');
    assert.deepEqual([a.codec, a.fourcc, a.config, a.sampleRate], ['opus', 'Opus', null, 48000]);
  });

  it('mp3 in mp4 is mp3', async () => {
    const mp4 = await readMp4(files.mp3);
    await assertMatchesFfprobe(files.mp3, mp4);
    const a = track(mp4, 'audio');
    assert.deepEqual([a.codec, a.config, a.sampleRate, a.channels], ['mp3', null, 44100, 2]);
  });

  it('a QuickTime .mov works', async () => {
    const mp4 = await readMp4(files.mov);
    assert.equal(mp4.brand, 'qt  ');
    const streams = await assertMatchesFfprobe(files.mov, mp4);
    assert.deepEqual(mp4.tracks.map((t) => t.codec), ['h264', 'aac']);
    const a = track(mp4, 'audio');
    assert.deepEqual([a.sampleRate, a.channels], [streams[1]?.sampleRate, streams[1]?.channels]);
  });

  it('a leading empty edit delays the track', async () => {
    const out = join(dir, 'delayed.mp4');
    await run('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-y', '-i', files.plain, '-itsoffset', '0.5', '-i', files.plain,
      '-map', '0:v', '-map', '1:a', '-c', 'copy', out,
    ], 30_000);
    const mp4 = await readMp4(out);
    await assertMatchesFfprobe(out, mp4);
    const a = track(mp4, 'audio');
    const firstPts = (a.samples.dts[1] ?? 0) / a.timescale; // sample 0 is the AAC priming frame
    assert.ok(Math.abs(firstPts - 0.5) < 0.03, `audio starts at ${firstPts}`);
    assert.ok(Math.abs(trackSeconds(a) - 2) < 0.03, `audio plays ${trackSeconds(a)}`);
  });

  it('moov at the end, a 64-bit mdat size and a size-0 last box', async () => {
    const plain = join(dir, 'moov-last.mp4');
    await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-i', files.plain, '-c', 'copy', plain], 30_000);
    const bytes = await readFile(plain);
    // ffmpeg reserves an 8-byte 'free' box before mdat for exactly this:
    // together with the mdat header it becomes one 16-byte 64-bit header.
    const free = bytes.indexOf('free');
    assert.equal(bytes.toString('latin1', free + 8, free + 12), 'mdat');
    const mdatSize = bytes.readUInt32BE(free + 4);
    bytes.writeUInt32BE(1, free - 4);
    bytes.write('mdat', free, 'latin1');
    bytes.writeUInt32BE(0, free + 4);
    bytes.writeUInt32BE(mdatSize + 8, free + 8);
    const moov = free - 4 + 8 + mdatSize;
    assert.equal(bytes.toString('latin1', moov + 4, moov + 8), 'moov');
    bytes.writeUInt32BE(0, moov);
    const patched = join(dir, 'wide.mp4');
    await writeFile(patched, bytes);
    const mp4 = await readMp4(patched);
    await assertMatchesFfprobe(plain, mp4);
  });

  describe('hostile input is refused with an Mp4Error', () => {
    it('a truncated file', async () => {
      const bytes = await readFile(files.plain);
      const head = join(dir, 'head.mp4');
      await writeFile(head, bytes.subarray(0, 1000));
      await rejectsMp4(head, /truncated/);
      // The whole moov, but not all of the media it points at.
      const half = join(dir, 'half.mp4');
      await writeFile(half, bytes.subarray(0, bytes.length >> 1));
      await rejectsMp4(half, /truncated/);
    });

    it('random bytes', async () => {
      const file = join(dir, 'random.mp4');
      for (let i = 0; i < 20; i++) {
        await writeFile(file, randomBytes(4096));
        await rejectsMp4(file, /./);
      }
    });

    it('stsz claiming 2^31 samples', async () => {
      const bytes = await readFile(files.plain);
      const stsz = bytes.indexOf('stsz');
      bytes.writeUInt32BE(2 ** 31, stsz + 12);
      const file = join(dir, 'stsz-count.mp4');
      await writeFile(file, bytes);
      await rejectsMp4(file, /stsz: claims 2147483648 samples/);
      // With a constant sample size nothing in the box backs the count.
      bytes.writeUInt32BE(1, stsz + 8);
      await writeFile(file, bytes);
      await rejectsMp4(file, /do not fit in the file/);
    });

    it('a moov over 256 MiB', async () => {
      const bytes = await readFile(files.plain);
      bytes.writeUInt32BE(0xffff_fff0, bytes.indexOf('moov') - 4);
      const file = join(dir, 'moov-size.mp4');
      await writeFile(file, bytes);
      await rejectsMp4(file, /more than the 268435456 accepted/);
    });

    it('fragmented MP4', async () => {
      const file = join(dir, 'fragmented.mp4');
      await run('ffmpeg', [
        '-hide_banner', '-loglevel', 'error', '-y', '-i', files.plain, '-c', 'copy', '-movflags', 'frag_keyframe+empty_moov', file,
      ], 30_000);
      await rejectsMp4(file, /fragmented MP4 is not supported/);
    });

    it('a few hundred random corruptions of a real moov', async () => {
      const orig = await readFile(files.plain);
      const moovAt = orig.indexOf('moov') - 4;
      const moovEnd = moovAt + orig.readUInt32BE(moovAt);
      let seed = 1; // fixed, so a failure reproduces
      const rnd = (n: number): number => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return Math.floor((seed / 2 ** 32) * n);
      };
      const file = join(dir, 'corrupt.mp4');
      for (let i = 0; i < 300; i++) {
        const bytes = Buffer.from(orig);
        for (let k = 0; k <= rnd(4); k++) {
          const at = moovAt + rnd(moovEnd - moovAt - 4);
          const values = [0, 1, 8, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, rnd(2 ** 32)];
          bytes.writeUInt32BE(values[rnd(values.length)] ?? 0, at);
        }
        await writeFile(file, bytes);
        // Many corruptions leave a readable file; none may escape as another error.
        await readMp4(file).catch((err: unknown) => {
          assert.ok(err instanceof Mp4Error, `corruption ${i}: ${String(err)}`);
        });
      }
    });

    it('a missing file is a plain file-system error', async () => {
      await assert.rejects(readMp4(join(dir, 'nope.mp4')), { code: 'ENOENT' });
    });
  });
});
