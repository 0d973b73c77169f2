/**
 * A relayed RTMP source goes away for 10 s and comes back: the channel goes
 * RECONNECTING with its attempts and next attempt time visible in the API
 * and the subscription, and is LIVING again within 2 s of the source's
 * return (VLIVE_RECONNECT_MAX_DELAY_MS defaults to 1 s), in the same publish
 * session: the origin sees one publisher connection throughout, and a push
 * target that accepts only one (ffprobe -listen) gets the media from before
 * and after, with video DTS that strictly rise. A channel with
 * maxReconnectAttempts gives up and ends in ERROR.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { publisherAtOrigin, startTestApp, type TestApp } from './helpers/app.js';
import { collect, gqlOk, wsClient } from './helpers/gql.js';
import { makeMp4, startPublisher, type Publisher } from './helpers/media.js';
import { nonIncreasing, RtmpReceiver } from './helpers/rtmp-receiver.js';
import { pollUntil } from './helpers/service.js';

interface Change {
  virtualLiveStatusChanged: { id: string; status: string; previous: string | null; reconnectAttempts: number; nextAttemptAt: string | null; at: string };
}

describe('reconnects of a live source', () => {
  let t: TestApp;
  let file = '';

  before(async () => {
    t = await startTestApp();
    await mkdir(join(t.mediaRoot, 'src'), { recursive: true });
    file = await makeMp4(join(t.mediaRoot, 'src'), { name: 'src', seconds: 4, width: 320, height: 240, fps: 25 });
  });

  after(async () => {
    await t?.dispose();
  });

  const create = async (name: string, stream: string, extra: Record<string, unknown> = {}): Promise<string> =>
    (
      await gqlOk<{ createVirtualLive: { id: string } }>(t.url, `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`, {
        i: { name, sourceType: 'ONLINE', sourceUrl: t.app.origin.publishUrl(stream), ...extra },
      })
    ).createVirtualLive.id;

  it('is LIVING again within 2 s of the source coming back after 10 s, in the same publish session, with its attempts shown on the way', async () => {
    let publisher: Publisher = startPublisher(file, t.app.origin.publishUrl('upstream'), { loop: true });
    await t.app.origin.waitForPublish('upstream', 10_000);
    const rx = await RtmpReceiver.start();
    const id = await create('relay', 'upstream', { pushTargets: [rx.url] });
    const client = wsClient(t.url);
    const sub = collect<Change>(client, `subscription($id: ID) { virtualLiveStatusChanged(id: $id) { id status previous reconnectAttempts nextAttemptAt at } }`, { id });
    try {
      await new Promise((r) => setTimeout(r, 200));
      const started = await gqlOk<{ startVirtualLive: { status: string } }>(t.url, `mutation($id: ID!) { startVirtualLive(id: $id) { status } }`, { id });
      assert.equal(started.startVirtualLive.status, 'LIVING');
      await rx.until((r) => r.dts('video').length >= 25, 15_000, 'video at the push target before the drop');
      const session = await publisherAtOrigin(t, id);
      assert.ok(session !== null, 'the channel publishes at the origin');

      await publisher.stop();
      const droppedAt = Date.now();
      await sub.until((e) => e.some((x) => x.virtualLiveStatusChanged.status === 'RECONNECTING'), 15_000);
      await new Promise((r) => setTimeout(r, 8_000));
      const during = await gqlOk<{ virtualLive: { status: string; reconnectAttempts: number; nextAttemptAt: string | null } }>(
        t.url,
        `query($id: ID!) { virtualLive(id: $id) { status reconnectAttempts nextAttemptAt } }`,
        { id },
      );
      assert.equal(during.virtualLive.status, 'RECONNECTING');
      // nginx-rtmp holds a play of a stream nobody publishes, so an attempt
      // waits up to the start timeout for media; the one waiting when the
      // source returns gets it at once.
      assert.ok(during.virtualLive.reconnectAttempts >= 1, `attempts ${during.virtualLive.reconnectAttempts}`);
      assert.ok(during.virtualLive.nextAttemptAt !== null);
      const attemptsSeen = sub.events.filter((e) => e.virtualLiveStatusChanged.previous === 'RECONNECTING' && e.virtualLiveStatusChanged.status === 'RECONNECTING');
      assert.ok(attemptsSeen.length >= 1 && attemptsSeen.every((e) => e.virtualLiveStatusChanged.reconnectAttempts >= 1 && e.virtualLiveStatusChanged.nextAttemptAt !== null), 'the subscription shows each attempt');

      publisher = startPublisher(file, t.app.origin.publishUrl('upstream'), { loop: true });
      await t.app.origin.waitForPublish('upstream', 10_000);
      const back = Date.now();
      await sub.until((e) => e.some((x) => x.virtualLiveStatusChanged.status === 'LIVING' && Date.parse(x.virtualLiveStatusChanged.at) >= back - 1000), 10_000);
      const living = sub.events.map((e) => e.virtualLiveStatusChanged).filter((x) => x.status === 'LIVING').at(-1);
      const tookMs = Date.parse(living?.at ?? '') - back;
      console.log(`LIVING again ${tookMs} ms after the source was back`);
      assert.ok(tookMs <= 2000, `LIVING ${tookMs} ms after the source came back`);
      assert.equal(living?.reconnectAttempts, 0);

      // One publish session throughout: the same connection at the origin,
      // and the one-shot receiver behind it still getting media.
      assert.equal(await publisherAtOrigin(t, id), session, 'the origin saw one publisher connection across the drop');
      const before = rx.packets.filter((p) => p.kind === 'video').length;
      await rx.until((r) => r.packets.filter((p) => p.kind === 'video').length >= before + 25, 10_000, 'video at the push target after the source came back');
      const video = rx.dts('video');
      assert.deepEqual(nonIncreasing(video), [], 'video DTS strictly rise at the receiver');
      const gap = Math.max(...video.map((d, i) => (i > 0 ? d - (video[i - 1] ?? d) : 0)));
      console.log(`one publish session across a ${Math.round((back - droppedAt) / 1000)} s drop; largest DTS step ${gap.toFixed(2)} s`);
      assert.ok(gap >= 5, `the 10 s without a source shows as a gap in time, not a pile-up (largest step ${gap} s)`);
      await publisher.stop();
      await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id });
    } finally {
      sub.dispose();
      await client.dispose();
      await rx.close();
    }
  });

  it('gives up after maxReconnectAttempts and ends in ERROR', async () => {
    const publisher = startPublisher(file, t.app.origin.publishUrl('upstream2'), { loop: true });
    await t.app.origin.waitForPublish('upstream2', 10_000);
    // Each attempt waits connectTimeoutMs for a source that never comes: 2 s, not the default 10.
    const id = await create('limited', 'upstream2', { maxReconnectAttempts: 2, connectTimeoutMs: 2000 });
    assert.equal((await gqlOk<{ startVirtualLive: { status: string } }>(t.url, `mutation($id: ID!) { startVirtualLive(id: $id) { status } }`, { id })).startVirtualLive.status, 'LIVING');
    await publisher.stop();
    const last = await pollUntil(
      async () =>
        (await gqlOk<{ virtualLive: { status: string; errorString: string | null; desiredState: string } }>(t.url, `query($id: ID!) { virtualLive(id: $id) { status errorString desiredState } }`, { id }))
          .virtualLive,
      (v) => v.status === 'ERROR',
      40_000,
      'ERROR',
    );
    assert.equal(last.status, 'ERROR');
    assert.match(last.errorString ?? '', /^gave up after 2 reconnect attempts: /);
    assert.equal(last.desiredState, 'STOPPED');
    const w = await gqlOk<{ workers: { pipelines: number }[] }>(t.url, `{ workers { pipelines } }`);
    assert.equal(w.workers.reduce((n, x) => n + x.pipelines, 0), 0, 'nothing keeps running');
  });
});
