/**
 * The worker's programme clock (src/worker/programme-clock.ts) driving a real
 * timeline (VodTimeline) over a day compressed into 72 s of output: 24
 * "hours" of 3 s, with an injected wall clock that runs 0.1 % off the
 * output's pacing clock (86 s a day, far more than a real clock drifts).
 * Files made at test time with libx264's B-frames (GOP 1 s): entries shorter
 * than their slot (the filler fills the gap, cut at the next entry), longer
 * than it (cut at the last clean cut before the next entry), with a
 * duration (cut at it, then the filler), a two-item playlist that overruns.
 * Asserted from the timeline's own steps: every entry opens with its item,
 * on a keyframe, no later than its wall-clock time and less than one GOP
 * before it (no drift, however many entries), DTS strictly increasing per
 * track, and a programme edited mid-run takes effect from its next entry.
 * Then a channel put on a programme while it plays something else, in the
 * middle of an entry: the item playing ends at its next clean cut and the
 * entry plays from its beginning. Last, live-source slots: the item before
 * is cut at the slot's time and the timeline stops there, the LiveRun is
 * planned to the slot's end or the next slot's start (whichever is first),
 * and the programme goes on from there (the filler, or the next entry); a
 * channel that joins a live slot under way starts it at its next clean cut.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../src/log.js';
import type { ProgrammeSlot, ProgrammeSpec } from '../src/pool/pipeline-spec.js';
import { MediaCache } from '../src/worker/media-cache.js';
import { applyProgramme, itemOf, ProgrammeClock, turnAt } from '../src/worker/programme-clock.js';
import { VodTimeline, type ItemMedia } from '../src/worker/vod-timeline.js';
import type { LiveFollower, LiveRunPlan } from '../src/worker/live-run.js';
import { makeMp4 } from './helpers/media.js';

const gopMs = 1000;
const hourMs = 3000;
/** The wall clock at output time 0, and how fast it runs against the output's clock. */
const wallZero = Date.parse('2026-12-06T00:00:00Z');
const drift = 0.001;

describe('programme clock over a compressed day', () => {
  let dir: string;
  const items: ItemMedia[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vlive-prog-'));
    const cache = new MediaCache();
    for (const [name, seconds, toneHz] of [['filler', 1, 300], ['short', 2, 440], ['long', 4, 660], ['tail', 1.6, 880]] as const) {
      const path = await makeMp4(dir, { name, width: 160, height: 120, fps: 25, seconds, toneHz });
      items.push(await cache.load({ id: name, path }));
    }
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** The list turned round to start at item `id`, so that a timeline plays it first. */
  const from = (id: string | undefined): ItemMedia[] => {
    const i = Math.max(0, items.findIndex((x) => x.id === id));
    return [...items.slice(i), ...items.slice(0, i)];
  };

  /** Slot h of the day: short (gap), long (cut), long with 2 s (cut, then filler), short+tail (cut at the next). */
  function slot(h: number, kind = h % 4): ProgrammeSlot {
    const startMs = wallZero + 1500 + h * hourMs;
    const nextMs = startMs + hourMs;
    if (kind === 0) return { startMs, endMs: nextMs, items: ['short'] };
    if (kind === 1) return { startMs, endMs: nextMs, items: ['long'] };
    if (kind === 2) return { startMs, endMs: startMs + 2000, items: ['long'] };
    return { startMs, endMs: nextMs, items: ['short', 'tail'] };
  }

  it('keeps every entry within a GOP before its time, for a whole day, with the filler in the gaps', () => {
    const spec: ProgrammeSpec = { filler: ['filler'], slots: Array.from({ length: 24 }, (_, h) => slot(h)) };
    const first = itemOf(spec, turnAt(spec, wallZero));
    assert.equal(first, 'filler', 'before the first entry: the filler');
    const t = new VodTimeline({ items: from(first), loop: true });
    let outputMs = 0;
    // The wall clock of output time 0 as the worker would read it now: it moves with the drift.
    const clock = new ProgrammeClock({ channelId: 'c', timeline: t, epochZeroMs: () => wallZero + outputMs * drift, log: createLogger() }, spec, turnAt(spec, wallZero));
    clock.replace(spec);
    const opened: { id: string; startMs: number; wallMs: number; keyframe: boolean }[] = [];
    const last = new Map<string, number>();
    let pendingOpen: { id: string; startMs: number } | null = { id: first, startMs: 0 };
    let edited = false;
    for (let guard = 0; guard < 400_000 && outputMs < 24 * hourMs + 2000; guard++) {
      const s = t.next();
      if (s.kind === 'boundary') {
        clock.onBoundary(s);
        pendingOpen = { id: s.nextItem.id, startMs: s.startMs };
        continue;
      }
      if (s.kind !== 'sample') continue;
      const prev = last.get(s.track);
      assert.ok(prev === undefined || s.dtsMs > prev, `${s.track} DTS strictly increasing at ${s.dtsMs} ms (after ${prev})`);
      last.set(s.track, s.dtsMs);
      outputMs = s.dtsMs;
      if (pendingOpen !== null && s.track === 'video') {
        opened.push({ ...pendingOpen, wallMs: wallZero + outputMs * drift + pendingOpen.startMs, keyframe: s.keyframe });
        pendingOpen = null;
      }
      // Hour 20: the programme is edited; hour 21 on becomes 'tail' only, from the next entry.
      if (!edited && outputMs > 1500 + 20 * hourMs + 500) {
        edited = true;
        clock.replace({ filler: ['filler'], slots: spec.slots.map((x, h) => (h >= 21 ? { ...x, items: ['tail'] } : x)) });
      }
    }
    assert.ok(opened.every((o) => o.keyframe), 'every item opens on a keyframe');
    const offsets: number[] = [];
    for (let h = 0; h < 24; h++) {
      const s = slot(h);
      // The item that opens nearest the slot's start is the entry's.
      const o = opened.reduce((best, x) => (Math.abs(x.wallMs - s.startMs) < Math.abs(best.wallMs - s.startMs) ? x : best));
      const want = h >= 21 ? 'tail' : s.items[0];
      assert.equal(o.id, want, `hour ${h}: its entry's item opens`);
      const off = o.wallMs - s.startMs;
      offsets.push(off);
      assert.ok(off <= 5 && off > -gopMs, `hour ${h}: opens ${off.toFixed(0)} ms from its time (within a GOP before it)`);
    }
    // The gaps: filler after a short entry (2 s in a 3 s slot) and after the 2 s duration.
    const between = (h: number): string[] => opened.filter((o) => o.wallMs > slot(h).startMs + 100 && o.wallMs < slot(h + 1).startMs - 100).map((o) => o.id);
    assert.deepEqual(between(0), ['filler'], 'a short entry: the filler fills to the next');
    assert.deepEqual(between(1), [], 'a long entry: cut at the next, nothing between');
    assert.deepEqual(between(2), ['filler'], 'a duration: cut, then the filler');
    assert.deepEqual(between(3), ['tail'], 'a playlist: its second item, cut at the next');
    console.log(`entry start - wall-clock time, ms: min ${Math.min(...offsets).toFixed(0)}, max ${Math.max(...offsets).toFixed(0)}`);
  });

  it('plays a filler playlist in turn, cut for the next entry', () => {
    const spec: ProgrammeSpec = { filler: ['filler', 'tail'], slots: [{ startMs: wallZero + 6000, endMs: wallZero + 9000, items: ['short'] }] };
    const t = new VodTimeline({ items: from('filler'), loop: true });
    const clock = new ProgrammeClock({ channelId: 'c', timeline: t, epochZeroMs: () => wallZero, log: createLogger() }, spec, turnAt(spec, wallZero));
    clock.replace(spec);
    const opened: string[] = ['filler'];
    let startMs = 0;
    for (let guard = 0; guard < 100_000 && opened.length < 6; guard++) {
      const s = t.next();
      if (s.kind !== 'boundary') continue;
      clock.onBoundary(s);
      opened.push(s.nextItem.id);
      startMs = s.startMs;
    }
    // 1 + 1.6 + 1 + 1.6 s, then the filler's first item cut at 6 s, then the entry.
    assert.deepEqual(opened, ['filler', 'tail', 'filler', 'tail', 'filler', 'short']);
    assert.ok(startMs <= 6000 && startMs > 6000 - gopMs, `the entry opens at ${startMs} ms`);
  });

  it('joins a running channel: during an entry, from the next clean cut, where the entry would be; otherwise the item plays to the next entry', () => {
    const spec: ProgrammeSpec = { filler: ['filler'], slots: [slot(0, 1), slot(1, 0)] };
    // [case, join at, the item that follows, at most this long after the join (ms), where in it it starts (ms, range)]
    for (const [what, atMs, want, byMs, from0, from1] of [
      ['0.5 s into the first entry', wallZero + 2000, 'long', 200, 0, 0],
      // 2.3 s into 'long' by its next clean cut: from its keyframe at 2 s (GOP 1 s).
      ['2.3 s into the first entry', wallZero + 3800, 'long', 200, 1900, 2100],
      // The item playing would end 0.7 s after the join, 0.2 s after the first entry's start: cut for it.
      ['before the first entry', wallZero + 1000, 'long', 600, 0, 0],
    ] as const) {
      // The list plays in its order from 'tail' (1.6 s): 50 video frames out, the next item (the filler, 1 s) is 0.3 s in.
      const t = new VodTimeline({ items: from('tail'), loop: true });
      let outputMs = 0;
      let video = 0;
      while (video < 50) {
        const s = t.next();
        if (s.kind === 'sample' && s.track === 'video') [video, outputMs] = [video + 1, s.dtsMs];
      }
      // As a worker takes its first programme (channel-pipeline.ts's setItems).
      const clock = applyProgramme(null, spec, { channelId: 'c', timeline: t, epochZeroMs: () => atMs - outputMs, log: createLogger() }, atMs);
      assert.ok(clock !== null);
      for (let guard = 0; guard < 10_000; guard++) {
        const s = t.next();
        if (s.kind !== 'boundary') continue;
        assert.equal(s.nextItem.id, want, `${what}: the entry's item follows`);
        assert.ok(s.startMs - outputMs <= byMs, `${what}: it opens ${s.startMs - outputMs} ms after the join (at most ${byMs})`);
        assert.ok(s.fromMs >= from0 && s.fromMs <= from1, `${what}: it starts ${s.fromMs} ms into the item`);
        assert.ok(s.gapSeconds < 0.1, `${what}: no hole at the join (${s.gapSeconds} s)`);
        break;
      }
    }
  });
  it('hands a live-source slot to a LiveRun at its time, to its end or the next entry, and goes on as after a VOD entry', () => {
    const source = { label: 'primary', protocol: 'rtmp', url: 'rtmp://127.0.0.1/live/x', connectTimeoutMs: 5000, rtspTransport: 'tcp', transcode: 'auto' } as const;
    const live = (startMs: number, endMs: number): ProgrammeSlot => ({ startMs: wallZero + startMs, endMs: wallZero + endMs, items: [], live: { id: 'entry-live', source } });
    // [case, the live slot's end (ms), what comes back after it, when (output ms)]
    for (const [what, endMs, back, backMs] of [
      ['its duration first', 4500, 'filler', 4500],
      ['the next entry first', 7000, 'short', 6000],
    ] as const) {
      const spec: ProgrammeSpec = { filler: ['filler'], slots: [live(2500, endMs), { startMs: wallZero + 6000, endMs: wallZero + 9000, items: ['short'] }] };
      const t = new VodTimeline({ items: from('filler'), loop: true });
      const plans: LiveRunPlan[] = [];
      const clock = new ProgrammeClock({ channelId: 'c', timeline: t, epochZeroMs: () => wallZero, log: createLogger(), startLive: (p) => plans.push(p) }, spec, turnAt(spec, wallZero));
      clock.replace(spec);
      let ended = false;
      for (let guard = 0; guard < 100_000 && !ended; guard++) {
        const s = t.next();
        if (s.kind === 'boundary') clock.onBoundary(s);
        ended = s.kind === 'end';
      }
      assert.ok(ended, `${what}: the timeline stops for the live source`);
      const plan = plans[0];
      assert.equal(plans.length, 1, `${what}: one run`);
      assert.ok(plan !== undefined && plan.fromMs <= 2500 && plan.fromMs > 2500 - gopMs, `${what}: from the item's cut, within a GOP before its time (${plan?.fromMs})`);
      assert.equal(plan.untilMs, Math.min(endMs, 6000), `${what}: to its end or the next entry's start`);
      assert.deepEqual([plan.ref.itemId, plan.source.url, plan.nextRef?.itemId], ['entry-live', source.url, back], `${what}: what follows it`);
      // The run's end, as vod-cut-in.ts returns: the next item from its start, after the source's last tags.
      t.resumeAt(plan.nextPosition, 0, { video: plan.untilMs, audio: plan.untilMs });
      const opened: { id: string; startMs: number }[] = [];
      for (let guard = 0; guard < 100_000 && opened.length < 3; guard++) {
        const s = t.next();
        if (s.kind !== 'boundary') continue;
        clock.onBoundary(s);
        opened.push({ id: s.nextItem.id, startMs: s.startMs });
      }
      assert.equal(opened[0]?.id, back, `${what}: ${back} comes back`);
      assert.ok((opened[0]?.startMs ?? 0) >= plan.untilMs && (opened[0]?.startMs ?? Infinity) < backMs + 100, `${what}: at ${opened[0]?.startMs} ms, after the source`);
      if (back === 'filler') assert.ok(opened.some((o) => o.id === 'short' && o.startMs <= 6000 && o.startMs > 6000 - gopMs), `${what}: then the next entry on time: ${JSON.stringify(opened)}`);
    }
  });

  it('makes live-source slots that follow each other one run, each next one asked for from the programme as it is then', () => {
    const source = (name: string) => ({ label: 'primary', protocol: 'rtmp', url: `rtmp://127.0.0.1/live/${name}`, connectTimeoutMs: 5000, rtspTransport: 'tcp', transcode: 'auto' }) as const;
    const live = (id: string, startMs: number, endMs: number): ProgrammeSlot => ({ startMs: wallZero + startMs, endMs: wallZero + endMs, items: [], live: { id, source: source(id) } });
    const short = (startMs: number): ProgrammeSlot => ({ startMs: wallZero + startMs, endMs: wallZero + startMs + 1000, items: ['short'] });
    // a (2.5–4.5 s), b right after it to c's start, c to 8 s; short 4 s later, not part of the run.
    const spec: ProgrammeSpec = { filler: ['filler'], slots: [live('a', 2500, 4500), live('b', 4500, 9000), live('c', 7000, 8000), short(12_000)] };
    const t = new VodTimeline({ items: from('filler'), loop: true });
    const plans: LiveRunPlan[] = [];
    const clock = new ProgrammeClock({ channelId: 'c', timeline: t, epochZeroMs: () => wallZero, log: createLogger(), startLive: (p) => plans.push(p) }, spec, turnAt(spec, wallZero));
    clock.replace(spec);
    for (let guard = 0; guard < 100_000; guard++) {
      const s = t.next();
      if (s.kind === 'boundary') clock.onBoundary(s);
      if (s.kind === 'end') break;
    }
    assert.equal(plans.length, 1, 'one run for the entries that follow each other');
    const follower = (p: LiveRunPlan | undefined): LiveFollower | undefined => p?.then?.();
    const liveOf = (f: LiveFollower | undefined): LiveRunPlan | undefined => (f !== undefined && 'live' in f ? f.live : undefined);
    const a = plans[0];
    const b = liveOf(follower(a));
    const c = liveOf(follower(b));
    const end = follower(c);
    assert.ok(a !== undefined && b !== undefined && c !== undefined, 'a, then b, then c');
    assert.ok(end !== undefined && !('live' in end), 'nothing live after c');
    assert.deepEqual([a.source.url, b.source.url, c.source.url], [source('a').url, source('b').url, source('c').url]);
    assert.ok(a.fromMs <= 2500 && a.fromMs > 2500 - gopMs, `a from the item's cut (${a.fromMs})`);
    assert.deepEqual([a.untilMs, b.fromMs, b.untilMs, c.fromMs, c.untilMs], [4500, 4500, 7000, 7000, 8000], 'each to its end or the next entry, the next from there');
    assert.deepEqual([a.nextRef?.itemId, b.nextRef?.itemId, c.nextRef?.itemId], ['b', 'c', 'filler'], 'each names what comes next');
    assert.equal(t.itemAt(end.nextPosition)?.id, 'filler', 'the filler after the last: the next entry is 4 s later');

    // An edit while b is on air: c is gone, and a VOD entry starts where b ends. Asked at b's pre-roll of what follows, the run ends with b.
    clock.replace({ ...spec, slots: [live('a', 2500, 4500), live('b', 4500, 7000), short(7000)] });
    const edited = follower(b);
    assert.ok(edited !== undefined && !('live' in edited), 'no live entry after b any more');
    assert.equal(t.itemAt(edited.nextPosition)?.id, 'short', 'the new entry after b, as after a VOD entry');

    // The programme taken off the channel: a run on air hands over to nothing more (a would have b).
    assert.equal(applyProgramme(clock, null, { channelId: 'c', timeline: t, epochZeroMs: () => wallZero, log: createLogger() }), null);
    const retired = follower(a);
    assert.ok(retired !== undefined && !('live' in retired), 'no live entry after a once the programme is gone');
  });

  it('starts a live-source slot at the next clean cut when a channel joins it under way', () => {
    const source = { label: 'primary', protocol: 'rtmp', url: 'rtmp://127.0.0.1/live/x', connectTimeoutMs: 5000, rtspTransport: 'tcp', transcode: 'auto' } as const;
    const spec: ProgrammeSpec = { filler: ['filler'], slots: [{ startMs: wallZero, endMs: wallZero + 60_000, items: [], live: { id: 'entry-live', source } }] };
    const t = new VodTimeline({ items: from('long'), loop: true });
    const plans: LiveRunPlan[] = [];
    // 30 s into the entry, at output time 0 (the item playing has just begun).
    const atMs = wallZero + 30_000;
    const clock = applyProgramme(null, spec, { channelId: 'c', timeline: t, epochZeroMs: () => atMs, log: createLogger(), startLive: (p) => plans.push(p) }, atMs);
    assert.ok(clock !== null);
    const plan = plans[0];
    assert.ok(plan !== undefined && plan.fromMs > 0 && plan.fromMs <= gopMs, `at the item's next clean cut: ${plan?.fromMs} ms`);
    assert.equal(plan.untilMs, 30_000, 'to the entry\'s end');
    assert.equal(plan.nextRef?.itemId, 'filler', 'then the filler');
  });
});
