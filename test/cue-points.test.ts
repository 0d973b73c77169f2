/**
 * Cue points end to end (issue #22 item 3): a looping playlist of a 2 s and
 * a 3 s clip (25 fps, a keyframe every 0.5 s), the first with an ad break
 * at 1.0 s, pushed to an independent receiver (ffmpeg listening, test/helpers/flv-receiver.ts)
 * that keeps every FLV tag; flvmeta reads them back.
 *
 * The receiver must hold an onCuePoint script tag at each item start and at
 * the break, each with its id and length, and each where the media it marks
 * is: an item's cue at the timestamp of a keyframe (its first frame), with
 * exactly as many video frames between item cues as the item has (50 or
 * 75), and the break's cue 1.0 s (25 frames) after its item's, within one
 * frame (40 ms). The API (lastCuePoint), the subscription (cuePoint events),
 * the CUE_POINT webhook and the guide (/epg/json) must report the same cues.
 * Bad breaks are refused with their code and change nothing.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app.js';
import { FlvReceiver, type FlvmetaTag } from './helpers/flv-receiver.js';
import { collect, gqlErrorCode, gqlOk, wsClient } from './helpers/gql.js';
import { makeMp4 } from './helpers/media.js';
import { pollUntil } from './helpers/service.js';
import { webhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';
import { decode } from '../src/rtmp/amf0.js';
import { CueSchedule, cuePointTag, itemCues, type ItemStart } from '../src/worker/cue-points.js';

const frameMs = 40;

interface CueView {
  kind: 'ITEM' | 'BREAK';
  id: string;
  index: number;
  mediaTimeSeconds: number;
  offsetSeconds: number;
  durationSeconds: number;
  keyframeTimeSeconds: number | null;
  loop: number;
}

const cueFields = 'kind id index mediaTimeSeconds offsetSeconds durationSeconds keyframeTimeSeconds loop';

/** A cue as the receiver got it: its tag's timestamp and its object. */
interface ReceivedCue {
  ts: number;
  name: string;
  time: number;
  parameters: Record<string, unknown>;
}

function receivedCues(tags: readonly FlvmetaTag[]): ReceivedCue[] {
  return tags.flatMap((t) => {
    const o = t.scriptDataObject;
    if (t.type !== 'scriptData' || o?.name !== 'onCuePoint' || o.metadata === undefined) return [];
    const m = o.metadata;
    return [{ ts: t.timestamp, name: String(m['name']), time: Number(m['time']), parameters: (m['parameters'] ?? {}) as Record<string, unknown> }];
  });
}

/** Video frames (not sequence headers), in order. */
const frames = (tags: readonly FlvmetaTag[]): FlvmetaTag[] => tags.filter((t) => t.type === 'video' && t.videoData?.AVCData?.packetType !== 'AVC sequence header');

describe('cue points: which cues an item gets (pure)', () => {
  const item = { id: 'vod-a', path: '/x.mp4', video: null, audio: null, breaks: [{ id: 'late', offsetMs: 1500, durationMs: 10_000 }, { id: 'early', offsetMs: 500, durationMs: 30_000 }, { id: 'past', offsetMs: 2500, durationMs: 5000 }] };
  const start: ItemStart = { item, index: 2, startMs: 10_000, fromMs: 0, periodMs: 2000, loop: 3 };

  it('an item cue at its start, then the breaks it reaches, by offset', () => {
    const cues = itemCues(start);
    assert.deepEqual(cues.map((c) => [c.kind, c.id, c.atMs, c.offsetMs, c.durationMs, c.index, c.loop]), [
      ['ITEM', 'vod-a', 10_000, 0, 2000, 2, 3],
      ['BREAK', 'early', 10_500, 500, 30_000, 2, 3],
      ['BREAK', 'late', 11_500, 1500, 10_000, 2, 3],
    ]);
    // A resumed item (a return from a cut-in at 1.0 s) reaches only the later break, at its place on the output.
    const resumed = itemCues({ ...start, fromMs: 1000, periodMs: 1000 });
    assert.deepEqual(resumed.map((c) => [c.kind, c.id, c.atMs]), [['ITEM', 'vod-a', 10_000], ['BREAK', 'late', 10_500]]);
  });

  it('hands cues out by time, drops the ones an ended item never reached, and waits for the keyframe', () => {
    const s = new CueSchedule(true);
    s.item(start);
    assert.deepEqual(s.due(10_499).map((c) => c.id), ['vod-a']);
    assert.deepEqual(s.resolved(10_000).map((r) => [r.cue.id, r.keyframeMs]), [['vod-a', 10_000]]);
    assert.deepEqual(s.due(10_520).map((c) => c.id), ['early']);
    assert.deepEqual(s.resolved(10_560).map((r) => [r.cue.id, r.keyframeMs]), [['early', 10_560]]);
    // Cut before 11.5 s: the next item's cues replace 'late'.
    s.item({ ...start, item: { ...item, id: 'vod-b', breaks: [] }, startMs: 11_000 });
    assert.deepEqual(s.due(20_000).map((c) => c.id), ['vod-b']);
    assert.deepEqual(s.resolved(null), [{ cue: itemCues({ ...start, item: { ...item, id: 'vod-b', breaks: [] }, startMs: 11_000 })[0], keyframeMs: null }]);
  });

  it('the tag is an onCuePoint script tag at the cue time with the Flash cue point object', () => {
    const cue = itemCues(start)[1];
    assert.ok(cue !== undefined);
    const tag = cuePointTag(cue);
    assert.equal(tag[0], 18);
    assert.equal(tag.readUIntBE(4, 3) | ((tag[7] ?? 0) << 24), 10_500);
    const [name, obj] = decode(tag.subarray(11, tag.length - 4));
    assert.equal(name, 'onCuePoint');
    assert.deepEqual(obj, {
      name: 'early',
      time: 10.5,
      type: 'event',
      parameters: { id: 'early', kind: 'BREAK', itemId: 'vod-a', itemIndex: 2, offsetSeconds: 0.5, durationSeconds: 30, loop: 3 },
    });
  });
});

describe('cue points: onCuePoint at item starts and ad breaks', () => {
  let t: TestApp;
  let hook: WebhookReceiver;
  const vod: Record<'a' | 'b', string> = { a: '', b: '' };

  before(async () => {
    t = await startTestApp({ VLIVE_WEBHOOK_ALLOW_PRIVATE: 'on' });
    hook = await webhookReceiver(() => 200);
    const dir = join(t.mediaRoot, 'cues');
    await mkdir(dir, { recursive: true });
    for (const [name, seconds] of [['a', 2], ['b', 3]] as const) {
      await makeMp4(dir, { name, seconds, fps: 25, gopSeconds: 0.5, toneHz: name === 'a' ? 440 : 660 });
      const d = await gqlOk<{ registerVodResource: { id: string } }>(t.url, `mutation($i: RegisterVodResourceInput!) { registerVodResource(input: $i) { id } }`, { i: { name, path: `cues/${name}.mp4` } });
      vod[name] = d.registerVodResource.id;
    }
  });

  after(async () => {
    await hook?.close();
    await t?.dispose();
  });

  it('refuses bad breaks with their code and changes nothing', async () => {
    const create = `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`;
    const made = await gqlOk<{ createVirtualLive: { id: string } }>(t.url, create, { i: { name: 'plain', sourceType: 'VOD', items: [{ vodResourceId: vod.a }] } });
    const id = made.createVirtualLive.id;
    // Lists of item b (3 s): one written in part would show in the channel, whose list is [a].
    const bad: Array<[string, unknown]> = [
      ['a negative offset', [{ vodResourceId: vod.b, breaks: [{ offsetSeconds: -1, durationSeconds: 30 }] }]],
      ["an offset past the item's end", [{ vodResourceId: vod.b, breaks: [{ offsetSeconds: 1, durationSeconds: 30 }, { offsetSeconds: 3.5, durationSeconds: 30 }] }]],
      ['a zero duration', [{ vodResourceId: vod.b, breaks: [{ offsetSeconds: 1, durationSeconds: 0 }] }]],
      ['breaks on a live item', [{ vodResourceId: vod.b }, { sourceUrl: 'rtmp://203.0.113.1/live/x', durationSeconds: 5, breaks: [{ offsetSeconds: 1, durationSeconds: 5 }] }]],
    ];
    for (const [what, items] of bad) {
      assert.equal(await gqlErrorCode(t.url, create, { i: { name: 'bad', sourceType: 'VOD', items } }), 'BAD_USER_INPUT', `create with ${what}`);
      const update = `mutation($id: ID!, $i: UpdateVirtualLiveInput!) { updateVirtualLive(id: $id, input: $i) { id } }`;
      assert.equal(await gqlErrorCode(t.url, update, { id, i: { items } }), 'BAD_USER_INPUT', `update with ${what}`);
    }
    const after = await gqlOk<{ virtualLives: { name: string; items: { name: string; breaks: unknown[] }[] }[] }>(t.url, `{ virtualLives { name items { name breaks { id } } } }`);
    assert.deepEqual(
      after.virtualLives.map((v) => v.name),
      ['plain'],
      'no channel was made',
    );
    assert.deepEqual(after.virtualLives[0]?.items, [{ name: 'a', breaks: [] }], 'the channel kept its items');
    await gqlOk(t.url, `mutation($id: ID!) { deleteVirtualLive(id: $id) }`, { id });
  });

  it('sends a cue at each item start and at the break, where the media is, and reports them', async (ctx) => {
    const rx = await FlvReceiver.start(t.dir);
    await gqlOk(t.url, `mutation($i: AddWebhookInput!) { addWebhook(input: $i) { id } }`, { i: { url: hook.url, events: ['CUE_POINT'], secret: 'a-secret-of-16-chars' } });
    const made = await gqlOk<{ createVirtualLive: { id: string; items: { index: number; breaks: { id: string; offsetSeconds: number; durationSeconds: number }[] }[] } }>(
      t.url,
      `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id items { index breaks { id offsetSeconds durationSeconds } } } }`,
      {
        i: {
          name: 'cues',
          sourceType: 'VOD',
          loop: true,
          pushTargets: [rx.url],
          items: [{ vodResourceId: vod.a, breaks: [{ id: 'ad-1', offsetSeconds: 1.0, durationSeconds: 30 }] }, { vodResourceId: vod.b }],
        },
      },
    );
    const id = made.createVirtualLive.id;
    assert.deepEqual(made.createVirtualLive.items, [
      { index: 0, breaks: [{ id: 'ad-1', offsetSeconds: 1, durationSeconds: 30 }] },
      { index: 1, breaks: [] },
    ]);
    const ws = wsClient(t.url);
    const sub = collect<{ virtualLiveStatusChanged: { cuePoint: CueView | null } }>(ws, `subscription($id: ID) { virtualLiveStatusChanged(id: $id) { cuePoint { ${cueFields} } } }`, { id });
    const cuesSeen = (): CueView[] => sub.events.flatMap((e) => (e.virtualLiveStatusChanged.cuePoint === null ? [] : [e.virtualLiveStatusChanged.cuePoint]));
    try {
      await gqlOk(t.url, `mutation($id: ID!) { startVirtualLive(id: $id) { status } }`, { id });
      // a (0-2 s, break at 1 s), b (2-5 s), a again (5-7 s, break at 6 s): wait for the second break.
      await sub.until(() => cuesSeen().filter((c) => c.kind === 'BREAK').length >= 2, 15_000);
      const epg = await fetch(`${t.url.replace('/graphql', '')}/epg/json?channel=${id}`);
      const guide = (await epg.json()) as { channels: { programme: { kind: string; index: number; start: string; breaks: { id: string; at: string; durationSeconds: number }[] }[] }[] };
      const last = await gqlOk<{ virtualLive: { lastCuePoint: CueView | null } }>(t.url, `query($id: ID!) { virtualLive(id: $id) { lastCuePoint { ${cueFields} } } }`, { id });
      await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { status } }`, { id });
      await rx.stop();

      // The subscription: item a, the break, item b, item a again, the break again, in that order.
      const seen = cuesSeen();
      assert.deepEqual(
        seen.slice(0, 5).map((c) => `${c.kind}:${c.index}:${c.loop}`),
        ['ITEM:0:0', 'BREAK:0:0', 'ITEM:1:0', 'ITEM:0:1', 'BREAK:0:1'],
      );
      const brk = seen.find((c) => c.kind === 'BREAK');
      assert.ok(brk !== undefined);
      assert.equal(brk.id, 'ad-1');
      assert.equal(brk.durationSeconds, 30);
      assert.equal(brk.offsetSeconds, 1);
      const itemA = seen[0] as CueView;
      assert.ok(Math.abs(brk.mediaTimeSeconds - itemA.mediaTimeSeconds - 1) < 0.001, `the break is 1.0 s into item a: ${JSON.stringify(seen.slice(0, 2))}`);
      // Copy mode: the splice point is the next keyframe, at most a GOP (0.5 s) later.
      assert.ok(brk.keyframeTimeSeconds !== null && brk.keyframeTimeSeconds >= brk.mediaTimeSeconds && brk.keyframeTimeSeconds - brk.mediaTimeSeconds <= 0.5, `keyframe after the break: ${JSON.stringify(brk)}`);
      assert.ok(last.virtualLive.lastCuePoint !== null, 'lastCuePoint while it runs');
      assert.ok(seen.some((c) => JSON.stringify(c) === JSON.stringify(last.virtualLive.lastCuePoint)), 'lastCuePoint is one the subscription saw');

      // The receiver's tags.
      const tags = await rx.tags();
      const cues = receivedCues(tags);
      const video = frames(tags);
      assert.ok(cues.length >= 4, `cue tags at the receiver: ${JSON.stringify(cues)}`);
      // The figures for the README: each cue's timestamp, and how far the next video frame is.
      ctx.diagnostic(`cues at the receiver: ${cues.map((c) => `${String(c.parameters['kind'])} ${c.name} @${c.ts} ms (next frame +${(video.find((v) => v.timestamp >= c.ts)?.timestamp ?? NaN) - c.ts} ms)`).join('; ')}`);
      ctx.diagnostic(`cues via the API: ${seen.map((c) => `${c.kind} ${c.id} @${c.mediaTimeSeconds} s key ${c.keyframeTimeSeconds} s`).join('; ')}`);
      // Its session starts at 0 (a push target joins at a keyframe): `time` is the origin's timeline, one offset for all.
      const offsetMs = Math.round((cues[0] as ReceivedCue).time * 1000) - (cues[0] as ReceivedCue).ts;
      for (const c of cues) {
        assert.equal(Math.round(c.time * 1000) - c.ts, offsetMs, `one offset between time and timestamp: ${JSON.stringify(c)}`);
        const api = seen.find((s) => s.id === c.parameters['id'] && s.kind === c.parameters['kind'] && s.loop === c.parameters['loop']);
        if (api !== undefined) assert.ok(Math.abs(api.mediaTimeSeconds - c.time) < 0.0005, `the API's mediaTime is the tag's: ${JSON.stringify({ api, c })}`);
      }
      const framesBetween = (from: number, to: number): number => video.filter((v) => v.timestamp >= from && v.timestamp < to).length;
      const items = cues.filter((c) => c.parameters['kind'] === 'ITEM');
      assert.ok(items.length >= 2, `item cues: ${JSON.stringify(cues)}`);
      for (const c of items) {
        const first = video.find((v) => v.timestamp >= c.ts);
        assert.ok(first !== undefined, `a frame after the item cue at ${c.ts}`);
        assert.ok(first.timestamp - c.ts <= frameMs, `item cue at ${c.ts}, its first frame at ${first.timestamp}`);
        assert.equal(first.videoData?.frameType, 'seekable frame', `the item's first frame is a keyframe (${c.ts})`);
        assert.equal(c.name, c.parameters['itemId']);
      }
      for (let i = 1; i < items.length; i++) {
        const prev = items[i - 1] as ReceivedCue;
        const expected = prev.parameters['itemIndex'] === 0 ? 50 : 75;
        assert.equal(framesBetween(prev.ts, (items[i] as ReceivedCue).ts), expected, `frames of item ${String(prev.parameters['itemIndex'])} between its cue and the next`);
      }
      const breaks = cues.filter((c) => c.parameters['kind'] === 'BREAK');
      assert.ok(breaks.length >= 1, `break cues: ${JSON.stringify(cues)}`);
      for (const b of breaks) {
        assert.equal(b.name, 'ad-1');
        assert.equal(b.parameters['id'], 'ad-1');
        assert.equal(b.parameters['durationSeconds'], 30);
        const item = [...items].reverse().find((c) => c.ts < b.ts);
        if (item === undefined) continue; // the receiver joined inside item a: no item cue to measure from
        assert.equal(item.parameters['itemIndex'], 0);
        assert.ok(Math.abs(b.ts - item.ts - 1000) <= frameMs, `the break 1.0 s into item a: item ${item.ts}, break ${b.ts}`);
        assert.equal(framesBetween(item.ts, b.ts), 25, 'one second of frames before the break');
      }
      assert.ok(breaks.some((b) => items.some((c) => c.ts < b.ts)), 'at least one break measured from its item cue');

      // The guide lists the break in item a's entries, at its start + 1 s.
      const entries = guide.channels[0]?.programme ?? [];
      const withBreak = entries.filter((e) => e.index === 0);
      assert.ok(withBreak.length > 0 && withBreak.every((e) => e.breaks.length === 1 && e.breaks[0]?.id === 'ad-1'), `guide: ${JSON.stringify(entries)}`);
      for (const e of withBreak) assert.equal(Date.parse(e.breaks[0]?.at ?? '') - Date.parse(e.start), 1000);
      assert.ok(entries.filter((e) => e.index === 1).every((e) => e.breaks.length === 0));

      // The webhook got the cue points too.
      const hooks = await pollUntil(
        async () => hook.ok.filter((r) => r.json.event === 'CUE_POINT'),
        (r) => r.some((h) => h.json.data['id'] === 'ad-1'),
        10_000,
        'a CUE_POINT webhook for the break',
      );
      const h = hooks.find((x) => x.json.data['id'] === 'ad-1');
      assert.equal(h?.json.data['channelId'], id);
      assert.equal(h?.json.data['kind'], 'BREAK');
      assert.equal(h?.json.data['durationSeconds'], 30);
    } finally {
      sub.dispose();
      await ws.dispose();
      await rx.stop();
    }
  });
});
