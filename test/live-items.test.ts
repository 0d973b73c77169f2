/**
 * Live items in a playlist end to end (issue #21 items 3 and 6): a looping
 * list [A, live 1, B, live 2, A] of 2 s VOD files and 2 s live items, both
 * live items published into the test origin by ffmpeg -re; the second
 * publisher is stopped once its item is on air (the slate fills the rest).
 * An independent receiver (ffprobe playing the origin, packets told apart
 * by payload hash) must see: the sources in that order; one publisher
 * connection at the origin from start to end; DTS strictly increasing per
 * track; no step over two frames except at a live item's start, where the
 * keyframe wait (one GOP of the source) is allowed on top; each VOD run with
 * the A/V offset of the first. The times from each planned switch (endsAt in
 * the API) to the first packet of the new source at the receiver are
 * printed for the README. Beside it, a channel [A, live] whose live item's
 * source nobody publishes: the slate fills its time, the channel's warnings
 * say why while it lasts, with the same receiver checks.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { publisherAtOrigin, registerVod, startReceived, startTestApp, type TestApp } from './helpers/app.js';
import { collect, gql, gqlErrorCode, gqlOk, wsClient } from './helpers/gql.js';
import { avOffset, ContentIndex, runsOf } from './helpers/known-packets.js';
import { makeMp4, startPublisher, type Publisher } from './helpers/media.js';
import { nonIncreasing, RtmpReceiver } from './helpers/rtmp-receiver.js';
import { pollUntil } from './helpers/service.js';

type Name = 'a' | 'b' | 'live' | 'slate';

/** Every file is 25 fps video with AAC at 48 kHz. */
const frameMs = 40;
const audioFrameMs = 1024 / 48;
/** The live source's GOP: 25 fps × 0.4 s, 10 frames. The keyframe wait at a live item's start is at most this. */
const liveGopMs = 10 * frameMs;

const create = `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id items { index name vodResource { id } live { url durationSeconds } } } }`;

interface Playing {
  index: number;
  name: string;
  startedAt: string;
  endsAt: string;
  live: { url: string; durationSeconds: number } | null;
}

describe('live items in a playlist', () => {
  let t: TestApp;
  const index = new ContentIndex<Name>();
  const ids: Record<'a' | 'b' | 'slate', string> = { a: '', b: '', slate: '' };
  let liveFile = '';

  before(async () => {
    t = await startTestApp();
    const dir = join(t.mediaRoot, 'li');
    await mkdir(dir, { recursive: true });
    const made = await Promise.all([
      makeMp4(dir, { name: 'a', seconds: 2, toneHz: 440, gopSeconds: 0.5 }),
      // Other GOPs make the video frames of the same test pattern differ, other tones the audio.
      makeMp4(dir, { name: 'b', seconds: 2, toneHz: 880, gopSeconds: 0.7 }),
      makeMp4(dir, { name: 'live', seconds: 4, toneHz: 990, gopSeconds: 0.4 }),
      makeMp4(dir, { name: 'slate', seconds: 2, toneHz: 660, gopSeconds: 2 }),
    ]);
    liveFile = made[2];
    await Promise.all((['a', 'b', 'live', 'slate'] as const).map((n, i) => index.add(n, made[i] ?? '')));
    for (const name of ['a', 'b', 'slate'] as const) ids[name] = await registerVod(t, name, `li/${name}.mp4`);
  });

  after(async () => {
    await t?.dispose();
  });

  /** Waits until `rx`'s known packets, grouped in runs, have passed `names` in order (the last run 15 packets long). */
  const reached = (rx: RtmpReceiver, names: readonly Name[], timeoutMs: number): Promise<void> =>
    rx.until((r) => {
      const runs = runsOf(index.known(r.packets));
      const got = runs.map((run) => run[0]?.name);
      return got.length >= names.length && names.every((n, i) => got[i] === n) && (got.length > names.length || (runs.at(-1)?.length ?? 0) >= 15);
    }, timeoutMs, names.join(' → '));

  /** DTS strictly increasing per track, and no step over two frames beyond the keyframe wait (see the module comment). */
  const judgeSteps = (receiver: RtmpReceiver, label: string): void => {
    for (const kind of ['video', 'audio'] as const) {
      const at = receiver.packets.map((p, i) => ({ p, i })).filter(({ p }) => p.kind === kind && p.dts !== null);
      const dts = at.map(({ p }) => (p.dts ?? 0) * 1000);
      const back = nonIncreasing(dts).map(([a, b]) => {
        const j = dts.indexOf(b);
        return `${a}→${b} ${index.nameAt(receiver.packets, at[j - 1]?.i ?? 0)}→${index.nameAt(receiver.packets, at[j]?.i ?? 0)}`;
      });
      assert.deepEqual(back, [], `${kind}: DTS strictly increasing`);
      const wide: string[] = [];
      const switches: string[] = [];
      for (let j = 1; j < at.length; j++) {
        const step = (dts[j] ?? 0) - (dts[j - 1] ?? 0);
        const from = index.nameAt(receiver.packets, at[j - 1]?.i ?? 0);
        const to = index.nameAt(receiver.packets, at[j]?.i ?? 0);
        // A live item starts at its source's first keyframe after the item before it ended: a GOP at most.
        const intoLive = to === 'live' && !from.startsWith('live');
        // A file (the slate, or the VOD item after a live one) starts at its beginning, its audio its
        // B-frame reorder delay (two frames) after its video: up to that and two audio frames (see cutin.test.ts).
        const intoFile = kind === 'audio' && to !== 'live' && from.replace('?', '') !== to;
        const limit = (intoLive ? liveGopMs : 0) + 2 * frameMs + (intoFile ? 2 * audioFrameMs : 1);
        if (step > limit) wide.push(`${step.toFixed(0)} ms ${from}→${to} (limit ${limit.toFixed(0)})`);
        if (from !== to && !from.endsWith('?')) switches.push(`${from}→${to} ${step.toFixed(0)}`);
      }
      console.log(`live items (${label}): ${kind} DTS step at each switch, ms: ${switches.join(', ')}`);
      assert.deepEqual(wide, [], `${kind}: no step over two frames beyond the keyframe wait`);
    }
  };

  it('refuses bad items with codes and fields, and stores nothing', async () => {
    const before = (await gqlOk<{ virtualLives: unknown[] }>(t.url, `{ virtualLives { id } }`)).virtualLives.length;
    const live = (sourceUrl: string, durationSeconds?: number) => ({ sourceUrl, ...(durationSeconds !== undefined ? { durationSeconds } : {}) });
    const url = 'rtmp://127.0.0.1:1935/live/x';
    const refused = async (items: unknown[], extra: Record<string, unknown> = {}): Promise<[string, unknown]> => {
      const r = await gql(t.url, create, { i: { name: 'bad', sourceType: 'VOD', items, ...extra } });
      const e = r.errors?.[0]?.extensions;
      return [String(e?.code), e?.['field']];
    };
    const vod = { vodResourceId: ids.a };
    assert.deepEqual(await refused([live(url, 2), vod]), ['BAD_USER_INPUT', 'items'], 'a live item first');
    assert.deepEqual(await refused([vod, live(url, 2), live(url, 2)]), ['BAD_USER_INPUT', 'items'], 'two live items in a row');
    assert.deepEqual(await refused([vod, live(url)]), ['BAD_USER_INPUT', 'items'], 'no duration');
    assert.deepEqual(await refused([vod, live(url, 0.5)]), ['BAD_USER_INPUT', 'items'], 'too short');
    assert.deepEqual(await refused([vod, live(url, 86_401)]), ['BAD_USER_INPUT', 'items'], 'too long');
    assert.deepEqual(await refused([{ vodResourceId: ids.a, durationSeconds: 2 }]), ['BAD_USER_INPUT', 'items'], 'a duration on a VOD item');
    assert.deepEqual(await refused([{ vodResourceId: ids.a, sourceUrl: url, durationSeconds: 2 }]), ['BAD_USER_INPUT', 'items'], 'both');
    assert.deepEqual(await refused([vod, live('file:///etc/passwd', 2)]), ['URL_NOT_ALLOWED', 'items']);
    assert.deepEqual(await refused([vod, live('rtmp://', 2)]), ['URL_NOT_ALLOWED', 'items']);
    assert.deepEqual(await refused([vod, live(url, 2)], { loop: false }), ['BAD_USER_INPUT', 'items'], 'a list that does not loop ends with a live item');
    assert.deepEqual(await refused([vod], { playlist: [ids.a] }), ['BAD_USER_INPUT', 'items'], 'items and playlist');
    assert.equal((await refused([{ vodResourceId: 'cmnosuchvod0000000000000' }]))[0], 'NOT_FOUND');
    const after = (await gqlOk<{ virtualLives: unknown[] }>(t.url, `{ virtualLives { id } }`)).virtualLives.length;
    assert.equal(after, before, 'nothing stored');
  });

  it('plays live items between VOD items in one session: in, out to VOD, and a source lost during its item', async () => {
    const streams = ['item1', 'item2'];
    const publishers: Publisher[] = streams.map((s) => startPublisher(liveFile, t.app.origin.publishUrl(s), { loop: true }));
    const ws = wsClient(t.url);
    let rx: RtmpReceiver | null = null;
    let rx2: RtmpReceiver | null = null;
    try {
      await Promise.all(streams.map((s) => t.app.origin.waitForPublish(s, 10_000)));
      const items = [
        { vodResourceId: ids.a },
        { sourceUrl: t.app.origin.publishUrl('item1'), durationSeconds: 2 },
        { vodResourceId: ids.b },
        { sourceUrl: t.app.origin.publishUrl('item2'), durationSeconds: 2 },
        { vodResourceId: ids.a },
      ];
      const made = (
        await gqlOk<{ createVirtualLive: { id: string; items: { index: number; name: string; vodResource: { id: string } | null; live: { url: string; durationSeconds: number } | null }[] } }>(
          t.url,
          create,
          { i: { name: 'with live items', sourceType: 'VOD', items, loop: true, hls: false, slateVodResourceId: ids.slate } },
        )
      ).createVirtualLive;
      const id = made.id;
      assert.deepEqual(
        made.items.map((i) => [i.index, i.vodResource?.id ?? null, i.live?.durationSeconds ?? null]),
        [[0, ids.a, null], [1, null, 2], [2, ids.b, null], [3, null, 2], [4, ids.a, null]],
      );
      assert.ok(made.items.every((i) => !i.name.includes('item1') && !i.name.includes('item2')), 'live items are named by their masked URL');
      const events = collect<{ virtualLiveStatusChanged: { warnings: string[]; nowPlaying: Playing | null; cuePoint: { kind: string; index: number } | null } }>(
        ws,
        `subscription($id: ID) { virtualLiveStatusChanged(id: $id) { warnings nowPlaying { index name startedAt endsAt live { url durationSeconds } } cuePoint { kind index } } }`,
        { id },
      );
      const { receiver, session } = await startReceived(t, id);
      rx = receiver;
      assert.equal(await gqlErrorCode(t.url, `mutation($id: ID!) { skipVirtualLive(id: $id) { index } }`, { id }), 'INVALID_STATE', 'no skip in a list with live items');
      assert.equal(await gqlErrorCode(t.url, `mutation($id: ID!, $i: UpdateVirtualLiveInput!) { updateVirtualLive(id: $id, input: $i) { id } }`, { id, i: { items: items.slice(0, 3) } }), 'INVALID_STATE');

      // Beside it, a channel whose live item's source nobody publishes: the slate fills its time, with a warning.
      const away = (
        await gqlOk<{ createVirtualLive: { id: string } }>(t.url, create, {
          i: { name: 'source away', sourceType: 'VOD', items: [{ vodResourceId: ids.a }, { sourceUrl: t.app.origin.publishUrl('nobody'), durationSeconds: 1 }], hls: false, slateVodResourceId: ids.slate },
        })
      ).createVirtualLive.id;
      const side = await startReceived(t, away);
      rx2 = side.receiver;
      const warnings = async (): Promise<string[]> => (await gqlOk<{ virtualLive: { warnings: string[] } }>(t.url, `query($id: ID!) { virtualLive(id: $id) { warnings } }`, { id: away })).virtualLive.warnings;
      await reached(side.receiver, ['a', 'slate'], 10_000);
      // The warning lasts while the slate stands in (the item's 1 s) and comes back at every loop: polled, since one
      // read after the receiver saw the slate can come after the item ended on a loaded machine.
      const says = (w: string[]): boolean => w.some((x) => x.startsWith('live item 1: its source could not be played by its time; the slate fills its time'));
      const warned = await pollUntil(warnings, says, 10_000, 'a warning that says why');
      assert.ok(says(warned), `a warning says why: ${JSON.stringify(warned)}`);
      await reached(side.receiver, ['a', 'slate', 'a'], 5_000);
      assert.equal(await publisherAtOrigin(t, away, false), side.session, 'one publisher connection (the channel beside)');
      assert.deepEqual(await warnings(), [], 'the warning is cleared when the item ends');
      await side.receiver.close();
      assert.deepEqual(runsOf(index.known(side.receiver.packets)).slice(0, 3).map((r) => r[0]?.name), ['a', 'slate', 'a'], 'the slate in place of the unreachable source');
      judgeSteps(side.receiver, 'source away');
      // It loops: stopped here, before its live item comes round again.
      await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id: away });

      // The second live item comes on air: its source is then lost, and the slate fills the rest of its time.
      await reached(receiver, ['a', 'live', 'b', 'live'], 15_000);
      await publishers[1]?.stop();
      await reached(receiver, ['a', 'live', 'b', 'live', 'slate', 'a'], 10_000);
      assert.equal(await publisherAtOrigin(t, id, false), session, 'one publisher connection at the origin from start to end');
      await receiver.close();
      events.dispose();


      // The receiver's verdict: the order, then DTS and steps per track.
      const seen = index.known(receiver.packets);
      const runs = runsOf(seen);
      assert.deepEqual(runs.slice(0, 6).map((r) => r[0]?.name), ['a', 'live', 'b', 'live', 'slate', 'a'], 'the items in the list order, the slate after the lost source');
      judgeSteps(receiver, 'main');
      const vodRuns = runs.slice(0, 6).filter((r) => r[0]?.name === 'a' || r[0]?.name === 'b');
      const offsets = vodRuns.map((r) => avOffset(r));
      console.log(`live items: VOD A/V offset per run ${offsets.map((o) => o.toFixed(1)).join(', ')} ms`);
      for (const o of offsets.slice(1)) assert.ok(Math.abs(o - (offsets[0] ?? NaN)) <= 2, `A/V offset ${o} ms after a live item, ${offsets[0]} ms before`);

      // The API: each item as it went on air; a live item named by its masked URL, ending at its start plus its duration.
      const playing = events.events.map((e) => e.virtualLiveStatusChanged.nowPlaying).filter((p): p is Playing => p !== null);
      const firstOf = (i: number): Playing | undefined => playing.find((p) => p.index === i);
      const [p0, p1, p2, p3, p4] = [0, 1, 2, 3, 4].map(firstOf);
      assert.ok(p0 && p1 && p2 && p3 && p4, `every item announced: ${playing.map((p) => p.index).join(',')}`);
      assert.deepEqual([p1.live?.durationSeconds, p3.live?.durationSeconds, p0.live, p2.live], [2, 2, null, null]);
      assert.equal(p1.name, made.items[1]?.name);
      // Every item start has its ITEM cue, the live items' too, in the list's order.
      const itemCues = events.events.flatMap((e) => (e.virtualLiveStatusChanged.cuePoint?.kind === 'ITEM' ? [e.virtualLiveStatusChanged.cuePoint.index] : []));
      assert.deepEqual(itemCues.slice(0, 5), [0, 1, 2, 3, 4], 'an ITEM cue at each item start, live items included');
      // The lost source is a warning while the slate fills, cleared when the item ends (detail events, in order).
      const warnedOnMain = events.events.map((e) => e.virtualLiveStatusChanged.warnings);
      const lostAt = warnedOnMain.findIndex((w) => w.includes('live item 3: its source was lost; the slate fills its time'));
      assert.ok(lostAt >= 0, `a warning says the source was lost: ${JSON.stringify(warnedOnMain.filter((w) => w.length > 0))}`);
      assert.ok(warnedOnMain.slice(lostAt).some((w) => w.length === 0), 'and it is cleared once the item ended');
      const ms = (s: string): number => new Date(s).getTime();
      for (const [prev, liveItem] of [[p0, p1], [p2, p3]] as const) {
        assert.ok(Math.abs(ms(liveItem.endsAt) - (ms(prev.endsAt) + 2000)) <= 2, `a live item ends 2 s after the item before it ends (${liveItem.endsAt}, ${prev.endsAt})`);
      }
      // It comes just after the source's last tags, which end up to a frame and the audio drain before the plan
      // (98 ms early seen once in 4 runs alone; 130 ms once in a clean-clone suite, two files at once).
      assert.ok(Math.abs(ms(p2.startedAt) - ms(p1.endsAt)) <= 4 * frameMs, `the VOD item after it starts when it ends (${p2.startedAt}, ${p1.endsAt})`);

      // Planned switch (the API's endsAt) → the first packet of the new source at the receiver.
      const arrival = (runIndex: number): number => runs[runIndex]?.[0]?.p.wallMs ?? NaN;
      const figures = {
        'A → live 1': arrival(1) - ms(p0.endsAt),
        'live 1 → B': arrival(2) - ms(p1.endsAt),
        'B → live 2': arrival(3) - ms(p2.endsAt),
        'slate → A (live 2 lost)': arrival(5) - ms(p3.endsAt),
      };
      console.log(`live items: planned switch → receiver, ms: ${Object.entries(figures).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}`);
      for (const [what, v] of Object.entries(figures)) {
        const limit = what.includes('→ live') ? liveGopMs + 1500 : 1500;
        assert.ok(v > -1000 && v < limit, `${what}: ${v} ms from the planned switch to the receiver (limit ${limit})`);
      }
      await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id });
    } finally {
      await rx?.close();
      await rx2?.close();
      for (const p of publishers) await p.stop();
      await ws.dispose();
    }
  });
});
