/**
 * The worker's own RTMP (src/rtmp/): AMF0 and the chunk stream as pure code,
 * then the publisher and the player against a real nginx-rtmp, judged by
 * ffprobe. Timestamps that cross 0xFFFFFF ms (4.66 hours into a 24/7
 * channel, where RTMP switches to extended timestamps) must stay continuous.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../src/log.js';
import { FlvReader, type FlvTag } from '../src/media/flv-reader.js';
import { ManagedOrigin } from '../src/origin/nginx.js';
import { AmfError, decode, encode, encodeEcmaArray } from '../src/rtmp/amf0.js';
import { ChunkReader, chunkMessages, type RtmpMessage } from '../src/rtmp/chunks.js';
import { parseRtmpUrl } from '../src/rtmp/connection.js';
import type { MediaTag } from '../src/rtmp/chunks.js';
import { RtmpPlayer } from '../src/rtmp/player.js';
import { RtmpPublisher } from '../src/rtmp/publisher.js';
import { WriteArena } from '../src/rtmp/write-arena.js';
import { probePackets, run } from './helpers/media.js';
import { freePorts } from './helpers/ports.js';

describe('AMF0', () => {
  it('round-trips what commands carry', () => {
    const values = ['connect', 1, { app: 'live', flag: true, n: null, nested: { x: -2.5 } }, null, [1, 'a']];
    assert.deepEqual(decode(encode(...(values as Parameters<typeof encode>))), values);
    assert.deepEqual(decode(encodeEcmaArray({ width: 1280, stereo: true })), [{ width: 1280, stereo: true }]);
  });
  it('refuses cut, unknown and absurdly nested input', () => {
    assert.throws(() => decode(encode('onStatus').subarray(0, 5)), AmfError);
    assert.throws(() => decode(Buffer.from([0x11])), AmfError);
    assert.throws(() => decode(Buffer.from(Array.from({ length: 100 }, () => 0x0a).flatMap((t) => [t, 0, 0, 0, 1]))), AmfError);
  });
});

describe('write arena', () => {
  it('never hands out bytes still in use, and reuses a slab once its writes are done', () => {
    const arena = new WriteArena(1024, 2);
    const held = Array.from({ length: 12 }, (_, i) => {
      const r = arena.take(100);
      r.buf.fill(i);
      return r;
    });
    // Twelve regions of 100 bytes span two slabs of 1024; none was overwritten by a later one.
    held.forEach((r, i) => assert.ok(r.buf.every((b) => b === i), `region ${i} kept its bytes`));
    assert.equal(arena.freeSlabs, 0, 'the full slab still has regions out');
    for (const r of held.slice(0, 10)) r.release();
    assert.equal(arena.freeSlabs, 1, 'the first slab comes back once its ten regions are released');
    held[0]?.release(); // a second release changes nothing
    assert.equal(arena.freeSlabs, 1);
    const big = arena.take(600);
    assert.equal(big.buf.length, 600);
    assert.notEqual(big.buf.buffer, held[0]?.buf.buffer, 'more than a quarter of a slab gets a buffer of its own');
    // Fill the current slab: the next slab taken is the recycled one, and the two still-held regions keep their bytes.
    const more = Array.from({ length: 9 }, () => arena.take(100));
    assert.equal(more.at(-1)?.buf.buffer, held[0]?.buf.buffer, 'the recycled slab is reused');
    more.forEach((r) => r.buf.fill(0xee));
    assert.ok(held[10]?.buf.every((b) => b === 10) && held[11]?.buf.every((b) => b === 11));
  });
});

describe('chunk stream', () => {
  it('reassembles messages cut into chunks and split anywhere, extended timestamps included', () => {
    const messages: RtmpMessage[] = [];
    for (let i = 0; i < 60; i++) {
      const payload = Buffer.alloc((i * 977) % 9000 + 1, i);
      messages.push({ csid: 4 + (i % 3), type: i % 2 ? 9 : 8, streamId: 1, timestamp: 0xfffff0 + i * 7, payload });
    }
    for (const chunkSize of [128, 4096]) {
      const bytes = chunkMessages(messages, chunkSize);
      // The peer chunks at 128 until told otherwise: tell it first.
      const setSize = chunkMessages([{ csid: 2, type: 1, streamId: 0, timestamp: 0, payload: Buffer.from([0, 0, chunkSize >> 8, chunkSize & 255]) }], 128);
      const stream = Buffer.concat([setSize, bytes]);
      const reader = new ChunkReader();
      const got: RtmpMessage[] = [];
      for (let at = 0; at < stream.length; ) {
        const n = 1 + ((at * 7919) % 3000);
        got.push(...reader.push(stream.subarray(at, at + n)));
        at += n;
      }
      const media = got.filter((m) => m.type !== 1);
      assert.equal(media.length, messages.length);
      media.forEach((m, i) => {
        assert.equal(m.timestamp, messages[i]?.timestamp, `message ${i} at chunk size ${chunkSize}`);
        assert.ok(m.payload.equals(messages[i]?.payload ?? Buffer.alloc(0)));
      });
    }
  });
  it('parses RTMP URLs, keeping the query in the stream name', () => {
    assert.deepEqual(parseRtmpUrl('rtmp://h:1936/live/key?token=a%20b'), { tls: false, host: 'h', port: 1936, app: 'live', stream: 'key?token=a%20b', tcUrl: 'rtmp://h:1936/live' });
    assert.equal(parseRtmpUrl('rtmps://cdn.example/app/k').port, 443);
    assert.throws(() => parseRtmpUrl('rtmp://h/onlyapp'), /app\/stream/);
  });
});

describe('publisher and player against nginx-rtmp', () => {
  let dir = '';
  let origin: ManagedOrigin;
  let tags: FlvTag[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vlive-rtmp-'));
    const [rtmpPort, hlsPort] = await freePorts(2);
    origin = new ManagedOrigin({ dataDir: dir, rtmpPort: rtmpPort ?? 0, hlsPort: hlsPort ?? 0, logger: createLogger({ test: 'rtmp' }) });
    await origin.start();
    const flv = join(dir, 'clip.flv');
    await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '4', '-c:v', 'libx264', '-g', '25', '-c:a', 'aac', '-f', 'flv', flv], 60_000);
    tags = new FlvReader().push(await readFile(flv));
  });
  after(async () => {
    await origin.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Publishes the clip in real time from `offsetMs` on, in 40 ms batches, as the worker does. */
  async function publish(p: RtmpPublisher, offsetMs: number): Promise<void> {
    const start = performance.now();
    let i = 0;
    while (i < tags.length) {
      const due = performance.now() - start + 40;
      const batch: MediaTag[] = [];
      while (i < tags.length && (tags[i]?.timeMs ?? 0) <= due) {
        const t = tags[i++] as FlvTag;
        batch.push({ ...t, timeMs: t.timeMs + offsetMs });
      }
      if (batch.length > 0) p.send(batch);
      await new Promise((r) => setTimeout(r, 40));
    }
  }

  it('publishes across the extended-timestamp boundary with DTS rising, read back by ffprobe and by our player', async () => {
    const url = origin.publishUrl('ext');
    const p = new RtmpPublisher({ url, timeoutMs: 5000 });
    await p.publish();
    const played: MediaTag[] = [];
    const player = new RtmpPlayer({ url, timeoutMs: 5000, onTag: (t) => played.push(t), onEnd: () => undefined });
    await player.play();
    // 0xFFFFFF ms is 16777.215 s: start 1 s before it.
    const offset = 0xffffff - 1000;
    const probe = probePackets(url, 3);
    await publish(p, offset);
    const report = await probe;
    await player.close();
    await p.close();
    for (const s of [report.video, report.audio]) {
      assert.ok(s !== null && s.dts.length > 20, `${s?.codecType}: ${s?.dts.length} packets`);
      assert.ok(s.dts.every((d, i) => i === 0 || d > (s.dts[i - 1] ?? 0)), `${s.codecType} DTS rise strictly`);
      assert.ok((s.dts.at(-1) ?? 0) > 16777.3, `${s.codecType} reached past the boundary: ${s.dts.at(-1)}`);
    }
    // Frames only (AVC packet type 1): the sequence header shares its keyframe's time, and the
    // clip's end-of-sequence tag its last frame's.
    const video = played.filter((t) => t.type === 9 && t.body[1] === 1).map((t) => t.timeMs);
    assert.ok(video.length > 50, `player: ${video.length} video tags`);
    const bad = video.map((t, i) => [i, t, video[i - 1] ?? 0]).filter(([i, t, prev]) => (i ?? 0) > 0 && (t ?? 0) <= (prev ?? 0));
    assert.deepEqual(bad, [], `player: video timestamps rise strictly: ${JSON.stringify(video.slice(0, 8))}`);
    assert.ok(video.some((t) => t > 0xffffff), 'player: timestamps past 0xFFFFFF');
  });

  it('a second publisher of a stream is refused with the origin\'s code; a stream that ends ends the player', async () => {
    const url = origin.publishUrl('taken');
    const first = new RtmpPublisher({ url, timeoutMs: 5000 });
    await first.publish();
    const second = new RtmpPublisher({ url, timeoutMs: 5000 });
    await assert.rejects(second.publish(), (err: Error) => /refused the publish: NetStream\.Publish\.BadName/.test(err.message));
    let ended: string | null = null;
    const player = new RtmpPlayer({ url, timeoutMs: 5000, onTag: () => undefined, onEnd: (e) => (ended = `${e.code}: ${e.message}`) });
    await player.play();
    // nginx-rtmp tells a player the stream ended only once it had media.
    await publish(first, 0);
    await first.close();
    const deadline = Date.now() + 3000;
    while (ended === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(ended, 'ENDED: the live stream ended');
  });

  it('a port with nothing behind it fails the connect, in words', async () => {
    const [port] = await freePorts(1);
    const p = new RtmpPublisher({ url: `rtmp://127.0.0.1:${port}/live/x`, timeoutMs: 3000 });
    await assert.rejects(p.publish(), /Connection refused \(ECONNREFUSED\)/);
  });
});
