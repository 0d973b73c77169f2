/**
 * Seamless loops in copy mode, judged by an independent receiver: ffprobe's
 * packets of the RTMP output against ffprobe's packets of the file
 * (bench/loop-check.ts finds loop starts by packet content, not by our
 * timestamps). Five awkward files loop 100 times each, at once, on one
 * worker: B-frames with an edit list, audio longer than video, video longer
 * than audio, audio only, video only.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { judgeLoops, probeTracks, type LoopVerdict } from '../bench/loop-check.js';
import { createLogger } from '../src/log.js';
import { WorkerPool } from '../src/pool/pool.js';
import { makeMp4, probePackets, type MakeMediaOptions } from './helpers/media.js';
import { waitPipeline } from './helpers/pool.js';
import { startRelay } from './helpers/relay.js';

const log = createLogger({ test: 'loops' });
/** Each file lasts 0.6 s (its shortest track), so 100 loops take a minute. */
const fileSeconds = 0.6;
const loopsWanted = 100;
const aacFrameMs = (1024 / 48_000) * 1000;

const files: Record<string, MakeMediaOptions> = {
  'b-frames': { seconds: fileSeconds },
  'audio-longer': { seconds: fileSeconds, audioSeconds: fileSeconds + 0.25 },
  'video-longer': { seconds: fileSeconds + 0.25, audioSeconds: fileSeconds },
  'audio-only': { seconds: fileSeconds, video: false },
  'video-only': { seconds: fileSeconds, audio: false },
};

let dir = '';
let pool: WorkerPool;
let relay: { url: string; stop: () => Promise<void> };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vlive-loops-test-'));
  relay = await startRelay(join(dir, 'relay'));
  pool = new WorkerPool({ size: 1, maxPipelinesPerWorker: 8, handshakeTimeoutMs: 10_000, heartbeatIntervalMs: 1000, stopGraceMs: 3000, log });
  await pool.start();
});

after(async () => {
  await pool.dispose();
  await relay.stop();
  await rm(dir, { recursive: true, force: true });
});

test(`five awkward files loop ${loopsWanted} times with rising DTS, gaps within a frame and no drift`, async () => {
  const names = Object.keys(files);
  const paths = await Promise.all(names.map((name) => makeMp4(dir, { ...files[name], name, width: 320, height: 240, fps: 25 })));
  const fileTracks = await Promise.all(paths.map((p) => probeTracks(p)));
  const playing = names.map((name) => waitPipeline(pool, name, ['playing'], 20_000));
  await Promise.all(
    names.map((name, i) =>
      pool.startPipeline({ channelId: name, source: { kind: 'vod', items: [{ id: name, path: paths[i] ?? '' }], loop: true }, targets: [`${relay.url}/${name}`] }),
    ),
  );
  await Promise.all(playing);
  const seconds = Math.ceil(fileSeconds * (loopsWanted + 2));
  const received = await Promise.all(names.map((name) => probeTracks(`${relay.url}/${name}`, seconds)));

  // A late joiner still gets the codec configuration (SPS/PPS, AudioSpecificConfig) from the origin.
  const late = await probePackets(`${relay.url}/b-frames`, 2);
  assert.equal(late.video?.codecName, 'h264');
  assert.equal(late.video?.width, 320);
  assert.equal(late.audio?.codecName, 'aac');

  const verdicts: Record<string, LoopVerdict> = {};
  names.forEach((name, i) => {
    const verdict = judgeLoops(received[i] ?? { video: [], audio: [] }, fileTracks[i] ?? { video: [], audio: [] });
    verdicts[name] = verdict;
    console.log(`${name}: ${JSON.stringify(verdict)}`);
  });
  for (const [name, v] of Object.entries(verdicts)) {
    const opts = files[name] ?? {};
    assert.ok(v.loops >= loopsWanted, `${name}: ${v.loops} loops seen`);
    for (const [kind, t] of [['video', v.video], ['audio', v.audio]] as const) {
      const expected = kind === 'video' ? opts.video !== false : opts.audio !== false;
      assert.equal(t !== null, expected, `${name}: ${kind} track present`);
      if (t === null) continue;
      assert.equal(t.regressions, 0, `${name}: ${kind} DTS regressions`);
      // One frame of the track, plus 1 ms of FLV's millisecond rounding.
      assert.ok(t.largestGapMs <= t.frameMs + 1, `${name}: ${kind} gap ${t.largestGapMs} ms > one frame (${t.frameMs} ms)`);
    }
    assert.ok(v.maxDriftMs <= aacFrameMs, `${name}: A/V drift ${v.maxDriftMs} ms > one audio frame`);
  }
  await Promise.all(names.map((name) => pool.stopPipeline(name)));
});
