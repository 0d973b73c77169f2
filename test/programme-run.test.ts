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
 * API shows the programme and the guide its entries at their times; bad
 * input is refused with its code and changes nothing.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { publisherAtOrigin, startReceived, startTestApp, type TestApp } from './helpers/app.js';
import { gqlErrorCode, gqlOk } from './helpers/gql.js';
import { ContentIndex, runsOf } from './helpers/known-packets.js';
import { makeMp4 } from './helpers/media.js';
import { nonIncreasing } from './helpers/rtmp-receiver.js';

type Name = 'F' | 'A' | 'B';
const gopMs = 1000;

const setQuery = `mutation($id: ID!, $i: ProgrammeInput!) { setProgramme(virtualLiveId: $id, input: $i) { id channelProgramme { timeZone dayStart filler { name } entries { start durationSeconds items { name } } } } }`;
const readQuery = `query($id: ID!) { virtualLive(id: $id) { status playlist { name } channelProgramme { timeZone dayStart filler { name } entries { start durationSeconds items { name } } } } }`;

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
    const good = { timeZone: 'Europe/Berlin', dayStart: '06:00', fillerVodResourceId: vod['F'], entries: [{ start: '07:00', vodResourceId: vod['A'] }, { start: '20:00:30', playlist: [vod['A'], vod['B']], durationSeconds: 3600 }] };
    const set = await gqlOk<{ setProgramme: { channelProgramme: unknown } }>(t.url, setQuery, { id, i: good });
    const stored = {
      timeZone: 'Europe/Berlin',
      dayStart: '06:00:00',
      filler: { name: 'F' },
      entries: [
        { start: '07:00', durationSeconds: null, items: [{ name: 'A' }] },
        { start: '20:00:30', durationSeconds: 3600, items: [{ name: 'A' }, { name: 'B' }] },
      ],
    };
    assert.deepEqual(set.setProgramme.channelProgramme, stored);
    const bad: [string, Record<string, unknown>, string][] = [
      ['unknown zone', { ...good, timeZone: 'Mars/Olympus' }, 'BAD_USER_INPUT'],
      ['unsorted', { ...good, entries: [good.entries[1], good.entries[0]] }, 'BAD_USER_INPUT'],
      ['overlapping', { ...good, entries: [{ start: '07:00', vodResourceId: vod['A'], durationSeconds: 7200 }, { start: '08:00', vodResourceId: vod['B'] }] }, 'BAD_USER_INPUT'],
      ['live source', { ...good, entries: [{ start: '07:00', sourceUrl: 'rtmp://127.0.0.1/live/x' }] }, 'BAD_USER_INPUT'],
      ['unknown VOD', { ...good, entries: [{ start: '07:00', vodResourceId: 'cmnosuchvod0000000000000' }] }, 'NOT_FOUND'],
      ['unknown filler', { ...good, fillerVodResourceId: 'cmnosuchvod0000000000000' }, 'NOT_FOUND'],
      ['incompatible', { ...good, entries: [{ start: '07:00', vodResourceId: vod['small'] }] }, 'INCOMPATIBLE_MEDIA'],
    ];
    for (const [what, i, code] of bad) assert.equal(await gqlErrorCode(t.url, setQuery, { id, i }), code, what);
    assert.equal(await gqlErrorCode(t.url, setQuery, { id: 'cmnosuchchannel000000000', i: good }), 'NOT_FOUND');
    const online = await gqlOk<{ createVirtualLive: { id: string } }>(t.url, `mutation { createVirtualLive(input: { name: "relay", sourceType: ONLINE, sourceUrl: "rtmp://127.0.0.1:1/live/x" }) { id } }`);
    assert.equal(await gqlErrorCode(t.url, setQuery, { id: online.createVirtualLive.id, i: good }), 'WRONG_SOURCE_TYPE');
    const after = await gqlOk<{ virtualLive: { channelProgramme: unknown; playlist: { name: string }[] } }>(t.url, readQuery, { id });
    assert.deepEqual(after.virtualLive.channelProgramme, stored, 'refused input changed nothing');
    assert.deepEqual(after.virtualLive.playlist.map((v) => v.name), ['F', 'A', 'B'], 'the playlist is the programme\'s items, the filler first');
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
    const times = [t0, t0 + 2500, t0 + 5000];
    const entries = (third: Name) => [
      { start: iso(times[0] ?? 0), vodResourceId: vod['A'] },
      { start: iso(times[1] ?? 0), vodResourceId: vod['B'], durationSeconds: 1 },
      { start: iso(times[2] ?? 0), vodResourceId: vod[third] },
    ];
    await gqlOk(t.url, setQuery, { id, i: { fillerVodResourceId: vod['F'], entries: entries('A') } });
    const { receiver: rx, session } = await startReceived(t, id);
    try {
      // The guide shows the entries at their wall-clock times.
      const guide = await gqlOk<{ programme: { start: string; stop: string; title: string; kind: string }[] }>(t.url, `query($id: ID!) { programme(id: $id) { start stop title kind } }`, { id });
      const planned = guide.programme.filter((e) => e.kind === 'PLANNED');
      for (const [at, title] of [[times[0], 'A'], [times[1], 'B'], [times[2], 'A']] as const) {
        assert.ok(planned.some((e) => e.title === title && Date.parse(e.start) === at), `the guide plans ${title} at ${iso(at ?? 0)}: ${JSON.stringify(planned)}`);
      }
      assert.ok(planned.some((e) => e.title === 'B' && Date.parse(e.stop) === (times[1] ?? 0) + 1000), 'B stops at its duration');
      assert.ok(planned.some((e) => e.title === 'F' && Date.parse(e.start) === (times[1] ?? 0) + 1000 && Date.parse(e.stop) === times[2]), 'the filler fills to the next entry');
      // While B plays: the third entry becomes B, from the next entry on.
      await rx.until((r) => index.known(r.packets).some((k) => k.name === 'B'), 12_000, 'B on air');
      await gqlOk(t.url, setQuery, { id, i: { fillerVodResourceId: vod['F'], entries: entries('B') } });
      const end = (times[2] ?? 0) + 2300;
      await rx.until((r) => (r.packets.at(-1)?.wallMs ?? 0) > end, 12_000, 'the programme played');
      assert.equal(await publisherAtOrigin(t, id, false), session, 'one publisher connection from start to end');
    } finally {
      await rx.close();
    }
    const seen = index.known(rx.packets);
    const runs = runsOf(seen);
    const order = runs.map((r) => r[0]?.name);
    assert.deepEqual(order, ['F', 'A', 'B', 'F', 'B', 'F'], `items in programme order, nothing else: ${runs.map((r) => `${r[0]?.name}×${r.length}`).join(' ')}`);
    const figures: string[] = [];
    for (const [run, at, what] of [[runs[1], times[0], 'A at T0'], [runs[2], times[1], 'B at T1 (A cut)'], [runs[4], times[2], 'B at T2 (edited)']] as const) {
      const first = run?.[0];
      assert.ok(first !== undefined && at !== undefined);
      const off = first.p.wallMs - at;
      figures.push(`${what}: first packet ${off} ms from its time`);
      assert.ok(Math.abs(off) < gopMs, `${what}: first packet ${off} ms from its wall-clock time (a GOP is ${gopMs} ms)`);
    }
    const fillAt = runs[3]?.[0]?.p.wallMs ?? 0;
    figures.push(`filler after B's 1 s: ${fillAt - (times[1] ?? 0) - 1000} ms from its time`);
    assert.ok(Math.abs(fillAt - (times[1] ?? 0) - 1000) < gopMs, 'B is cut at its duration');
    for (const kind of ['video', 'audio'] as const) {
      const dts = rx.packets.filter((p) => p.kind === kind && p.dts !== null).map((p) => p.dts ?? 0);
      assert.deepEqual(nonIncreasing(dts), [], `${kind} DTS strictly increasing`);
    }
    console.log(`programme run: ${figures.join('; ')}`);
  });
});
