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
 * entry plays from its beginning.
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
});
