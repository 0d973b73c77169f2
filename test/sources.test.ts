/**
 * Online sources of every scheme, each pulled from a real peer on loopback:
 * GStreamer's RTSP server (RTP over TCP and over UDP), HLS from nginx-rtmp,
 * HTTP-FLV and SRT from ffmpeg. ffprobe judges the channel's output on the
 * origin. A source with codecs FLV cannot carry is transcoded (AUTO), or
 * refused (NEVER). A source that accepts the connection and then stays silent must
 * end the start in ERROR, leaving nothing running.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app.js';
import { gqlOk } from './helpers/gql.js';
import { arrivalSpan, makeMp4, mediaSpan, paceProblem, probePackets, startPublisher } from './helpers/media.js';
import { startHttpFlvServer, startRtspServer, startSilentServer, startSrtListener } from './helpers/peers.js';

const channelFields = 'id status errorString restartCount playUrls { rtmp }';

interface Channel {
  id: string;
  status: string;
  errorString: string | null;
  restartCount: number;
  playUrls: { rtmp: string };
}

/** How long the independent receiver reads the output, seconds of media. */
const PROBE_SECONDS = 4;

/** Resolves once the HLS playlist at `url` answers 200 and lists at least `segments` segments. */
async function untilHlsSegments(url: string, segments: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const res = await fetch(url);
      last = `${res.status} ${await res.text()}`;
      if (res.status === 200 && (last.match(/^#EXTINF:/gm) ?? []).length >= segments) return;
    } catch (err) {
      last = String(err);
    }
    // nginx-rtmp writes the playlist once a fragment is done and announces it nowhere else.
    if (Date.now() > deadline) throw new Error(`no HLS playlist with ${segments} segments within ${timeoutMs} ms; last: ${last}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('online sources of every scheme', () => {
  let t: TestApp;
  let file: string;

  before(async () => {
    t = await startTestApp();
    file = await makeMp4(t.dir, { name: 'source', seconds: 20, width: 320, height: 240, fps: 25 });
  });

  after(async () => {
    await t?.dispose();
  });

  const create = async (name: string, input: Record<string, unknown>): Promise<Channel> =>
    (
      await gqlOk<{ createVirtualLive: Channel }>(
        t.url,
        `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { ${channelFields} } }`,
        { i: { name, sourceType: 'ONLINE', ...input } },
      )
    ).createVirtualLive;
  const start = async (id: string): Promise<Channel> =>
    (await gqlOk<{ startVirtualLive: Channel }>(t.url, `mutation($id: ID!) { startVirtualLive(id: $id) { ${channelFields} } }`, { id })).startVirtualLive;
  const stop = async (id: string): Promise<Channel> =>
    (await gqlOk<{ stopVirtualLive: Channel }>(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { ${channelFields} } }`, { id })).stopVirtualLive;
  const pipelines = async (): Promise<number> =>
    (await gqlOk<{ workers: { pipelines: number }[] }>(t.url, '{ workers { pipelines } }')).workers.reduce((n, w) => n + w.pipelines, 0);

  /**
   * Relays `input`'s source into a channel and judges its output: H.264
   * 320x240 and AAC, video DTS strictly increasing, at real-time pace. The
   * channel is stopped whatever happens. `seconds`: how long to read; the
   * origin starts a new player's video at a keyframe, so a longer GOP needs
   * a longer read for the same count of video packets.
   */
  async function relayAndJudge(name: string, input: Record<string, unknown>, peerStderr: () => string, seconds = PROBE_SECONDS): Promise<void> {
    const ch = await create(name, input);
    let judged = false;
    try {
      const s0 = performance.now();
      const live = await start(ch.id);
      assert.equal(live.status, 'LIVING', `errorString: ${live.errorString}\npeer: ${peerStderr()}`);
      console.log(`${name} start: LIVING after ${Math.round(performance.now() - s0)} ms`);

      const probe = await probePackets(live.playUrls.rtmp, seconds, { forPace: true });
      assert.equal(probe.video?.codecName, 'h264');
      assert.equal(probe.video?.width, 320);
      assert.equal(probe.video?.height, 240);
      assert.equal(probe.audio?.codecName, 'aac');
      const dts = probe.video?.dts ?? [];
      // 25 fps for 4 s is 100 packets; fewer than 75 means the relay starves or drops.
      const firstAudio = probe.audio?.dts[0];
      assert.ok(
        dts.length >= 75,
        `too few video packets in ${seconds} s: ${dts.length}; video ${dts[0]}..${dts.at(-1)}, audio from ${firstAudio}, gaps over 60 ms at ${dts.filter((d, i) => i > 0 && d - (dts[i - 1] ?? d) > 0.06).join(', ')}`,
      );
      for (let i = 1; i < dts.length; i++) {
        assert.ok((dts[i] ?? 0) > (dts[i - 1] ?? 0), `video DTS not strictly increasing at packet ${i}: ${dts[i - 1]} → ${dts[i]}`);
      }
      console.log(`${name} pace: ${mediaSpan(probe).toFixed(2)} s of media over ${arrivalSpan(probe).toFixed(2)} s of wall time`);
      assert.equal(paceProblem(probe), null);
      // A relay that stalled and reconnected meanwhile can still hand ffprobe clean packets.
      const now = (await gqlOk<{ virtualLive: Channel }>(t.url, `query($id: ID!) { virtualLive(id: $id) { ${channelFields} } }`, { id: ch.id })).virtualLive;
      assert.equal(now.status, 'LIVING', `errorString: ${now.errorString}`);
      assert.equal(now.restartCount, live.restartCount, `the relay restarted while probed: ${now.errorString}`);
      judged = true;
    } finally {
      // On a failure, stopping is cleanup only: its outcome must not hide the first error.
      const stopped = await stop(ch.id).catch((err: unknown) => (judged ? Promise.reject(err) : null));
      if (judged) assert.equal(stopped?.status, 'STOPPED');
    }
  }

  it('relays rtsp:// with RTP over TCP', async () => {
    const rtsp = await startRtspServer(file);
    try {
      await relayAndJudge('rtsp tcp', { sourceUrl: rtsp.url, rtspTransport: 'TCP' }, rtsp.stderr);
    } finally {
      await rtsp.stop();
    }
  });

  it('relays rtsp:// with RTP over UDP', async () => {
    const rtsp = await startRtspServer(file);
    try {
      await relayAndJudge('rtsp udp', { sourceUrl: rtsp.url, rtspTransport: 'UDP' }, rtsp.stderr);
    } finally {
      await rtsp.stop();
    }
  });

  it('relays HLS (http://….m3u8) from the local origin', async () => {
    const publisher = startPublisher(file, t.app.origin.publishUrl('hlssrc'), { loop: true });
    try {
      await t.app.origin.waitForPublish('hlssrc', 10_000);
      const hls = t.app.origin.playUrls('hlssrc').hls;
      assert.ok(hls !== null, 'the origin serves HLS');
      // The origin cuts 1 s fragments; two make a playlist a player can start on.
      await untilHlsSegments(hls, 2, 15_000);
      await relayAndJudge('hls', { sourceUrl: hls }, publisher.stderr);
    } finally {
      await publisher.stop();
    }
  });

  it('relays HTTP-FLV', async () => {
    const flv = await startHttpFlvServer(file);
    try {
      await relayAndJudge('http-flv', { sourceUrl: flv.url }, flv.stderr);
    } finally {
      await flv.stop();
    }
  });

  it('relays srt:// (MPEG-TS, as the caller)', async () => {
    const srt = await startSrtListener(file);
    try {
      await relayAndJudge('srt', { sourceUrl: srt.url }, srt.stderr);
    } finally {
      await srt.stop();
    }
  });

  it('transcodes a source whose codecs FLV cannot carry (H.265 + MP3 over RTSP) with transcode AUTO; NEVER refuses it', async () => {
    const hevc = await makeMp4(t.dir, { name: 'hevc-mp3', seconds: 20, width: 320, height: 240, fps: 25, video: 'hevc', audio: 'mp3' });
    const rtsp = await startRtspServer(hevc, 'hevc-mp3');
    try {
      const ch = await create('rtsp-hevc-copy', { sourceUrl: rtsp.url, transcode: 'NEVER', connectTimeoutMs: 5_000 });
      const failed = await start(ch.id);
      assert.equal(failed.status, 'ERROR');
      assert.match(failed.errorString ?? '', /not-linked|not-negotiated/, `errorString: ${failed.errorString}`);
      assert.equal(await pipelines(), 0);
      // The transcode's keyframes are 2 s apart (the copies' sources 1 s).
      await relayAndJudge('rtsp-hevc', { sourceUrl: rtsp.url }, rtsp.stderr, PROBE_SECONDS + 2);
    } finally {
      await rtsp.stop();
    }
  });

  it('ends the start in ERROR when a connected source sends nothing, and leaves nothing running', async () => {
    const silent = await startSilentServer();
    try {
      const ch = await create('silent', { sourceUrl: `rtmp://127.0.0.1:${silent.port}/live/none`, connectTimeoutMs: 2_000 });
      const failed = await start(ch.id);
      assert.equal(failed.status, 'ERROR');
      assert.match(failed.errorString ?? '', /time[ds]? ?out|within \d+ ?ms/i, `errorString: ${failed.errorString}`);
      assert.ok(silent.connections() >= 1, 'the channel never connected to the silent source');
      assert.equal(await pipelines(), 0);
      assert.equal(await t.app.origin.isPublishing(ch.id), false);
    } finally {
      await silent.stop();
    }
  });
});
