/**
 * Playout control end to end (issue #21 items 1 and 2): a looping playlist of
 * three files, skipped and jumped through GraphQL while an independent
 * receiver (ffprobe playing the origin, with arrival times and payload
 * hashes) watches. Items are recognised by their audio packets' content
 * (each file has its own tone), not by anything the service says.
 *
 * The receiver must see: the items in the order the mutations asked for,
 * each switch within a bound of its mutation (the times are printed for the
 * README), one publisher connection at the origin from start to end, DTS
 * strictly increasing per track, and no DTS step over two frames (VOD has
 * no keyframe to wait for: the cut ends the item at its next clean cut and
 * the next item opens on its own keyframe). The API and the subscription
 * must say what is on air at every boundary, the metric its index; bad
 * input is refused with its code and changes nothing.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { probeTracks } from '../bench/loop-check.js';
import { publisherAtOrigin, startTestApp, type TestApp } from './helpers/app.js';
import { collect, gqlErrorCode, gqlOk, wsClient } from './helpers/gql.js';
import { makeMp4 } from './helpers/media.js';
import { nonIncreasing, RtmpReceiver, type ReceivedPacket } from './helpers/rtmp-receiver.js';
import { pollUntil } from './helpers/service.js';

const names = ['a', 'b', 'c'] as const;
type Name = (typeof names)[number];

interface NowPlayingView {
  index: number;
  item: { id: string; name: string };
  startedAt: string;
  endsAt: string;
  positionSeconds: number;
  loop: number;
}

interface Channel {
  status: string;
  nowPlaying: NowPlayingView | null;
  upNext: { index: number; item: { name: string } } | null;
}

interface Switch {
  switchAt: string;
  index: number;
  item: { name: string };
  virtualLive: { status: string };
}

const channelQuery = `query($id: ID!) { virtualLive(id: $id) { status nowPlaying { index item { id name } startedAt endsAt positionSeconds loop } upNext { index item { name } } } }`;
const switchFields = `{ switchAt index item { name } virtualLive { status } }`;

/** Video 25 fps, AAC 1024 samples at 48 kHz. */
const frameMs = { video: 40, audio: 1024 / 48 };

describe('playout control: now playing, skip and jump', () => {
  let t: TestApp;
  const vod: Record<string, string> = {};
  /** Each file's audio packet hashes: a received packet is the file's whose set holds it. */
  const hashes = new Map<string, Name>();

  before(async () => {
    t = await startTestApp();
    const dir = join(t.mediaRoot, 'po');
    await mkdir(dir, { recursive: true });
    const tones: Record<Name, number> = { a: 440, b: 660, c: 990 };
    for (const name of names) {
      const path = await makeMp4(dir, { name, seconds: 4, fps: 25, toneHz: tones[name] });
      for (const p of (await probeTracks(path)).audio) hashes.set(p.hash, name);
      const d = await gqlOk<{ registerVodResource: { id: string } }>(t.url, `mutation($i: RegisterVodResourceInput!) { registerVodResource(input: $i) { id } }`, {
        i: { name, path: `po/${name}.mp4` },
      });
      vod[name] = d.registerVodResource.id;
    }
  });

  after(async () => {
    await t?.dispose();
  });

  /** The file each received audio packet came from, in arrival order (unknown packets left out). */
  function labelled(packets: readonly ReceivedPacket[]): { name: Name; p: ReceivedPacket }[] {
    return packets.flatMap((p) => {
      const name = p.kind === 'audio' && p.hash !== null ? hashes.get(p.hash) : undefined;
      return name === undefined ? [] : [{ name, p }];
    });
  }

  it('refuses bad input with codes and changes nothing', async () => {
    const online = await gqlOk<{ createVirtualLive: { id: string } }>(t.url, `mutation { createVirtualLive(input: { name: "relay", sourceType: ONLINE, sourceUrl: "rtmp://127.0.0.1:1/live/x" }) { id } }`);
    const stopped = await gqlOk<{ createVirtualLive: { id: string } }>(t.url, `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`, {
      i: { name: 'stopped', sourceType: 'VOD', playlist: [vod['a'], vod['b']] },
    });
    const skip = `mutation($id: ID!) { skipVirtualLive(id: $id) ${switchFields} }`;
    const jump = `mutation($id: ID!, $index: Int!) { jumpVirtualLive(id: $id, index: $index) ${switchFields} }`;
    assert.equal(await gqlErrorCode(t.url, skip, { id: 'cmnosuchchannel000000000' }), 'NOT_FOUND');
    assert.equal(await gqlErrorCode(t.url, skip, { id: online.createVirtualLive.id }), 'WRONG_SOURCE_TYPE');
    assert.equal(await gqlErrorCode(t.url, jump, { id: online.createVirtualLive.id, index: 0 }), 'WRONG_SOURCE_TYPE');
    assert.equal(await gqlErrorCode(t.url, skip, { id: stopped.createVirtualLive.id }), 'INVALID_STATE');
    assert.equal(await gqlErrorCode(t.url, jump, { id: stopped.createVirtualLive.id, index: 2 }), 'BAD_USER_INPUT');
    const after = await gqlOk<{ virtualLive: Channel }>(t.url, channelQuery, { id: stopped.createVirtualLive.id });
    assert.deepEqual(after.virtualLive, { status: 'STOPPED', nowPlaying: null, upNext: null });

    // The last item of a list that does not loop: nothing follows it, so no skip.
    const once = await gqlOk<{ createVirtualLive: { id: string } }>(t.url, `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`, {
      i: { name: 'once', sourceType: 'VOD', playlist: [vod['c']], loop: false, hls: false },
    });
    const onceId = once.createVirtualLive.id;
    await gqlOk(t.url, `mutation($id: ID!) { startVirtualLive(id: $id) { status } }`, { id: onceId });
    const playing = await pollUntil(
      async () => (await gqlOk<{ virtualLive: Channel }>(t.url, channelQuery, { id: onceId })).virtualLive,
      (v) => v.nowPlaying !== null,
      5000,
      'nowPlaying of the channel that does not loop',
    );
    assert.equal(playing.upNext, null, 'nothing follows the last item of a list that does not loop');
    assert.equal(await gqlErrorCode(t.url, skip, { id: onceId }), 'INVALID_STATE');
    const unchanged = (await gqlOk<{ virtualLive: Channel }>(t.url, channelQuery, { id: onceId })).virtualLive;
    assert.equal(unchanged.nowPlaying?.startedAt, playing.nowPlaying?.startedAt, 'the refused skip changed nothing');
    await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id: onceId });
  });

  it('skips and jumps at the next clean cut in one publish session, and reports every item on air', async () => {
    const created = await gqlOk<{ createVirtualLive: { id: string } }>(t.url, `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`, {
      i: { name: 'playout', sourceType: 'VOD', playlist: names.map((n) => vod[n]), hls: false },
    });
    const id = created.createVirtualLive.id;
    const ws = wsClient(t.url);
    const events = collect<{ virtualLiveStatusChanged: { status: string; previous: string | null; nowPlaying: { index: number; item: { name: string }; startedAt: string } | null; upNext: { index: number } | null } }>(
      ws,
      `subscription($id: ID) { virtualLiveStatusChanged(id: $id) { status previous nowPlaying { index item { name } startedAt } upNext { index } } }`,
      { id },
    );
    const receivers: RtmpReceiver[] = [];
    try {
      const started = await gqlOk<{ startVirtualLive: { status: string; playUrls: { rtmp: string } } }>(t.url, `mutation($id: ID!) { startVirtualLive(id: $id) { status playUrls { rtmp } } }`, { id });
      assert.equal(started.startVirtualLive.status, 'LIVING');
      const rx = RtmpReceiver.play(started.startVirtualLive.playUrls.rtmp, { hashes: true });
      receivers.push(rx);
      const session = await publisherAtOrigin(t, id, false);
      assert.notEqual(session, null, 'publishing at the origin');

      // Now playing: the first item, and what follows it.
      const first = await pollUntil(
        async () => (await gqlOk<{ virtualLive: Channel }>(t.url, channelQuery, { id })).virtualLive,
        (v) => v.nowPlaying !== null,
        5000,
        'nowPlaying',
      );
      assert.equal(first.nowPlaying?.index, 0);
      assert.equal(first.nowPlaying?.item.name, 'a');
      assert.equal(first.nowPlaying?.loop, 0);
      assert.equal(first.upNext?.index, 1);
      assert.equal(first.upNext?.item.name, 'b');
      const length = Date.parse(first.nowPlaying?.endsAt ?? '') - Date.parse(first.nowPlaying?.startedAt ?? '');
      assert.ok(Math.abs(length - 4000) <= 100, `item a lasts ${length} ms`);

      /** Waits until the receiver has had `n` audio packets of `name` after packet index `from`. */
      const heard = (name: Name, n: number, from = 0): Promise<void> =>
        rx.until((r) => labelled(r.packets.slice(from)).filter((x) => x.name === name).length >= n, 10_000, `${n} packets of ${name}`);
      await heard('a', 40); // about 0.9 s of a, with the receiver settled

      // Each command: its time, what it answered, and where the receiver was.
      const commands: { what: string; expect: Name; sentAt: number; answer: Switch; from: number }[] = [];
      const send = async (what: string, query: string, vars: Record<string, unknown>, expect: Name, key: 'skipVirtualLive' | 'jumpVirtualLive'): Promise<void> => {
        const from = rx.packets.length;
        const sentAt = Date.now();
        const d = await gqlOk<Record<typeof key, Switch>>(t.url, query, vars);
        const answer = d[key];
        commands.push({ what, expect, sentAt, answer, from });
        assert.equal(answer.item.name, expect, `${what} goes to ${expect}`);
        assert.equal(answer.virtualLive.status, 'LIVING');
        await heard(expect, 40, from);
      };
      await send('skip', `mutation($id: ID!) { skipVirtualLive(id: $id) ${switchFields} }`, { id }, 'b', 'skipVirtualLive');
      await send('jump to 2', `mutation($id: ID!) { jumpVirtualLive(id: $id, index: 2) ${switchFields} }`, { id }, 'c', 'jumpVirtualLive');

      // Out of range while running: refused, and nothing changes (no boundary, same item on air).
      const eventsBefore = events.events.length;
      const onAir = (await gqlOk<{ virtualLive: Channel }>(t.url, channelQuery, { id })).virtualLive.nowPlaying;
      assert.equal(await gqlErrorCode(t.url, `mutation($id: ID!) { jumpVirtualLive(id: $id, index: 3) { index } }`, { id }), 'BAD_USER_INPUT');
      assert.equal(await gqlErrorCode(t.url, `mutation($id: ID!) { jumpVirtualLive(id: $id, index: -1) { index } }`, { id }), 'BAD_USER_INPUT');
      const still = (await gqlOk<{ virtualLive: Channel }>(t.url, channelQuery, { id })).virtualLive;
      assert.equal(still.nowPlaying?.index, onAir?.index);
      assert.equal(still.nowPlaying?.startedAt, onAir?.startedAt);
      assert.equal(still.upNext?.index, 0, 'after c, the list wraps round to a');
      assert.equal(events.events.length, eventsBefore, 'no event from a refused command');

      await send('jump back to 0', `mutation($id: ID!) { jumpVirtualLive(id: $id, index: 0) ${switchFields} }`, { id }, 'a', 'jumpVirtualLive');
      // Let a play out: the natural boundary to b follows the jump's new timeline.
      const natural = rx.packets.length;
      await heard('b', 20, natural);
      assert.equal(await publisherAtOrigin(t, id, false), session, 'one publisher connection at the origin from start to end');

      // The metric gives the index on air.
      const metrics = await (await fetch(t.url.replace('/graphql', '/metrics'))).text();
      assert.match(metrics, new RegExp(`^vlive_channel_playout_item_index\\{channel="${id}"\\} 1$`, 'm'));

      // A playlist edit: the item on air (b) plays on; what follows it is news at once.
      const edited = await gqlOk<{ updateVirtualLive: Channel }>(
        t.url,
        `mutation($id: ID!, $i: UpdateVirtualLiveInput!) { updateVirtualLive(id: $id, input: $i) { status nowPlaying { index item { id name } startedAt endsAt positionSeconds loop } upNext { index item { name } } } }`,
        { id, i: { playlist: [vod['c'], vod['b'], vod['a']] } },
      );
      const onAirB = edited.updateVirtualLive.nowPlaying;
      assert.equal(onAirB?.item.name, 'b');
      const relisted = await pollUntil(
        async () => (await gqlOk<{ virtualLive: Channel }>(t.url, channelQuery, { id })).virtualLive,
        (v) => v.upNext?.item.name === 'a',
        3000,
        'upNext after the edit',
      );
      assert.deepEqual([relisted.nowPlaying?.index, relisted.nowPlaying?.item.name, relisted.nowPlaying?.startedAt], [1, 'b', onAirB?.startedAt], 'b keeps its place (index 1 of the new list)');
      assert.equal(relisted.upNext?.index, 2);

      await rx.close();
      // The receiver's verdict. Items in the order asked, each switch after its command.
      const seen = labelled(rx.packets);
      const order = seen.map((x) => x.name).filter((n, i, all) => i === 0 || all[i - 1] !== n);
      assert.deepEqual(order, ['a', 'b', 'c', 'a', 'b'], 'items in the order the commands asked for');
      const figures: string[] = [];
      for (const c of commands) {
        const firstNew = seen.find((x, i) => i > 0 && x.name === c.expect && seen[i - 1]?.name !== c.expect && x.p.wallMs >= c.sentAt - 50);
        assert.ok(firstNew !== undefined, `${c.what}: the receiver saw ${c.expect}`);
        const atReceiver = firstNew.p.wallMs - c.sentAt;
        const answered = Date.parse(c.answer.switchAt) - c.sentAt;
        figures.push(`${c.what}: switchAt ${answered} ms after the mutation, first packet at the receiver ${atReceiver} ms after it`);
        // A pace period and a mini-GOP, the origin's relay and ffprobe's read: well under a second.
        assert.ok(answered >= 0 && answered <= 500, `${c.what}: switchAt ${answered} ms after the mutation`);
        assert.ok(atReceiver <= 1000, `${c.what}: the receiver saw the switch ${atReceiver} ms after the mutation`);
      }
      console.log(`playout switch times (mutation → switch):\n  ${figures.join('\n  ')}`);

      for (const kind of ['video', 'audio'] as const) {
        const dts = rx.dts(kind).map((s) => s * 1000);
        assert.ok(dts.length > 100, `${kind}: ${dts.length} packets`);
        assert.deepEqual(nonIncreasing(dts), [], `${kind}: DTS strictly increasing`);
        let largest = 0;
        for (let i = 1; i < dts.length; i++) largest = Math.max(largest, (dts[i] ?? 0) - (dts[i - 1] ?? 0));
        // No keyframe wait for VOD: at most two frames (and FLV's millisecond rounding).
        assert.ok(largest <= 2 * frameMs[kind] + 1, `${kind}: a DTS step of ${largest} ms`);
      }

      // The subscription saw every boundary, in order, each as a detail event.
      await events.until((e) => new Set(e.map((x) => x.virtualLiveStatusChanged.nowPlaying?.startedAt ?? null)).size >= 6);
      // A new item is a new startedAt (other events repeat the item on air: a new upNext
      // after a command, viewers). The first may ride on the STARTING → LIVING event.
      const boundaries = events.events
        .map((e) => e.virtualLiveStatusChanged)
        .filter((e, i, all) => e.nowPlaying !== null && all.slice(0, i).every((o) => o.nowPlaying?.startedAt !== e.nowPlaying?.startedAt));
      assert.ok(boundaries.slice(1).every((e) => e.status === 'LIVING' && e.previous === 'LIVING'), 'each later boundary is a detail event');
      assert.deepEqual(
        boundaries.map((e) => `${e.nowPlaying?.index}:${e.nowPlaying?.item.name}`).slice(0, 5),
        ['0:a', '1:b', '2:c', '0:a', '1:b'],
        'an event at each item boundary',
      );
      assert.equal(boundaries[1]?.nowPlaying?.startedAt, commands[0]?.answer.switchAt, 'the skip switched when its answer said');
      assert.deepEqual(events.errors, []);

      await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id });
      const stoppedView = (await gqlOk<{ virtualLive: Channel }>(t.url, channelQuery, { id })).virtualLive;
      assert.deepEqual(stoppedView, { status: 'STOPPED', nowPlaying: null, upNext: null });
      assert.doesNotMatch(await (await fetch(t.url.replace('/graphql', '/metrics'))).text(), new RegExp(`vlive_channel_playout_item_index\\{channel="${id}"`), 'a stopped channel loses its series');
    } finally {
      for (const r of receivers) await r.close();
      events.dispose();
      await ws.dispose();
    }
  });
});
