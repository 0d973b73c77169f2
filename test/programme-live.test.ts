/**
 * Live-source entries of a wall-clock programme (issue #22): the input's
 * rules through the API, then a real run.
 *
 * The run, dated: filler F (1 s) from the start; T0 = now + 3.5 s: A (2 s);
 * T1 = T0 + 2 s: a live source for 2 s, published into the test origin by
 * ffmpeg -re (as live-items.test.ts does); the filler after it. Two
 * independent receivers judge it: ffprobe playing the origin (each packet
 * told apart by payload hash, known-packets.ts) must see F, A, live, F with
 * DTS strictly increasing per track, the live source's first packet within
 * a GOP (and its keyframe wait) of T1, and one publisher connection; an
 * ffmpeg push target that keeps every tag (flv-receiver.ts) must hold the
 * live entry's ITEM onCuePoint within a frame of its first keyframe, and
 * the next item's right after it. The guide lists the live entry as played,
 * titled by its masked URL (the one choice of a title: a live item's too).
 * Beside it, a live entry whose source nobody publishes: the slate fills its
 * time, a warning says why while it lasts, and the filler follows on time.
 * And three live entries back to back: each next source is handed over to
 * during the one before (live-run.ts `then`), with no filler and no hole
 * between; the slate takes over from the second for a third whose source
 * is published only after its time, and that source joins when it comes.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from 'graphql-ws';
import { publisherAtOrigin, registerVod, startReceived, startTestApp, type TestApp } from './helpers/app.js';
import { FlvReceiver, type FlvmetaTag } from './helpers/flv-receiver.js';
import { collect, gql, gqlOk, wsClient } from './helpers/gql.js';
import { ContentIndex, runsOf } from './helpers/known-packets.js';
import { makeMp4, startPublisher, type Publisher } from './helpers/media.js';
import { nonIncreasing, type RtmpReceiver } from './helpers/rtmp-receiver.js';
import { pollUntil } from './helpers/service.js';

type Name = 'F' | 'A' | 'live' | 'live2' | 'live3' | 'radio' | 'slate';
const frameMs = 40;
/** The live source's GOP (0.4 s): the switch waits for its keyframe, at most this. */
const liveGopMs = 400;

const entryFields = 'start durationSeconds sourceUrl items { name } breaks { id }';
const setQuery = `mutation($id: ID!, $i: ProgrammeInput!) { setProgramme(virtualLiveId: $id, input: $i) { id channelProgramme { entries { ${entryFields} } } } }`;
const readQuery = `query($id: ID!) { virtualLive(id: $id) { channelProgramme { entries { ${entryFields} } } } }`;

describe('live-source entries of a programme', () => {
  let t: TestApp;
  const vod: Record<'F' | 'A' | 'slate', string> = { F: '', A: '', slate: '' };
  const index = new ContentIndex<Name>();
  let liveFile = '';
  let live2File = '';
  let live3File = '';
  let radioFile = '';

  before(async () => {
    t = await startTestApp();
    const dir = join(t.mediaRoot, 'plive');
    await mkdir(dir, { recursive: true });
    const made = await Promise.all([
      makeMp4(dir, { name: 'F', seconds: 1, toneHz: 300, gopSeconds: 0.5 }),
      makeMp4(dir, { name: 'A', seconds: 2, toneHz: 550, gopSeconds: 0.5 }),
      makeMp4(dir, { name: 'live', seconds: 4, toneHz: 990, gopSeconds: 0.4 }),
      makeMp4(dir, { name: 'slate', seconds: 2, toneHz: 660, gopSeconds: 2 }),
      makeMp4(dir, { name: 'live2', seconds: 4, toneHz: 770, gopSeconds: 0.4 }),
      makeMp4(dir, { name: 'live3', seconds: 4, toneHz: 880, gopSeconds: 0.4 }),
      makeMp4(dir, { name: 'radio', seconds: 4, toneHz: 1100, video: false }),
    ]);
    liveFile = made[2];
    live2File = made[4] ?? '';
    live3File = made[5] ?? '';
    radioFile = made[6] ?? '';
    await Promise.all((['F', 'A', 'live', 'slate', 'live2', 'live3', 'radio'] as const).map((n, i) => index.add(n, made[i] ?? '')));
    for (const name of ['F', 'A', 'slate'] as const) vod[name] = await registerVod(t, name, `plive/${name}.mp4`);
  });

  after(async () => {
    await t?.dispose();
  });

  const iso = (ms: number): string => new Date(ms).toISOString();
  /** A live-source entry: stream `stream` at the test origin, from `at` (epoch ms) for `seconds`. */
  const liveEntry = (at: number, stream: string, seconds: number): Record<string, unknown> => ({ start: iso(at), sourceUrl: t.app.origin.publishUrl(stream), durationSeconds: seconds });
  /** Every change of channel `id`'s warnings, in order (its detail events), to read after the run, as they came. */
  const watchWarnings = (ws: Client, id: string) => {
    const events = collect<{ virtualLiveStatusChanged: { warnings: string[] } }>(ws, `subscription($id: ID) { virtualLiveStatusChanged(id: $id) { warnings } }`, { id });
    return {
      dispose: (): void => events.dispose(),
      changes: (): string[][] =>
        events.events.map((e) => e.virtualLiveStatusChanged.warnings).filter((w, i, all) => i === 0 || JSON.stringify(w) !== JSON.stringify(all[i - 1])),
    };
  };
  /** The receiver's known packets end with `before`, then a second (25 packets) or more of `last`. */
  const endsWith = (before: Name, last: Name) => (r: RtmpReceiver): boolean => {
    const runs = runsOf(index.known(r.packets));
    return runs.at(-2)?.[0]?.name === before && runs.at(-1)?.[0]?.name === last && (runs.at(-1)?.length ?? 0) >= 25;
  };
  /** DTS strictly increasing per track at the receiver. */
  const dtsRising = (rx: RtmpReceiver, where = ''): void => {
    for (const kind of ['video', 'audio'] as const) assert.deepEqual(nonIncreasing(rx.dts(kind)), [], `${kind} DTS strictly increasing${where}`);
  };

  const channel = async (name: string, extra: Record<string, unknown> = {}): Promise<string> =>
    (await gqlOk<{ createVirtualLive: { id: string } }>(t.url, `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`, { i: { name, sourceType: 'VOD', vodResourceId: vod.F, hls: false, ...extra } })).createVirtualLive.id;

  it('refuses a live entry without a duration or with a bad URL, stores nothing, and stores a good one', async () => {
    const id = await channel('live entry input');
    const url = 'rtmp://studio.example:1935/live/secret-key';
    const refusal = async (entry: Record<string, unknown>): Promise<[unknown, unknown]> => {
      const r = await gql(t.url, setQuery, { id, i: { fillerVodResourceId: vod.F, entries: [{ start: '07:00', vodResourceId: vod.A }, { start: '08:00', ...entry }] } });
      const e = r.errors?.[0]?.extensions;
      return [e?.['code'], e?.['field']];
    };
    assert.deepEqual(await refusal({ sourceUrl: url }), ['BAD_USER_INPUT', 'entries[1].durationSeconds'], 'no duration');
    assert.deepEqual(await refusal({ sourceUrl: 'file:///etc/passwd', durationSeconds: 60 }), ['URL_NOT_ALLOWED', 'entries[1].sourceUrl'], 'a scheme not allowed');
    assert.deepEqual(await refusal({ sourceUrl: 'rtmp://', durationSeconds: 60 }), ['URL_NOT_ALLOWED', 'entries[1].sourceUrl'], 'no host');
    assert.deepEqual(await refusal({ sourceUrl: url, durationSeconds: 60, breaks: [{ offsetSeconds: 1, durationSeconds: 30 }] }), ['BAD_USER_INPUT', 'entries[1].breaks'], 'breaks');
    assert.deepEqual(await refusal({ sourceUrl: url, vodResourceId: vod.A, durationSeconds: 60 }), ['BAD_USER_INPUT', 'entries[1]'], 'two contents');
    const none = await gqlOk<{ virtualLive: { channelProgramme: unknown } }>(t.url, readQuery, { id });
    assert.equal(none.virtualLive.channelProgramme, null, 'nothing stored');

    const set = await gqlOk<{ setProgramme: { channelProgramme: unknown } }>(t.url, setQuery, { id, i: { fillerVodResourceId: vod.F, entries: [{ start: '07:00', vodResourceId: vod.A }, { start: '08:00', sourceUrl: url, durationSeconds: 1800 }] } });
    const stored = {
      entries: [
        { start: '07:00', durationSeconds: null, sourceUrl: null, items: [{ name: 'A' }], breaks: [] },
        { start: '08:00', durationSeconds: 1800, sourceUrl: 'rtmp://studio.example:1935/live/***', items: [], breaks: [] },
      ],
    };
    assert.deepEqual(set.setProgramme.channelProgramme, stored, 'the entry as stored, its URL masked');
    const read = await gqlOk<{ virtualLive: { channelProgramme: unknown } }>(t.url, readQuery, { id });
    assert.deepEqual(read.virtualLive.channelProgramme, stored, 'read back from the database');
  });

  it('switches to the live source at its time and back, in one session, with its ITEM cue', async () => {
    const publisher: Publisher = startPublisher(liveFile, t.app.origin.publishUrl('studio'), { loop: true });
    const flv = await FlvReceiver.start(t.dir);
    let rx: RtmpReceiver | null = null;
    try {
      await t.app.origin.waitForPublish('studio', 10_000);
      const id = await channel('live entry run', { pushTargets: [flv.url] });
      const t0 = Math.ceil((Date.now() + 3500) / 100) * 100;
      const t1 = t0 + 2000;
      const set = await gqlOk<{ setProgramme: { id: string } }>(t.url, setQuery, {
        id,
        i: { fillerVodResourceId: vod.F, entries: [{ start: iso(t0), vodResourceId: vod.A }, { start: iso(t1), sourceUrl: t.app.origin.publishUrl('studio'), durationSeconds: 2 }] },
      });
      assert.equal(set.setProgramme.id, id);
      const started = await startReceived(t, id);
      const receiver = started.receiver;
      rx = receiver;
      // The service hears of the live entry's cue too (the worker's report, not only the tag in the stream).
      type Cue = { kind: string; id: string; durationSeconds: number } | null;
      const cueQuery = `query($id: ID!) { virtualLive(id: $id) { lastCuePoint { kind id durationSeconds } } }`;
      const reported = await pollUntil(
        async () => (await gqlOk<{ virtualLive: { lastCuePoint: Cue } }>(t.url, cueQuery, { id })).virtualLive.lastCuePoint,
        (c) => c !== null && c.kind === 'ITEM' && c.id !== vod.A && c.id !== vod.F,
        t1 + 2000 - Date.now() + 3000,
        "the live entry's ITEM cue point in the API",
      );
      assert.ok(reported !== null && Math.abs(reported.durationSeconds - 2) < 0.5, `its length in the API: ${JSON.stringify(reported)}`);
      // F after the live entry, for a second.
      await receiver.until((r) => {
        const runs = runsOf(index.known(r.packets));
        return runs.length >= 4 && runs[3]?.[0]?.name === 'F' && (runs.at(-1)?.length ?? 0) >= 25;
      }, 15_000, 'F, A, live, F');
      assert.equal(await publisherAtOrigin(t, id, false), started.session, 'one publisher connection');

      // The guide: the live entry played, titled by its masked URL, from about T1 to T1 + 2 s.
      type Row = { start: string; stop: string | null; title: string; kind: string; vodResource: { id: string } | null; index: number | null };
      const rows = await pollUntil(
        async () => (await gqlOk<{ programme: Row[] }>(t.url, `query($id: ID!) { programme(id: $id) { start stop title kind vodResource { id } index } }`, { id })).programme,
        (list) => list.some((r) => r.kind === 'PLAYED' && r.title.startsWith('rtmp://')),
        5000,
        'the live entry in the guide as played',
      );
      const played = rows.find((r) => r.kind === 'PLAYED' && r.title.startsWith('rtmp://'));
      assert.ok(played !== undefined, `the live entry is in the guide as played: ${JSON.stringify(rows)}`);
      assert.equal(played.vodResource, null);
      assert.equal(played.index, null, 'no place in the list');
      assert.ok(!played.title.includes('studio'), `its URL masked: ${played.title}`);
      assert.ok(Math.abs(Date.parse(played.start) - t1) < 1000, `played from about T1: ${played.start} vs ${iso(t1)}`);
      assert.ok(played.stop !== null && Math.abs(Date.parse(played.stop) - (t1 + 2000)) < 1000, `to about T1 + 2 s: ${played.stop}`);

      await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id });
      await receiver.close();
      await flv.stop();

      // The origin's receiver: the order, the switch time, DTS per track.
      const runs = runsOf(index.known(receiver.packets));
      assert.deepEqual(runs.slice(0, 4).map((r) => r[0]?.name), ['F', 'A', 'live', 'F'], `in programme order: ${runs.map((r) => `${r[0]?.name}×${r.length}`).join(' ')}`);
      const liveAt = (runs[2]?.[0]?.p.wallMs ?? NaN) - t1;
      const backAt = (runs[3]?.[0]?.p.wallMs ?? NaN) - (t1 + 2000);
      console.log(`programme live entry: first live packet at the receiver ${liveAt} ms from T1, the filler ${backAt} ms from T1 + 2 s`);
      assert.ok(liveAt > -1000 && liveAt < 1000 + liveGopMs, `the live source on air ${liveAt} ms from its time`);
      assert.ok(backAt > -1000 && backAt < 1000, `back to the filler ${backAt} ms from the entry's end`);
      dtsRising(receiver, ' at the origin');

      // The push target's tags: the live entry's ITEM cue at its first keyframe, the next item's after it.
      const tags = await flv.tags();
      const cues = tags.flatMap((tag) => {
        const o = tag.scriptDataObject;
        return tag.type === 'scriptData' && o?.name === 'onCuePoint' && o.metadata !== undefined ? [{ ts: tag.timestamp, parameters: (o.metadata['parameters'] ?? {}) as Record<string, unknown> }] : [];
      });
      const video = tags.filter((tag: FlvmetaTag) => tag.type === 'video' && tag.videoData?.AVCData?.packetType !== 'AVC sequence header');
      for (const kind of ['video', 'audio'] as const) {
        const ts = tags.filter((tag) => tag.type === kind).map((tag) => tag.timestamp);
        assert.deepEqual(ts.filter((x, i) => i > 0 && x < (ts[i - 1] ?? 0)), [], `${kind} timestamps never go back at the push target`);
      }
      const entries = (await gqlOk<{ virtualLive: { channelProgramme: { entries: { sourceUrl: string | null }[] } } }>(t.url, readQuery, { id })).virtualLive.channelProgramme.entries;
      assert.equal(entries.length, 2);
      const liveCueAt = cues.findIndex((c) => c.parameters['kind'] === 'ITEM' && c.parameters['itemId'] !== vod.F && c.parameters['itemId'] !== vod.A);
      const liveCue = cues[liveCueAt];
      assert.ok(liveCue !== undefined, `an ITEM cue for the live entry: ${JSON.stringify(cues)}`);
      assert.equal(cues[liveCueAt - 1]?.parameters['itemId'], vod.A, 'after A\'s cue');
      assert.equal(cues[liveCueAt + 1]?.parameters['itemId'], vod.F, 'the filler\'s cue next, at the live entry\'s end');
      const key = video.find((v) => v.timestamp >= liveCue.ts - frameMs && v.videoData?.frameType === 'seekable frame');
      assert.ok(key !== undefined && Math.abs(key.timestamp - liveCue.ts) <= frameMs, `the live entry's cue (${liveCue.ts} ms) within a frame of its first keyframe (${key?.timestamp} ms)`);
      assert.ok(Math.abs(Number(liveCue.parameters['durationSeconds']) - 2) < 0.5, `its length: ${JSON.stringify(liveCue.parameters)}`);
    } finally {
      await rx?.close();
      await flv.stop();
      await publisher.stop();
    }
  });
  it('hands one live entry over to the next back to back, and the slate over a next source that comes late', async () => {
    const one: Publisher = startPublisher(liveFile, t.app.origin.publishUrl('studio1'), { loop: true });
    const two: Publisher = startPublisher(live2File, t.app.origin.publishUrl('studio2'), { loop: true });
    let three: Publisher | null = null;
    let late: NodeJS.Timeout | undefined;
    const flv = await FlvReceiver.start(t.dir);
    const ws = wsClient(t.url);
    let rx: RtmpReceiver | null = null;
    try {
      await Promise.all([t.app.origin.waitForPublish('studio1', 10_000), t.app.origin.waitForPublish('studio2', 10_000)]);
      const id = await channel('live entries back to back', { slateVodResourceId: vod.slate, pushTargets: [flv.url] });
      // Three live entries with no time between: studio1, studio2, then studio3, published only after its time.
      const t1 = Math.ceil((Date.now() + 5000) / 100) * 100;
      const t2 = t1 + 2000;
      const t3 = t2 + 2000;
      const t4 = t3 + 3000;
      await gqlOk(t.url, setQuery, { id, i: { fillerVodResourceId: vod.F, entries: [liveEntry(t1, 'studio1', 2), liveEntry(t2, 'studio2', 2), liveEntry(t3, 'studio3', 3)] } });
      late = setTimeout(() => (three = startPublisher(live3File, t.app.origin.publishUrl('studio3'), { loop: true })), t3 + 300 - Date.now());
      const warnings = watchWarnings(ws, id);
      const started = await startReceived(t, id);
      rx = started.receiver;
      await started.receiver.until(endsWith('live3', 'F'), t4 - Date.now() + 8000, 'the three entries, then the filler');
      warnings.dispose();
      // No warning for the second (pulled during the first); the third's stand-in said why until its late source came.
      const late3 = `live entry at ${iso(t3)}: its source could not be played by its time; the slate fills its time`;
      const warned = warnings.changes();
      assert.deepEqual(warned.filter((w) => w.length > 0), [[late3]], 'one warning: the third entry\'s stand-in');
      assert.deepEqual(warned.at(-1), [], 'cleared once its source came');
      assert.equal(await publisherAtOrigin(t, id, false), started.session, 'one publisher connection');
      // The guide: each entry played, under its masked URL, from about its time.
      type Row = { start: string; title: string; kind: string };
      const rows = await pollUntil(
        async () => (await gqlOk<{ programme: Row[] }>(t.url, `query($id: ID!) { programme(id: $id) { start title kind } }`, { id })).programme,
        (list) => list.filter((r) => r.kind === 'PLAYED' && r.title.startsWith('rtmp://')).length >= 3,
        5000,
        'the three entries in the guide as played',
      );
      const played = rows.filter((r) => r.kind === 'PLAYED' && r.title.startsWith('rtmp://'));
      [t1, t2, t3].forEach((at, i) => assert.ok(Math.abs(Date.parse(played[i]?.start ?? '') - at) < 1000, `entry ${i} played from about its time: ${played[i]?.start} vs ${iso(at)}`));
      assert.ok(played.every((r) => !r.title.includes('studio')), `their URLs masked: ${played.map((r) => r.title).join(', ')}`);
      await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id });
      await started.receiver.close();
      await flv.stop();

      const packets = started.receiver.packets;
      const runs = runsOf(index.known(packets));
      const said = runs.map((r) => `${r[0]?.name}×${r.length}@${(r[0]?.p.wallMs ?? 0) - t1}`).join(' ');
      console.log(`live entries back to back: ${said} (ms from T1)`);
      const at = runs.findIndex((r) => r[0]?.name === 'live');
      assert.deepEqual(runs.slice(at, at + 5).map((r) => r[0]?.name), ['live', 'live2', 'slate', 'live3', 'F'], `one entry after the other, no filler between: ${said}`);
      const onAir = (k: number, whenMs: number): number => (runs[at + k]?.[0]?.p.wallMs ?? NaN) - whenMs;
      assert.ok(onAir(1, t2) > -1000 && onAir(1, t2) < 1000 + liveGopMs, `the second source on air ${onAir(1, t2)} ms from its time`);
      assert.ok(Math.abs(onAir(2, t3)) < 1000 && Math.abs(onAir(4, t4)) < 1000, `the slate ${onAir(2, t3)} ms from the third entry's time, the filler ${onAir(4, t4)} ms from its end`);
      assert.ok(onAir(3, t3) > 300 && onAir(3, t3) < 2500, `the late source on air ${onAir(3, t3)} ms into its time, once published (300 ms in)`);
      dtsRising(started.receiver);
      // The handover leaves no hole: from the first source's first packet to a second into the
      // second's, video DTS step by a frame, at most two more at the switch (the sources share
      // their video, so the audio tells them apart; every video packet in that span is read here).
      const from = packets.indexOf(runs[at]?.[0]?.p as (typeof packets)[number]);
      const switchAt = packets.indexOf(runs[at + 1]?.[0]?.p as (typeof packets)[number]);
      const span = packets.slice(from, switchAt + 50).flatMap((p) => (p.kind === 'video' && p.dts !== null ? [Math.round(p.dts * 1000)] : []));
      const steps = span.slice(1).map((d, i) => d - (span[i] ?? d));
      assert.ok(from >= 0 && switchAt > from && span.length > 50, `the span read: packets ${from}..${switchAt + 50}, ${span.length} video`);
      assert.ok(Math.max(...steps) <= 3 * frameMs, `the largest step in video DTS across the handover: ${Math.max(...steps)} ms`);

      // Each entry's ITEM cue at its first tag, in order, each about its own length.
      const tags = await flv.tags();
      const cues = tags.flatMap((tag) => {
        const o = tag.scriptDataObject;
        return tag.type === 'scriptData' && o?.name === 'onCuePoint' && o.metadata !== undefined ? [{ ts: tag.timestamp, parameters: (o.metadata['parameters'] ?? {}) as Record<string, unknown> }] : [];
      });
      const liveCues = cues.filter((c) => c.parameters['kind'] === 'ITEM' && c.parameters['itemId'] !== vod.F);
      // Each cue's duration is the entry's time left from its first tag: less a source's keyframe wait (a GOP,
      // after its playout delay), or for the slate, whose first tag is at the entry's time, the source's read batch
      // and a late tick at most (2.86–3.04 s of 3 in nine runs; 1.13 of 1.5, 0.37 short, when the cue followed the
      // slate's first tags); the first entry's time begins at the filler's clean cut, up to a filler GOP (0.5 s)
      // before T1.
      const lengths = liveCues.map((c) => Number(c.parameters['durationSeconds']));
      assert.equal(liveCues.length, 3, `one ITEM cue per entry: ${JSON.stringify(liveCues)}`);
      console.log(`live entries back to back: their cues say ${lengths.join(', ')} s of 2, 2 and 3 s`);
      [[2, 0.7, 0.55], [2, 0.7, 0.05], [3, 0.25, 0.1]].forEach(([d = 0, less = 0, more = 0], i) =>
        assert.ok((lengths[i] ?? NaN) > d - less && (lengths[i] ?? NaN) <= d + more, `entry ${i}'s cue says ${lengths[i]} s of its ${d} s`),
      );
      assert.equal(new Set(liveCues.map((c) => c.parameters['itemId'])).size, 3, 'each names its own entry');
      // Each cue is at its entry's first tag: the first up to a filler GOP (0.5 s) before or a source GOP and a read
      // batch (0.5 s) after T1, the second a GOP and a batch after T2 at most, the slate's at T3 within 0.1 s.
      for (const i of [1, 2]) {
        const apart = (liveCues[i]?.ts ?? NaN) - (liveCues[i - 1]?.ts ?? NaN);
        assert.ok(apart > 1400 && apart < 3100, `entry ${i}'s cue ${apart} ms after entry ${i - 1}'s, its 2 s give or take those waits`);
      }
      const video = tags.filter((tag: FlvmetaTag) => tag.type === 'video' && tag.videoData?.AVCData?.packetType !== 'AVC sequence header');
      const key = video.find((v) => v.timestamp >= (liveCues[1]?.ts ?? 0) - frameMs && v.videoData?.frameType === 'seekable frame');
      assert.ok(key !== undefined && Math.abs(key.timestamp - (liveCues[1]?.ts ?? NaN)) <= frameMs, `the second entry's cue (${liveCues[1]?.ts} ms) within a frame of its source's first keyframe (${key?.timestamp} ms)`);
    } finally {
      clearTimeout(late);
      await rx?.close();
      await ws.dispose();
      await flv.stop();
      await one.stop();
      await two.stop();
      await (three as Publisher | null)?.stop();
    }
  });
  it('passes over a next live entry whose source has audio only: the slate fills its time, and the warning says why', async () => {
    const one: Publisher = startPublisher(liveFile, t.app.origin.publishUrl('studio4'), { loop: true });
    const radio: Publisher = startPublisher(radioFile, t.app.origin.publishUrl('radio'), { loop: true });
    const ws = wsClient(t.url);
    let rx: RtmpReceiver | null = null;
    try {
      await Promise.all([t.app.origin.waitForPublish('studio4', 10_000), t.app.origin.waitForPublish('radio', 10_000)]);
      const id = await channel('live entry of another shape', { slateVodResourceId: vod.slate });
      const t1 = Math.ceil((Date.now() + 5000) / 100) * 100;
      const t2 = t1 + 2000;
      await gqlOk(t.url, setQuery, { id, i: { fillerVodResourceId: vod.F, entries: [liveEntry(t1, 'studio4', 2), liveEntry(t2, 'radio', 1.5)] } });
      const warnings = watchWarnings(ws, id);
      const started = await startReceived(t, id);
      rx = started.receiver;
      await started.receiver.until(endsWith('slate', 'F'), t2 - Date.now() + 8000, 'the slate, then the filler');
      warnings.dispose();
      const why = `live entry at ${iso(t2)}: the live source has audio only, the playlist audio and video: one publish session cannot switch between them; the slate fills its time`;
      const said = warnings.changes();
      assert.deepEqual(said.filter((w) => w.length > 0), [[why]], 'the reason while the slate fills, and no vaguer warning after it');
      assert.deepEqual(said.at(-1), [], 'cleared when the entry ended');
      assert.equal(await publisherAtOrigin(t, id, false), started.session, 'one publisher connection');
      await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id });
      await started.receiver.close();
      const runs = runsOf(index.known(started.receiver.packets));
      const at = runs.findIndex((r) => r[0]?.name === 'live');
      assert.deepEqual(runs.slice(at, at + 3).map((r) => r[0]?.name), ['live', 'slate', 'F'], `nothing of the audio-only source: ${runs.map((r) => `${r[0]?.name}×${r.length}`).join(' ')}`);
      dtsRising(started.receiver);
    } finally {
      await rx?.close();
      await ws.dispose();
      await one.stop();
      await radio.stop();
    }
  });
  it('fills with the slate, and says so, when the source before a handover is lost; the next source then takes over from the slate', async () => {
    const one: Publisher = startPublisher(liveFile, t.app.origin.publishUrl('studio5'), { loop: true });
    const two: Publisher = startPublisher(live2File, t.app.origin.publishUrl('studio6'), { loop: true });
    const ws = wsClient(t.url);
    let rx: RtmpReceiver | null = null;
    try {
      await Promise.all([t.app.origin.waitForPublish('studio5', 10_000), t.app.origin.waitForPublish('studio6', 10_000)]);
      const id = await channel('source lost before a handover', { slateVodResourceId: vod.slate });
      const t1 = Math.ceil((Date.now() + 5000) / 100) * 100;
      const t2 = t1 + 3000;
      await gqlOk(t.url, setQuery, { id, i: { fillerVodResourceId: vod.F, entries: [liveEntry(t1, 'studio5', 3), liveEntry(t2, 'studio6', 2)] } });
      const warnings = watchWarnings(ws, id);
      const started = await startReceived(t, id);
      rx = started.receiver;
      // The first source is lost 1.5 s before the second's time, while the second is already pulled beside it.
      await started.receiver.until((r) => index.known(r.packets).some((k) => k.name === 'live'), t1 - Date.now() + 3000, 'the first source on air');
      await new Promise((r) => setTimeout(r, Math.max(0, t2 - 1500 - Date.now())));
      await one.stop();
      await started.receiver.until(endsWith('live2', 'F'), t2 - Date.now() + 8000, 'the second source, then the filler');
      warnings.dispose();
      assert.equal(await publisherAtOrigin(t, id, false), started.session, 'one publisher connection');
      await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id });
      await started.receiver.close();
      const runs = runsOf(index.known(started.receiver.packets));
      const said = runs.map((r) => `${r[0]?.name}×${r.length}@${(r[0]?.p.wallMs ?? 0) - t1}`).join(' ');
      console.log(`live entry lost before its handover: ${said} (ms from T1)`);
      const at = runs.findIndex((r) => r[0]?.name === 'live');
      assert.deepEqual(runs.slice(at, at + 4).map((r) => r[0]?.name), ['live', 'slate', 'live2', 'F'], `the slate after the lost source, the next one from its time: ${said}`);
      const onAir = (runs[at + 2]?.[0]?.p.wallMs ?? NaN) - t2;
      assert.ok(onAir > -1000 && onAir < 1000 + liveGopMs, `the second source on air ${onAir} ms from its time`);
      const lost = `live entry at ${iso(t1)}: its source was lost; the slate fills its time`;
      const warned = warnings.changes();
      assert.deepEqual(warned.filter((w) => w.length > 0), [[lost]], 'the loss said while the slate filled');
      assert.deepEqual(warned.at(-1), [], 'and cleared');
      dtsRising(started.receiver);
    } finally {
      await rx?.close();
      await ws.dispose();
      await one.stop();
      await two.stop();
    }
  });
  it('stands the slate in for a live entry whose source is down, with a warning, and goes on with the filler', async () => {
    const id = await channel('live entry away', { slateVodResourceId: vod.slate });
    const t0 = Math.ceil((Date.now() + 3500) / 100) * 100;
    await gqlOk(t.url, setQuery, { id, i: { fillerVodResourceId: vod.F, entries: [liveEntry(t0, 'nobody', 1.5)] } });
    const { receiver, session } = await startReceived(t, id);
    try {
      const warnings = async (): Promise<string[]> => (await gqlOk<{ virtualLive: { warnings: string[] } }>(t.url, `query($id: ID!) { virtualLive(id: $id) { warnings } }`, { id })).virtualLive.warnings;
      await receiver.until((r) => index.known(r.packets).some((k) => k.name === 'slate'), 10_000, 'the slate on air');
      const warned = await warnings();
      assert.ok(warned.some((w) => /^live entry at .*: its source could not be played by its time; the slate fills its time$/.test(w)), `a warning says why: ${JSON.stringify(warned)}`);
      await receiver.until((r) => {
        const runs = runsOf(index.known(r.packets));
        return runs.some((run, i) => i > 0 && run[0]?.name === 'F' && runs[i - 1]?.[0]?.name === 'slate' && run.length >= 25);
      }, 6000, 'the filler after the slate');
      assert.deepEqual(await warnings(), [], 'the warning is cleared when the entry ends');
      assert.equal(await publisherAtOrigin(t, id, false), session, 'one publisher connection');
      await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id });
      await receiver.close();
      const runs = runsOf(index.known(receiver.packets));
      const names = runs.map((r) => r[0]?.name);
      const at = names.indexOf('slate');
      assert.deepEqual(names.slice(at - 1, at + 2), ['F', 'slate', 'F'], `the slate in the entry's place: ${runs.map((r) => `${r[0]?.name}×${r.length}`).join(' ')}`);
      const slateAt = (runs[at]?.[0]?.p.wallMs ?? NaN) - t0;
      const backAt = (runs[at + 1]?.[0]?.p.wallMs ?? NaN) - (t0 + 1500);
      console.log(`programme live entry, source away: the slate at the receiver ${slateAt} ms from its time, the filler ${backAt} ms from its end`);
      assert.ok(Math.abs(slateAt) < 1000 && Math.abs(backAt) < 1000, `the slate ${slateAt} ms from the entry's time, the filler ${backAt} ms from its end`);
      dtsRising(receiver);
    } finally {
      await receiver.close();
    }
  });
});
