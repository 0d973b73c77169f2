/**
 * Live cut-in and return end to end (issue #21 item 4): a looping VOD
 * channel with a slate, a live source published into the test origin by
 * ffmpeg, and an independent receiver (ffprobe playing the origin, with
 * arrival times and payload hashes). Every packet is told apart by content:
 * the playlist's, the live source's and the slate's files are probed first,
 * and each received packet is looked up by its hash.
 *
 * The receiver must see, across a cut-in, the source dropped (the slate
 * fills), the source back, a return RESUME, a second cut-in and a return
 * WALLCLOCK: the sources in that order; one publisher connection at the
 * origin from start to end; DTS strictly increasing per track; no DTS step
 * over two frames (the playlist plays until the source's keyframe, so that
 * wait leaves no hole); the playlist's A/V offset unchanged after each
 * return; RESUME where the playlist was left and WALLCLOCK where it would
 * have been, each from the keyframe at or before. The times from each
 * mutation to the switch at the receiver are printed for the README.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { publisherAtOrigin, startReceived, startTestApp, type TestApp } from './helpers/app.js';
import { collect, gqlErrorCode, gqlOk, wsClient } from './helpers/gql.js';
import { makeMp4, startPublisher, type Publisher } from './helpers/media.js';
import { freePort } from './helpers/ports.js';
import { avOffset, ContentIndex, runsOf, type Known as KnownOf } from './helpers/known-packets.js';
import { nonIncreasing, RtmpReceiver, type ReceivedPacket } from './helpers/rtmp-receiver.js';
import { pollUntil } from './helpers/service.js';

type Name = 'playlist' | 'live' | 'slate';

interface CutInView {
  url: string;
  startedAt: string;
  source: 'ON_AIR' | 'SLATE' | 'WAITING';
}

type Known = KnownOf<Name>;

/** Every file is 25 fps video with AAC at 48 kHz. */
const frameMs = 40;
const audioFrameMs = 1024 / 48;
/** The playlist's GOP: makeMp4 rounds 25 fps × 0.5 s to 13 frames. */
const playlistGopMs = 13 * frameMs;
/**
 * How far before a point the playlist may come back: the keyframe presented at or before it is at
 * most a GOP earlier, and the receiver compares decode times, which libx264's B-frames put two
 * frames before presentation.
 */
const backAtMostMs = playlistGopMs + 2 * frameMs;
const take = `mutation($id: ID!, $url: String!) { takeLive(id: $id, url: $url) { url startedAt source } }`;
const back = `mutation($id: ID!, $mode: ReturnMode!) { returnToPlaylist(id: $id, mode: $mode) { switchAt index item { name } virtualLive { status } } }`;
const cutInQuery = `query($id: ID!) { virtualLive(id: $id) { status cutIn { url startedAt source } nowPlaying { index } } }`;


describe('live cut-in and return', () => {
  let t: TestApp;
  const files: Record<Name | 'audioOnly', string> = { playlist: '', live: '', slate: '', audioOnly: '' };
  const ids: Record<'playlist' | 'slate', string> = { playlist: '', slate: '' };
  /** Every packet of the files, by payload hash. */
  const index = new ContentIndex<Name>();
  /** The playlist file's length, ms: one loop. */
  let periodMs = 0;
  /** A webhook receiver on loopback: the events posted to it. */
  const posted: { event: string; data: Record<string, unknown> }[] = [];
  let hooks: Server | null = null;

  before(async () => {
    t = await startTestApp({ VLIVE_WEBHOOK_ALLOW_PRIVATE: 'on' });
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        posted.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { event: string; data: Record<string, unknown> });
        res.writeHead(204).end();
      });
    });
    hooks = server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    await gqlOk(t.url, 'mutation($i: AddWebhookInput!) { addWebhook(input: $i) { id } }', {
      i: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, events: ['CUT_IN_STARTED', 'CUT_IN_ENDED'], secret: 'cut-in-webhook-secret' },
    });
    const dir = join(t.mediaRoot, 'ci');
    await mkdir(dir, { recursive: true });
    [files.playlist, files.live, files.slate, files.audioOnly] = await Promise.all([
      // The same test pattern in each: other GOPs make their video frames differ, other tones their audio.
      makeMp4(dir, { name: 'playlist', seconds: 4, toneHz: 440, gopSeconds: 0.5 }),
      makeMp4(dir, { name: 'live', seconds: 4, toneHz: 990, gopSeconds: 1 }),
      makeMp4(dir, { name: 'slate', seconds: 2, toneHz: 660, gopSeconds: 2 }),
      makeMp4(dir, { name: 'audio-only', seconds: 2, video: false, toneHz: 550 }),
    ]);
    for (const name of ['playlist', 'live', 'slate'] as const) {
      const lastVideoMs = await index.add(name, files[name]);
      if (name === 'playlist') periodMs = lastVideoMs + frameMs;
    }
    for (const name of ['playlist', 'slate'] as const) {
      const d = await gqlOk<{ registerVodResource: { id: string } }>(t.url, `mutation($i: RegisterVodResourceInput!) { registerVodResource(input: $i) { id } }`, {
        i: { name, path: `ci/${name}.mp4` },
      });
      ids[name] = d.registerVodResource.id;
    }
  });

  after(async () => {
    await t?.dispose();
    hooks?.closeAllConnections();
    await new Promise((r) => hooks?.close(r) ?? r(undefined));
  });

  const known = (packets: readonly ReceivedPacket[]): Known[] => index.known(packets);

  const create = async (i: Record<string, unknown>): Promise<string> =>
    (await gqlOk<{ createVirtualLive: { id: string } }>(t.url, `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`, { i })).createVirtualLive.id;

  it('refuses bad input with codes and starts nothing', async () => {
    const online = await create({ name: 'relay', sourceType: 'ONLINE', sourceUrl: 'rtmp://127.0.0.1:1/live/x' });
    const stopped = await create({ name: 'stopped', sourceType: 'VOD', playlist: [ids.playlist] });
    const url = t.app.origin.publishUrl('nobody');
    assert.equal(await gqlErrorCode(t.url, take, { id: 'cmnosuchchannel000000000', url }), 'NOT_FOUND');
    assert.equal(await gqlErrorCode(t.url, take, { id: online, url }), 'WRONG_SOURCE_TYPE');
    assert.equal(await gqlErrorCode(t.url, back, { id: online, mode: 'RESUME' }), 'WRONG_SOURCE_TYPE');
    assert.equal(await gqlErrorCode(t.url, take, { id: stopped, url: 'file:///etc/passwd' }), 'URL_NOT_ALLOWED');
    assert.equal(await gqlErrorCode(t.url, take, { id: stopped, url }), 'INVALID_STATE');
    assert.equal(await gqlErrorCode(t.url, back, { id: stopped, mode: 'WALLCLOCK' }), 'INVALID_STATE');
    const view = (await gqlOk<{ virtualLive: { status: string; cutIn: unknown } }>(t.url, cutInQuery, { id: stopped })).virtualLive;
    assert.deepEqual([view.status, view.cutIn], ['STOPPED', null]);
    const workers = (await gqlOk<{ workers: { pipelines: number }[] }>(t.url, `{ workers { pipelines } }`)).workers;
    assert.equal(workers.reduce((n, w) => n + w.pipelines, 0), 0, 'nothing started');
  });

  it('cuts in a live source at its keyframe, fills with the slate while it is away, and returns by RESUME and WALLCLOCK in one session', async () => {
    const id = await create({ name: 'cut-in', sourceType: 'VOD', playlist: [ids.playlist], loop: true, hls: false, slateVodResourceId: ids.slate });
    const ws = wsClient(t.url);
    const events = collect<{ virtualLiveStatusChanged: { status: string; previous: string | null; cutIn: CutInView | null } }>(
      ws,
      `subscription($id: ID) { virtualLiveStatusChanged(id: $id) { status previous cutIn { url startedAt source } } }`,
      { id },
    );
    const publishers: Publisher[] = [];
    const publish = async (file: string, stream: string): Promise<Publisher> => {
      const p = startPublisher(file, t.app.origin.publishUrl(stream), { loop: true });
      publishers.push(p);
      await t.app.origin.waitForPublish(stream, 10_000);
      return p;
    };
    let rx: RtmpReceiver | null = null;
    try {
      const { receiver, session } = await startReceived(t, id);
      rx = receiver;
      const audioOnly = publish(files.audioOnly, 'audio-only');
      const upstream = publish(files.live, 'upstream');

      /** Waits for `n` packets of `name` received after packet index `from`. */
      const heard = (name: Name, n: number, from: number): Promise<void> =>
        receiver.until((r) => known(r.packets.slice(from)).filter((k) => k.name === name).length >= n, 10_000, `${n} packets of ${name}`);
      await heard('playlist', 15, 0);

      // Refused on the running channel, the playlist playing on: no cut-in to return from, a
      // source nobody serves, and one with audio only where the playlist has audio and video.
      assert.equal(await gqlErrorCode(t.url, back, { id, mode: 'RESUME' }), 'INVALID_STATE');
      assert.equal(await gqlErrorCode(t.url, take, { id, url: `rtmp://127.0.0.1:${await freePort()}/live/x` }), 'SOURCE_UNREACHABLE');
      await audioOnly;
      assert.equal(await gqlErrorCode(t.url, take, { id, url: t.app.origin.publishUrl('audio-only') }), 'INCOMPATIBLE_MEDIA');
      assert.equal((await gqlOk<{ virtualLive: { cutIn: unknown } }>(t.url, cutInQuery, { id })).virtualLive.cutIn, null, 'nothing changed');
      await publishers.find((p) => p.process.spawnargs.some((a) => a.includes('audio-only')))?.stop();
      const refusedUntil = receiver.packets.length;
      await heard('playlist', 15, refusedUntil);

      let live = await upstream;
      const liveUrl = t.app.origin.publishUrl('upstream');
      // Each command: when it was sent, what should follow it, and where the receiver was.
      const commands: { what: string; expect: Name; sentAt: number; from: number; answeredMs: number }[] = [];
      const command = async <T>(what: string, expect: Name, query: string, vars: Record<string, unknown>): Promise<T> => {
        const from = receiver.packets.length;
        const sentAt = Date.now();
        const d = await gqlOk<T>(t.url, query, vars);
        commands.push({ what, expect, sentAt, from, answeredMs: Date.now() - sentAt });
        await heard(expect, 15, from);
        return d;
      };

      const first = (await command<{ takeLive: CutInView }>('takeLive', 'live', take, { id, url: liveUrl })).takeLive;
      assert.equal(first.source, 'ON_AIR');
      assert.doesNotMatch(first.url, /upstream/, 'the stream key is masked');
      const onAir = (await gqlOk<{ virtualLive: { cutIn: CutInView | null } }>(t.url, cutInQuery, { id })).virtualLive.cutIn;
      assert.deepEqual(onAir, first);
      assert.equal(await gqlErrorCode(t.url, `mutation($id: ID!) { skipVirtualLive(id: $id) { index } }`, { id }), 'INVALID_STATE', 'no skip during a cut-in');

      // The source goes away: the slate fills; it comes back: the source again.
      await live.stop();
      const dropped = receiver.packets.length;
      await pollUntil(async () => (await gqlOk<{ virtualLive: { cutIn: CutInView | null } }>(t.url, cutInQuery, { id })).virtualLive.cutIn?.source, (s) => s === 'SLATE', 5000, 'cutIn.source SLATE');
      await heard('slate', 15, dropped);
      const comeback = receiver.packets.length;
      live = await publish(files.live, 'upstream');
      await heard('live', 15, comeback);
      await pollUntil(async () => (await gqlOk<{ virtualLive: { cutIn: CutInView | null } }>(t.url, cutInQuery, { id })).virtualLive.cutIn?.source, (s) => s === 'ON_AIR', 5000, 'cutIn.source ON_AIR');

      const resumed = (await command<{ returnToPlaylist: { switchAt: string; index: number; item: { name: string } } }>('return RESUME', 'playlist', back, { id, mode: 'RESUME' })).returnToPlaylist;
      assert.deepEqual([resumed.index, resumed.item.name], [0, 'playlist']);
      assert.equal((await gqlOk<{ virtualLive: { cutIn: unknown } }>(t.url, cutInQuery, { id })).virtualLive.cutIn, null);
      await command('takeLive again', 'live', take, { id, url: liveUrl });
      await new Promise((r) => setTimeout(r, 300));
      await command('return WALLCLOCK', 'playlist', back, { id, mode: 'WALLCLOCK' });
      assert.equal(await publisherAtOrigin(t, id, false), session, 'one publisher connection at the origin from start to end');
      await receiver.close();

      // The receiver's verdict.
      const seen = known(receiver.packets);
      const runs = runsOf(seen);
      assert.deepEqual(
        runs.map((r) => r[0]?.name),
        ['playlist', 'live', 'slate', 'live', 'playlist', 'live', 'playlist'],
        'the sources in the order the commands and the drop asked for',
      );
      /** The source of a packet, or of the last one known before it. */
      const nameOf = (p: ReceivedPacket): string => index.nameAt(receiver.packets, receiver.packets.indexOf(p));
      for (const kind of ['video', 'audio'] as const) {
        const packets = receiver.packets.filter((p) => p.kind === kind && p.dts !== null);
        const dts = packets.map((p) => (p.dts ?? 0) * 1000);
        assert.ok(dts.length > 100, `${kind}: ${dts.length} packets`);
        assert.deepEqual(nonIncreasing(dts), [], `${kind}: DTS strictly increasing`);
        // Steps over two frames, with the sources on either side (for the message). The slate's
        // audio is the exception README states: a file with B-frames starts its audio its reorder
        // delay (two frames here) after its first video frame's DTS, and the slate starts at its
        // beginning, so its audio may come that much and up to two audio frames after the source's.
        const wide: string[] = [];
        let largest = 0;
        for (let i = 1; i < dts.length; i++) {
          const step = (dts[i] ?? 0) - (dts[i - 1] ?? 0);
          largest = Math.max(largest, step);
          const toSlate = kind === 'audio' && nameOf(packets[i]!) === 'slate' && nameOf(packets[i - 1]!) !== 'slate';
          const limit = toSlate ? 2 * frameMs + 2 * audioFrameMs : 2 * frameMs + 1;
          if (step > limit) wide.push(`${step.toFixed(0)} ms ${nameOf(packets[i - 1]!)}→${nameOf(packets[i]!)}`);
        }
        console.log(`cut-in: largest ${kind} DTS step ${largest.toFixed(0)} ms`);
        // Two frames (and FLV's millisecond rounding): the playlist plays on until the source's keyframe.
        assert.deepEqual(wide, [], `${kind}: DTS steps over two frames`);
      }

      // A/V offset of the playlist: output DTS less file DTS, audio against video, per run of it.
      const offset = (run: readonly Known[]): number => avOffset(run);
      const playlistRuns = runs.filter((r) => r[0]?.name === 'playlist');
      const offsets = playlistRuns.map(offset);
      console.log(`cut-in: playlist A/V offset per run ${offsets.map((o) => o.toFixed(1)).join(', ')} ms`);
      for (const o of offsets.slice(1)) assert.ok(Math.abs(o - (offsets[0] ?? NaN)) <= 2, `A/V offset ${o} ms after a return, ${offsets[0]} ms before`);

      // RESUME comes back where the playlist was left, WALLCLOCK where it would be: each at the keyframe at or before that point.
      const lastVideo = (run: readonly Known[] | undefined): Known | undefined => run?.filter((k) => k.p.kind === 'video').at(-1);
      const firstVideo = (run: readonly Known[] | undefined): Known | undefined => run?.find((k) => k.p.kind === 'video');
      const wrap = (ms: number): number => ((ms % periodMs) + periodMs) % periodMs;
      const left = lastVideo(playlistRuns[0]);
      const cameBack = firstVideo(playlistRuns[1]);
      assert.ok(left !== undefined && cameBack !== undefined);
      const resumeBehind = wrap(left.fileMs - cameBack.fileMs);
      assert.ok(resumeBehind <= backAtMostMs, `RESUME starts ${resumeBehind} ms before where the playlist was left (a GOP at most)`);
      const left2 = lastVideo(playlistRuns[1]);
      const cameBack2 = firstVideo(playlistRuns[2]);
      assert.ok(left2 !== undefined && cameBack2 !== undefined);
      const wouldBe = wrap(left2.fileMs + ((cameBack2.p.dts ?? 0) - (left2.p.dts ?? 0)) * 1000);
      const wallBehind = wrap(wouldBe - cameBack2.fileMs);
      console.log(`cut-in: RESUME ${resumeBehind.toFixed(0)} ms before the point left, WALLCLOCK ${wallBehind.toFixed(0)} ms before the point it would have reached`);
      assert.ok(wallBehind <= backAtMostMs, `WALLCLOCK starts ${wallBehind} ms before where the playlist would be (a GOP at most)`);

      // Mutation → first packet of the new source at the receiver.
      const figures = commands.map((c) => {
        const firstNew = known(receiver.packets.slice(c.from)).find((k) => k.name === c.expect);
        assert.ok(firstNew !== undefined, `${c.what}: the receiver saw ${c.expect}`);
        return `${c.what}: answered after ${c.answeredMs} ms, first packet at the receiver ${firstNew.p.wallMs - c.sentAt} ms after the mutation`;
      });
      console.log(`cut-in switch times:\n  ${figures.join('\n  ')}`);

      // The subscription: a detail event at each change of the cut-in.
      const cutIns = events.events.map((e) => e.virtualLiveStatusChanged).filter((e) => e.status === 'LIVING' && e.previous === 'LIVING');
      const sources = cutIns.map((e) => e.cutIn?.source ?? null).filter((s, i, all) => i === 0 || s !== all[i - 1]);
      assert.deepEqual(sources.slice(sources.indexOf('ON_AIR')), ['ON_AIR', 'SLATE', 'ON_AIR', null, 'ON_AIR', null], 'an event at each change of the cut-in');
      assert.deepEqual(events.errors, []);
      // And the webhooks: a start and an end per cut-in, no more.
      const webhooks = await pollUntil(async () => posted.map((p) => p.event), (e) => e.length >= 4, 5000, 'four cut-in webhooks');
      // Posted one by one, each in its own request: their order on the wire is not promised.
      assert.deepEqual([...webhooks].sort(), ['CUT_IN_ENDED', 'CUT_IN_ENDED', 'CUT_IN_STARTED', 'CUT_IN_STARTED']);
      assert.ok(posted.every((p) => p.data['channelId'] === id));
      assert.ok(posted.filter((p) => p.event === 'CUT_IN_STARTED').every((p) => p.data['url'] === first.url), 'the masked URL');
      await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id });
    } finally {
      await rx?.close();
      for (const p of publishers) await p.stop();
      events.dispose();
      await ws.dispose();
    }
  });
});
