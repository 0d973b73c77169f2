/**
 * The timeline's skips and jumps (VodTimeline.cutTo), without a stream: two
 * real files with B-frames (libx264's default) and one without, cut after
 * every number of steps taken in a range that covers a whole GOP, and the
 * steps that follow checked against the rules of a boundary: DTS strictly
 * increasing per track in milliseconds, no step longer than two frames, the
 * next item opening on a keyframe at the time its boundary announced, every
 * frame before the cut presented before any later one (no hole in the
 * picture), and the item asked for is the one that plays.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MediaCache } from '../src/worker/media-cache.js';
import { VodTimeline, type ItemMedia, type Step } from '../src/worker/vod-timeline.js';
import { makeMp4 } from './helpers/media.js';

type Sample = Extract<Step, { kind: 'sample' }>;
type Boundary = Extract<Step, { kind: 'boundary' }>;

describe('VodTimeline.cutTo (skip and jump)', () => {
  let dir: string;
  const items: ItemMedia[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vlive-cut-'));
    const cache = new MediaCache();
    for (const [name, o] of [['a', { seconds: 2, toneHz: 440 }], ['b', { seconds: 1.6, toneHz: 660 }], ['c', { seconds: 1.2, toneHz: 880 }]] as const) {
      const path = await makeMp4(dir, { name, width: 160, height: 120, fps: 25, ...o });
      items.push(await cache.load({ id: name, path }));
    }
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('has B-frames in its test media (so cuts fall between mini-GOPs)', () => {
    const v = items[0]?.video;
    assert.ok(v);
    assert.ok(v.samples.cts.some((c) => c !== v.samples.cts[0]), 'composition offsets vary: B-frames');
  });

  /** Takes `n` steps, cuts to `target`, then follows the timeline to the next item's 30th sample. */
  function cutAfter(n: number, target: number): { before: Sample[]; after: Sample[]; boundary: Boundary; all: Sample[] } {
    const t = new VodTimeline({ items, loop: true });
    const all: Sample[] = [];
    const before: Sample[] = [];
    for (let i = 0; i < n; i++) {
      const s = t.next();
      if (s.kind === 'sample') {
        all.push(s);
        before.push(s);
      }
    }
    const playing = t.position;
    t.cutTo(target);
    assert.equal(t.upNext?.index, target, 'upNext shows the item asked for');
    let boundary: Boundary | null = null;
    const afterCut: Sample[] = [];
    for (let guard = 0; guard < 10_000 && afterCut.length < 30; guard++) {
      const s = t.next();
      if (s.kind === 'boundary') {
        if (boundary === null) {
          boundary = s;
          assert.equal(s.index, target, `after ${n} steps: the boundary goes to item ${target}`);
          assert.equal(s.nextItem.id, items[target]?.id);
        }
        continue;
      }
      if (s.kind !== 'sample') continue;
      all.push(s);
      if (boundary === null) {
        assert.equal(s.item.id, items[playing]?.id, 'before the cut, only the item playing');
        before.push(s);
      } else afterCut.push(s);
    }
    assert.ok(boundary !== null, `after ${n} steps: no boundary`);
    return { before, after: afterCut, boundary, all };
  }

  it('cuts cleanly wherever the command comes, to any item, with DTS strictly increasing', () => {
    const frameMs = 40;
    const audioFrameMs = 1024 / 48;
    for (const target of [0, 1, 2]) {
      for (let n = 0; n <= 80; n += 1) {
        const { before, after, boundary, all } = cutAfter(n, target);
        for (const track of ['video', 'audio'] as const) {
          const dts = all.filter((s) => s.track === track).map((s) => s.dtsMs);
          const limit = track === 'video' ? 2 * frameMs : 2 * audioFrameMs + 1;
          for (let i = 1; i < dts.length; i++) {
            const step = (dts[i] ?? 0) - (dts[i - 1] ?? 0);
            assert.ok(step > 0, `cut after ${n} to ${target}: ${track} DTS ${dts[i - 1]} then ${dts[i]}`);
            assert.ok(step <= limit, `cut after ${n} to ${target}: ${track} step of ${step} ms at ${dts[i]}`);
          }
        }
        const firstVideo = after.find((s) => s.track === 'video');
        assert.ok(firstVideo?.keyframe === true, `cut after ${n} to ${target}: the next item opens on a keyframe`);
        assert.equal(Math.min(...after.map((s) => s.dtsMs)), boundary.startMs, 'the boundary says when the next item starts');
        // Every video frame before the cut is presented before every frame after it
        // from the same item was left out: the prefix sent is a clean one.
        const v = before.filter((s) => s.track === 'video');
        if (v.length > 0) {
          const lastPts = Math.max(...v.map((s) => s.dtsMs + s.ctsMs));
          const sent = new Set(v.map((s) => s.dtsMs + s.ctsMs));
          for (let pts = Math.min(...v.map((s) => s.dtsMs + s.ctsMs)); pts < lastPts; pts += frameMs) {
            assert.ok([...sent].some((p) => Math.abs(p - pts) <= 1), `cut after ${n}: frame at pts ${pts} missing before the cut`);
          }
        }
      }
    }
  });

  it('sends a new sequence header at a cut only when the next item\'s differs', async () => {
    const path = await makeMp4(dir, { name: 'd', width: 176, height: 144, fps: 25, seconds: 1, toneHz: 550 });
    const d = await new MediaCache().load({ id: 'd', path });
    const a = items[0];
    assert.ok(a?.video?.config && d.video?.config && !a.video.config.equals(d.video.config), 'd has its own SPS/PPS');
    for (const [target, expectConfig] of [[1, false], [2, true]] as const) {
      const t = new VodTimeline({ items: [a, target === 1 ? (items[1] as ItemMedia) : d, a], loop: true });
      for (let i = 0; i < 17; i++) t.next();
      t.cutTo(1);
      const after: Step[] = [];
      let crossed = false;
      for (let guard = 0; guard < 1000 && after.length < 5; guard++) {
        const st = t.next();
        if (st.kind === 'boundary') crossed = true;
        else if (crossed) after.push(st);
      }
      const configs = after.filter((st) => st.kind === 'config' && st.track === 'video');
      assert.equal(configs.length, expectConfig ? 1 : 0, `cut to ${target === 1 ? 'b' : 'd'}: ${configs.length} video sequence headers`);
      if (expectConfig) assert.equal(after[0]?.kind, 'config', 'the header goes out before the item\'s first sample');
    }
  });

  it('refuses an index outside the list, and a skip past the end of a list that does not loop ends it', () => {
    const t = new VodTimeline({ items, loop: false });
    assert.throws(() => t.cutTo(3), RangeError);
    assert.throws(() => t.cutTo(-1), RangeError);
    assert.throws(() => t.cutTo(1.5), RangeError);
    t.cutTo(2);
    let kinds = '';
    for (let i = 0; i < 10_000; i++) {
      const s = t.next();
      if (s.kind === 'boundary') kinds += `b${s.index}`;
      if (s.kind === 'end') break;
    }
    assert.equal(kinds, 'b2', 'item 2 follows the cut, and the list ends after it');
    assert.equal(t.upNext, null);
    assert.throws(() => t.cutTo(0), RangeError, 'an ended list takes no jump');
  });
});
