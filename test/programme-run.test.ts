/**
 * A channel run from a wall-clock programme (issue #22 item 1), against the
 * real wall clock, judged by an independent receiver: ffprobe playing the
 * origin, each packet told apart by its payload hash (known-packets.ts), the
 * files made at test time with their own tones (H.264 with libx264's
 * B-frames, GOP 1 s, + AAC).
 *
 * The programme, dated, set before the start and edited while it runs:
 *   filler F (1 s) from the start; T0 = now + 3.5 s: A (4 s), cut at T1;
 *   T1 = T0 + 2.5 s: B (2 s) with a 1 s duration, cut there, the filler to T2;
 *   T2 = T0 + 5 s: A, edited to B while B plays (an edit takes effect from the next entry).
 * The receiver must see exactly F, A, B, F, B, F (no flash of another item),
 * each entry's first packet within a GOP of its wall-clock time (figures
 * printed), DTS strictly increasing per track, one publisher connection. The
 * API shows the programme and the guide its entries at their times, a skip
 * is refused; bad input is refused with its code and changes nothing. Each
 * A entry declares an ad break 1 s in: its BREAK cue comes 1 s of media
 * after the entry's ITEM cue (the cues' placement in the stream is judged
 * at an independent receiver by cue-points.test.ts, on the same feeder path).
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { publisherAtOrigin, startReceived, startTestApp, type TestApp } from './helpers/app.js';
import { collect, gqlErrorCode, gqlOk, wsClient } from './helpers/gql.js';
import { ContentIndex, median, runsOf } from './helpers/known-packets.js';
import { makeMp4 } from './helpers/media.js';
import { nonIncreasing } from './helpers/rtmp-receiver.js';

type Name = 'F' | 'A' | 'B';
const gopMs = 1000;
/** Cycles of the run (A, B for 1 s, the filler), 5 s each; PROGRAMME_RUN_CYCLES=60 runs five minutes (README). */
const cycles = Math.max(1, Number(process.env['PROGRAMME_RUN_CYCLES'] ?? 1));
const cycleMs = 5000;

const setQuery = `mutation($id: ID!, $i: ProgrammeInput!) { setProgramme(virtualLiveId: $id, input: $i) { id channelProgramme { timeZone dayStart filler { name } entries { start durationSeconds items { name } breaks { id offsetSeconds durationSeconds } } } } }`;
const readQuery = `query($id: ID!) { virtualLive(id: $id) { status playlist { name } channelProgramme { timeZone dayStart filler { name } entries { start durationSeconds items { name } breaks { id offsetSeconds durationSeconds } } } } }`;

describe('a channel run from a wall-clock programme', () => {
  let t: TestApp;
  const vod: Record<string, string> = {};
  const index = new ContentIndex<Name>();

  before(async () => {
    t = await startTestApp();
    const dir = join(t.mediaRoot, 'prog');
    await mkdir(dir, { recursive: true });
    const files: [string, number, number, number][] = [['F', 1, 300, 320], ['A', 4, 550, 320], ['B', 2, 800, 320], ['small', 1, 900, 160]];
    for (const [name, seconds, toneHz, width] of files) {
      const path = await makeMp4(dir, { name, seconds, toneHz, width, height: width * 0.75, fps: 25 });
      if (name !== 'small') await index.add(name as Name, path);
      const d = await gqlOk<{ registerVodResource: { id: string } }>(t.url, `mutation($i: RegisterVodResourceInput!) { registerVodResource(input: $i) { id } }`, { i: { name, path: `prog/${name}.mp4` } });
      vod[name] = d.registerVodResource.id;
    }
  });

  after(async () => {
    await t?.dispose();
  });

  it('refuses bad programmes with their codes and changes nothing', async () => {
    const made = await gqlOk<{ createVirtualLive: { id: string } }>(t.url, `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`, {
      i: { name: 'refusals', sourceType: 'VOD', vodResourceId: vod['F'], hls: false },
    });
    const id = made.createVirtualLive.id;
    const good = { timeZone: 'Europe/Berlin', dayStart: '06:00', fillerPlaylist: [vod['F'], vod['B']], entries: [{ start: '07:00', vodResourceId: vod['A'], breaks: [{ offsetSeconds: 1.5, durationSeconds: 30, id: 'ad-a' }] }, { start: '20:00:30', playlist: [vod['A'], vod['B']], durationSeconds: 3600 }] };
    const set = await gqlOk<{ setProgramme: { channelProgramme: unknown } }>(t.url, setQuery, { id, i: good });
    const stored = {
      timeZone: 'Europe/Berlin',
      dayStart: '06:00:00',
      filler: [{ name: 'F' }, { name: 'B' }],
      entries: [
        { start: '07:00', durationSeconds: null, items: [{ name: 'A' }], breaks: [{ id: 'ad-a', offsetSeconds: 1.5, durationSeconds: 30 }] },
        { start: '20:00:30', durationSeconds: 3600, items: [{ name: 'A' }, { name: 'B' }], breaks: [] },
      ],
    };
    assert.deepEqual(set.setProgramme.channelProgramme, stored);
    const bad: [string, Record<string, unknown>, string][] = [
      ['unknown zone', { ...good, timeZone: 'Mars/Olympus' }, 'BAD_USER_INPUT'],
      ['unsorted', { ...good, entries: [good.entries[1], good.entries[0]] }, 'BAD_USER_INPUT'],
      ['overlapping', { ...good, entries: [{ start: '07:00', vodResourceId: vod['A'], durationSeconds: 7200 }, { start: '08:00', vodResourceId: vod['B'] }] }, 'BAD_USER_INPUT'],
      ['live source without a duration', { ...good, entries: [{ start: '07:00', sourceUrl: 'rtmp://127.0.0.1/live/x' }] }, 'BAD_USER_INPUT'],
      ['unknown VOD', { ...good, entries: [{ start: '07:00', vodResourceId: 'cmnosuchvod0000000000000' }] }, 'NOT_FOUND'],
      ['unknown filler', { ...good, fillerPlaylist: [vod['F'], 'cmnosuchvod0000000000000'] }, 'NOT_FOUND'],
      ['two fillers', { ...good, fillerVodResourceId: vod['F'] }, 'BAD_USER_INPUT'],
      ['no filler', { ...good, fillerPlaylist: null }, 'BAD_USER_INPUT'],
      ['incompatible', { ...good, entries: [{ start: '07:00', vodResourceId: vod['small'] }] }, 'INCOMPATIBLE_MEDIA'],
      ['breaks on a playlist entry', { ...good, entries: [{ start: '07:00', playlist: [vod['A']], breaks: [{ offsetSeconds: 1, durationSeconds: 30 }] }] }, 'BAD_USER_INPUT'],
      ['a break past the file', { ...good, entries: [{ start: '07:00', vodResourceId: vod['A'], breaks: [{ offsetSeconds: 5, durationSeconds: 30 }] }] }, 'BAD_USER_INPUT'],
      ['a break past the duration', { ...good, entries: [{ start: '07:00', vodResourceId: vod['A'], durationSeconds: 1, breaks: [{ offsetSeconds: 2, durationSeconds: 30 }] }] }, 'BAD_USER_INPUT'],
    ];
    for (const [what, i, code] of bad) assert.equal(await gqlErrorCode(t.url, setQuery, { id, i }), code, what);
    assert.equal(await gqlErrorCode(t.url, setQuery, { id: 'cmnosuchchannel000000000', i: good }), 'NOT_FOUND');
    const online = await gqlOk<{ createVirtualLive: { id: string } }>(t.url, `mutation { createVirtualLive(input: { name: "relay", sourceType: ONLINE, sourceUrl: "rtmp://127.0.0.1:1/live/x" }) { id } }`);
    assert.equal(await gqlErrorCode(t.url, setQuery, { id: online.createVirtualLive.id, i: good }), 'WRONG_SOURCE_TYPE');
    const after = await gqlOk<{ virtualLive: { channelProgramme: unknown; playlist: { name: string }[] } }>(t.url, readQuery, { id });
    assert.deepEqual(after.virtualLive.channelProgramme, stored, 'refused input changed nothing');
    assert.deepEqual(after.virtualLive.playlist.map((v) => v.name), ['F', 'B', 'A'], 'the playlist is the programme\'s items, the filler first');
    const cleared = await gqlOk<{ clearProgramme: { channelProgramme: unknown; playlist: { name: string }[] } }>(t.url, `mutation($id: ID!) { clearProgramme(virtualLiveId: $id) { channelProgramme { timeZone } playlist { name } } }`, { id });
    assert.deepEqual(cleared.clearProgramme, { channelProgramme: null, playlist: [{ name: 'F' }] });
  });

  it('starts each entry within a GOP of its wall-clock time, cuts, fills and takes an edit from the next entry', async () => {
    const made = await gqlOk<{ createVirtualLive: { id: string } }>(t.url, `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`, {
      i: { name: 'programme', sourceType: 'VOD', vodResourceId: vod['F'], hls: false },
    });
    const id = made.createVirtualLive.id;
    const t0 = Math.ceil((Date.now() + 3500) / 100) * 100;
    const iso = (ms: number): string => new Date(ms).toISOString();
    // Each cycle: A at +0 (cut at +2.5), B at +2.5 for 1 s, the filler to the next cycle; then the last entry.
    const times: { at: number; name: Name; what: string }[] = [];
    for (let c = 0; c < cycles; c++) {
      times.push({ at: t0 + c * cycleMs, name: 'A', what: `A at T${2 * c}` }, { at: t0 + c * cycleMs + 2500, name: 'B', what: `B at T${2 * c + 1} (A cut)` });
    }
    const lastAt = t0 + cycles * cycleMs;
    const entries = (last: Name) => [
      ...times.map((x, i) => ({ start: iso(x.at), vodResourceId: vod[x.name], ...(x.name === 'B' ? { durationSeconds: 1 } : { breaks: [{ offsetSeconds: 1, durationSeconds: 30, id: `ad-${i}` }] }) })),
      { start: iso(lastAt), vodResourceId: vod[last] },
    ];
    await gqlOk(t.url, setQuery, { id, i: { fillerVodResourceId: vod['F'], entries: entries('A') } });
    const ws = wsClient(t.url);
    type Cue = { kind: string; id: string; mediaTimeSeconds: number };
    const events = collect<{ virtualLiveStatusChanged: { nowPlaying: { item: { name: string }; startedAt: string; endsAt: string } | null; cuePoint: Cue | null } }>(
      ws,
      `subscription($id: ID) { virtualLiveStatusChanged(id: $id) { nowPlaying { item { name } startedAt endsAt } cuePoint { kind id mediaTimeSeconds } } }`,
      { id },
    );
    const { receiver: rx, session } = await startReceived(t, id);
    try {
      // The guide shows the entries at their wall-clock times.
      const guide = await gqlOk<{ programme: { start: string; stop: string; title: string; kind: string; breaks: { id: string; at: string }[] }[] }>(
        t.url,
        `query($id: ID!) { programme(id: $id) { start stop title kind breaks { id at } } }`,
        { id },
      );
      const planned = guide.programme.filter((e) => e.kind === 'PLANNED');
      const firstA = planned.find((e) => e.title === 'A' && Date.parse(e.start) === t0);
      assert.deepEqual(firstA?.breaks.map((b) => [b.id, Date.parse(b.at) - t0]), [['ad-0', 1000]], 'the guide places the entry\'s break 1 s after its start');
      for (const x of [...times.slice(0, 2), { at: lastAt, name: 'A' }]) {
        assert.ok(planned.some((e) => e.title === x.name && Date.parse(e.start) === x.at), `the guide plans ${x.name} at ${iso(x.at)}: ${JSON.stringify(planned)}`);
      }
      assert.ok(planned.some((e) => e.title === 'B' && Date.parse(e.stop) === t0 + 3500), 'B stops at its duration');
      assert.ok(planned.some((e) => e.title === 'F' && Date.parse(e.start) === t0 + 3500 && Date.parse(e.stop) === t0 + cycleMs), 'the filler fills to the next entry');
      // While the first B plays: the last entry becomes B, from the next entry on.
      await rx.until((r) => index.known(r.packets).some((k) => k.name === 'B'), 12_000, 'B on air');
      await gqlOk(t.url, setQuery, { id, i: { fillerVodResourceId: vod['F'], entries: entries('B') } });
      // The programme decides what plays: no skip or jump.
      assert.equal(await gqlErrorCode(t.url, `mutation($id: ID!) { skipVirtualLive(id: $id) { index } }`, { id }), 'INVALID_STATE');
      await rx.until((r) => (r.packets.at(-1)?.wallMs ?? 0) > lastAt + 2300, cycles * cycleMs + 12_000, 'the programme played');
      assert.equal(await publisherAtOrigin(t, id, false), session, 'one publisher connection from start to end');
    } finally {
      await rx.close();
      await ws.dispose();
    }
    times.push({ at: lastAt, name: 'B', what: `B at T${2 * cycles} (edited)` });
    const runs = runsOf(index.known(rx.packets));
    const order = runs.map((r) => r[0]?.name);
    const expected = ['F', ...Array.from({ length: cycles }, () => ['A', 'B', 'F']).flat(), 'B', 'F'];
    assert.deepEqual(order, expected, `items in programme order, nothing else: ${runs.map((r) => `${r[0]?.name}×${r.length}`).join(' ')}`);
    // Where each entry starts: its first packet at the receiver, and on air at the origin's socket (the worker's startedAt).
    const atReceiver: number[] = [];
    const onAir: number[] = [];
    const entryRuns = runs.filter((_, i) => i > 0 && runs[i]?.[0]?.name !== 'F');
    times.forEach((x, i) => {
      const first = entryRuns[i]?.[0];
      assert.ok(first !== undefined && first.name === x.name, `${x.what}: its run`);
      const off = first.p.wallMs - x.at;
      atReceiver.push(off);
      assert.ok(Math.abs(off) < gopMs, `${x.what}: first packet ${off} ms from its wall-clock time (a GOP is ${gopMs} ms)`);
      const reports = events.events.map((e) => e.virtualLiveStatusChanged.nowPlaying).filter((n) => n !== null && n.item.name === x.name);
      const report = reports.reduce<(typeof reports)[number] | null>((a, b) => (a === null || Math.abs(Date.parse(b?.startedAt ?? '') - x.at) < Math.abs(Date.parse(a.startedAt) - x.at) ? b : a), null);
      const near = Date.parse(report?.startedAt ?? '') - x.at;
      onAir.push(near);
      assert.ok(near > -gopMs && near <= 5, `${x.what}: on air ${near} ms from its time (within a GOP before it, never after)`);
      // Its end as announced: where the programme cuts it (A: the next entry; B: its 1 s).
      const cutAt = x.what.includes('edited') ? null : x.at + (x.name === 'A' ? 2500 : 1000);
      if (cutAt !== null) {
        const endOff = Date.parse(report?.endsAt ?? '') - cutAt;
        assert.ok(endOff > -gopMs && endOff <= 5, `${x.what}: endsAt ${endOff} ms from its cut`);
      }
    });
    const fills = runs.filter((r, i) => i > 0 && r[0]?.name === 'F' && runs[i - 1]?.[0]?.name === 'B').slice(0, cycles);
    fills.forEach((r, c) => {
      const off = (r[0]?.p.wallMs ?? 0) - (t0 + c * cycleMs + 3500);
      assert.ok(Math.abs(off) < gopMs, `cycle ${c}: B cut at its duration, the filler ${off} ms from its time`);
    });
    for (const kind of ['video', 'audio'] as const) {
      const dts = rx.packets.filter((p) => p.kind === kind && p.dts !== null).map((p) => p.dts ?? 0);
      assert.deepEqual(nonIncreasing(dts), [], `${kind} DTS strictly increasing`);
    }
    // Each A entry's break: a BREAK cue 1 s of media after the entry's ITEM cue; the filler and B (no breaks) have none.
    const cues = events.events.map((e) => e.virtualLiveStatusChanged.cuePoint).filter((c): c is Cue => c !== null);
    const breaks = cues.filter((c) => c.kind === 'BREAK');
    assert.deepEqual(breaks.map((c) => c.id), times.flatMap((x, i) => (x.name === 'A' ? [`ad-${i}`] : [])), 'one break cue per A entry, with its id');
    for (const b of breaks) {
      const item = cues.filter((c) => c.kind === 'ITEM' && c.mediaTimeSeconds <= b.mediaTimeSeconds).at(-1);
      assert.ok(item !== undefined && Math.abs(b.mediaTimeSeconds - item.mediaTimeSeconds - 1) < 0.0015, `${b.id} 1 s after its entry's start: ${JSON.stringify([item, b])}`);
    }
    const range = (xs: number[]): string => `${Math.min(...xs)} / ${median(xs)} / ${Math.max(...xs)} ms`;
    console.log(`programme run, ${times.length} entries over ${Math.round((lastAt - t0) / 1000) + 2} s: first packet at the receiver − entry time (min / median / max) ${range(atReceiver)}; on air (startedAt) − entry time ${range(onAir)}`);
  });
});
