/**
 * Push targets fail alone: a channel with one extra target on a dead port
 * and two that work stays LIVING; the working targets and the origin keep
 * real-time pace while the dead one retries on its own, with its status,
 * bytes and last error in the API. Its retries hold nothing: the workers'
 * descriptors stay flat across them (a GStreamer forwarder used to leave a
 * pipeline and an origin connection behind per retry). A target that
 * accepts one connection only (ffprobe -listen 1) gets one session that
 * starts as a publish should: at a keyframe, DTS from 0, strictly rising.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app.js';
import { gqlOk } from './helpers/gql.js';
import { makeMp4, probePackets } from './helpers/media.js';
import { until } from './helpers/poll.js';
import { freePort } from './helpers/ports.js';
import { startRelay } from './helpers/relay.js';
import { nonIncreasing, RtmpReceiver } from './helpers/rtmp-receiver.js';

interface Target {
  position: number;
  url: string;
  status: string;
  bytesSent: number;
  errors: number;
  lastError: string | null;
}

describe('push targets', () => {
  let t: TestApp;
  let relay: { url: string; stop: () => Promise<void> };

  before(async () => {
    t = await startTestApp();
    relay = await startRelay(join(t.dir, 'relay'));
    await mkdir(join(t.mediaRoot, 'tg'), { recursive: true });
    await makeMp4(join(t.mediaRoot, 'tg'), { name: 'clip', seconds: 2, width: 320, height: 240, fps: 25 });
  });

  after(async () => {
    await t?.dispose();
    await relay?.stop();
  });

  it('a dead target retries alone while the channel, the origin and the other target go on', async () => {
    const vod = await gqlOk<{ registerVodResource: { id: string } }>(t.url, `mutation { registerVodResource(input: {name: "clip", path: "tg/clip.mp4"}) { id } }`);
    const dead = `rtmp://127.0.0.1:${await freePort()}/live/secret-key`;
    const good = `${relay.url}/copy`;
    const once = await RtmpReceiver.start();
    const c = await gqlOk<{ createVirtualLive: { id: string } }>(t.url, `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`, {
      i: { name: 'three targets', sourceType: 'VOD', vodResourceId: vod.registerVodResource.id, pushTargets: [dead, good, once.url] },
    });
    const id = c.createVirtualLive.id;
    const s = await gqlOk<{ startVirtualLive: { status: string; playUrls: { rtmp: string } } }>(t.url, `mutation($id: ID!) { startVirtualLive(id: $id) { status playUrls { rtmp } } }`, { id });
    assert.equal(s.startVirtualLive.status, 'LIVING');
    const [atOrigin, atGood] = await Promise.all([probePackets(s.startVirtualLive.playUrls.rtmp, 4), probePackets(good, 4)]);
    for (const [where, r] of [['origin', atOrigin], ['good target', atGood]] as const) {
      assert.equal(r.video?.codecName, 'h264', where);
      assert.ok((r.video?.dts.length ?? 0) > 75, `${where}: ${r.video?.dts.length} video packets in 4 s`);
    }
    const q = await gqlOk<{ virtualLive: { status: string; restartCount: number; pushTargets: Target[] } }>(
      t.url,
      `query($id: ID!) { virtualLive(id: $id) { status restartCount pushTargets { position url status bytesSent errors lastError } } }`,
      { id },
    );
    assert.equal(q.virtualLive.status, 'LIVING');
    assert.equal(q.virtualLive.restartCount, 0, 'the channel itself never restarted');
    const [d, g] = q.virtualLive.pushTargets;
    assert.ok(d !== undefined && g !== undefined);
    assert.equal(d.url, dead.replace('secret-key', '***'));
    assert.ok(d.errors >= 2, `the dead target retried: ${d.errors} errors`);
    assert.match(d.lastError ?? '', /^target 1: .*(refused|connect)/i);
    assert.ok(!(d.lastError ?? '').includes('secret-key'), 'the stream key is masked');
    assert.ok(['RETRYING', 'CONNECTING'].includes(d.status), d.status);
    assert.equal(g.status, 'UP');
    assert.ok(g.bytesSent > 100_000, `good target ${g.bytesSent} bytes`);
    assert.equal(g.errors, 0);

    // The one-connection target: one session, from a keyframe, DTS from 0, strictly rising.
    const o = q.virtualLive.pushTargets[2];
    assert.equal(o?.status, 'UP');
    assert.equal(o?.errors, 0);
    await once.until((r) => r.dts('video').length > 75, 10_000, '3 s of video at the one-connection target');
    const firstVideo = once.packets.find((p) => p.kind === 'video');
    assert.equal(firstVideo?.key, true, 'the session starts at a keyframe');
    assert.ok((firstVideo?.dts ?? Infinity) < 0.1, `the session's DTS start at 0: ${firstVideo?.dts}`);
    assert.deepEqual(nonIncreasing(once.dts('video')), []);
    assert.deepEqual(nonIncreasing(once.dts('audio')), []);

    // Retries hold nothing: two more refusals leave the workers' descriptors where they were.
    const before = await workerFds(t);
    const errorsBefore = (await targets(t, id))[0]?.errors ?? 0;
    await until(async () => (await targets(t, id))[0]?.errors ?? 0, (n) => n >= errorsBefore + 2, 30_000, "two more refusals");
    const grown = (await workerFds(t)) - before;
    assert.ok(grown <= 1, `the workers' descriptors grew by ${grown} over two refusals`);
    await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id });
    await once.close();
  });
});

async function targets(t: TestApp, id: string): Promise<Target[]> {
  const q = await gqlOk<{ virtualLive: { pushTargets: Target[] } }>(t.url, `query($id: ID!) { virtualLive(id: $id) { pushTargets { position url status bytesSent errors lastError } } }`, { id });
  return q.virtualLive.pushTargets;
}

/** Open descriptors of all the service's workers. */
async function workerFds(t: TestApp): Promise<number> {
  const pids = t.app.pool.workers().flatMap((w) => (w.pid !== null ? [w.pid] : []));
  assert.ok(pids.length > 0, 'the service has workers');
  const counts = await Promise.all(pids.map(async (pid) => (await readdir(`/proc/${pid}/fd`)).length));
  return counts.reduce((a, b) => a + b, 0);
}
