/**
 * The output timeline of a VOD channel: which sample goes out next and with
 * which timestamps, across loops and playlist items, in one publish session.
 * Pure (no I/O, no GStreamer), so the timestamp rules are unit-tested.
 *
 * The rules, per item:
 * - Its period P is the presentation length of its SHORTEST track, moved
 *   back to the last clean cut of the video at or before it (below). Every
 *   track of the item is shifted by the same base, so audio and video can
 *   never drift apart, however many loops.
 * - Video is cut only where decode order and presentation order agree: a
 *   prefix in decode order whose frames are all presented before every
 *   later frame. With B-frames these points fall between mini-GOPs. Every
 *   frame taken is decodable (its references come before it) and none is
 *   missing from the picture sequence, so video has no gap at all.
 * - Audio is cut at the last frame that ends by P, counting every frame at
 *   its full codec length (MP4 writers shorten the last frame's duration to
 *   trim the encoder's padding, but a decoder still plays all of it). So the
 *   audio gap at a boundary is under one audio frame, and frames never overlap.
 * - Audio frames the edit list hides (pts < 0: the AAC encoder's priming
 *   frame) are skipped: replayed each loop they would overlap the previous
 *   loop's end.
 * - Video starts at its first keyframe, so every loop starts on one.
 * - The next item's base is the previous base + P, pushed later only as far
 *   as needed to keep every track's DTS strictly increasing in milliseconds
 *   (FLV's unit), e.g. when the next item opens with deeper B-frame reorder.
 * - DTS may be negative inside an item (B-frames, edit list); one offset for
 *   the whole session, taken from the first item, keeps output DTS >= 0.
 * - When an item's codec configuration (SPS/PPS, AudioSpecificConfig) differs
 *   from the one on the wire, a new sequence header goes out before its first
 *   sample. Items must have the same tracks and codecs; the service refuses
 *   any other playlist (INCOMPATIBLE_MEDIA) before it reaches a worker.
 */
import { limitPlan } from './programme-cut.js';
import { cleanCutFrom, minStepUs, nominalDuration, planItem, ptsOf, startInside, us, type ItemMedia, type ItemPlan, type TrackCut, type TrackKind } from './item-plan.js';

export type { ItemMedia, TrackKind };

export type Step =
  | {
      readonly kind: 'sample';
      readonly track: TrackKind;
      readonly item: ItemMedia;
      readonly index: number;
      readonly dtsMs: number;
      /** PTS − DTS in ms, after each was rounded on its own. */
      readonly ctsMs: number;
      readonly keyframe: boolean;
    }
  | { readonly kind: 'config'; readonly track: TrackKind; readonly dtsMs: number; readonly config: Buffer }
  | {
      readonly kind: 'boundary';
      /** True when the list wrapped round (or a single file looped). */
      readonly loop: boolean;
      /** Largest silence/stillness any track gets at this boundary, seconds (>= 0). */
      readonly gapSeconds: number;
      readonly nextItem: ItemMedia;
      /** The next item's position in the list. */
      readonly index: number;
      /** Output time of the next item's first tag, ms. */
      readonly startMs: number;
      /** How long the next item plays if nothing cuts it, ms. */
      readonly periodMs: number;
      /** Item time at which it starts, ms: 0, or where a return from a cut-in resumes it. */
      readonly fromMs: number;
    }
  | { readonly kind: 'end' };

function sameConfig(a: Buffer | null, b: Buffer | null): boolean {
  return a === b || (a !== null && b !== null && a.equals(b));
}

export interface TimelineOptions {
  readonly items: readonly ItemMedia[];
  /** Wrap round at the end of the list (a single item: loop the file). */
  readonly loop: boolean;
}

export class VodTimeline {
  #items: readonly ItemMedia[];
  #loop: boolean;
  #position = 0;
  #plan: ItemPlan;
  #baseUs = 0;
  readonly #offsetUs: number;
  /** Per track: next sample index in the current item, last DTS out (µs), its duration (µs). */
  readonly #cursor = new Map<TrackKind, { next: number; lastUs: number; lastDurUs: number }>();
  readonly #configs = new Map<TrackKind, Buffer | null>();
  /** Config steps owed before the current item's samples. */
  #pending: Step[] = [];
  #ended = false;
  #loops = 0;
  /** The item a skip or jump asked for, played after the current one's cut; null: the list's order. */
  #forcedNext: number | null = null;
  /** Where in the forced next item to start (item time, µs; a return from a cut-in); null: its beginning. */
  #startAtUs: number | null = null;
  /** The next item starts inside (limitCurrent's nextFromMs) right after the current one, its skipped part left out of the time. */
  #joining = false;
  /** End after the current item (a live item follows it: live-items.ts); resumeAt() goes on. */
  #stopAfter = false;

  constructor(opts: TimelineOptions) {
    if (opts.items.length === 0) throw new Error('a VOD timeline needs at least one item');
    this.#items = opts.items;
    this.#loop = opts.loop;
    this.#plan = planItem(this.#current());
    let offset = 0;
    for (const c of this.#plan.cuts) {
      offset = Math.max(offset, -us(c.track.samples.dts[c.first] ?? 0, c.track.timescale));
      this.#configs.set(c.kind, c.track.config);
    }
    this.#offsetUs = offset;
    this.#resetCursors(true);
  }

  /** The item now playing. */
  get item(): ItemMedia {
    return this.#plan.item;
  }

  get loops(): number {
    return this.#loops;
  }

  /** Items in the list. */
  get itemCount(): number {
    return this.#items.length;
  }

  /** The item at `index` of the list, if any. */
  itemAt(index: number): ItemMedia | undefined {
    return this.#items[index];
  }

  /** The list wraps round at its end. */
  get looping(): boolean {
    return this.#loop;
  }

  /** Position of the item now playing in the list. */
  get position(): number {
    return this.#position;
  }

  /** How long the item now playing plays if nothing cuts it, ms. */
  get periodMs(): number {
    return Math.round(this.#plan.periodUs / 1000);
  }

  /**
   * What plays after the current item, as things stand: a jump asked for,
   * else the next in the list (round to the first when looping); null at
   * the end of a list that does not loop.
   */
  get upNext(): { index: number; item: ItemMedia } | null {
    const index = this.#forcedNext ?? (this.#position + 1 < this.#items.length ? this.#position + 1 : this.#loop ? 0 : null);
    const item = index === null ? undefined : this.#items[index];
    return index === null || item === undefined ? null : { index, item };
  }

  /**
   * Ends the current item at its next clean cut after what has been taken
   * from the timeline, and plays item `index` next (a skip or a jump). The
   * cut keeps every rule of a boundary: video ends where decode and
   * presentation order agree (the next frame without B-frames), audio at
   * the last whole frame taken or ending by that cut, the next item starts
   * on its keyframe with DTS strictly increasing. Its boundary step comes
   * once the samples before the cut are taken, and says when the next item
   * starts. Throws a RangeError on an index outside the list, or when a list
   * that does not loop has ended.
   */
  cutTo(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.#items.length) throw new RangeError(`item ${index} is not in the list of ${this.#items.length}`);
    if (this.#ended) throw new RangeError('the list has ended');
    this.#forcedNext = index;
    const cuts: TrackCut[] = [];
    let periodUs = 0;
    const video = this.#plan.cuts.find((c) => c.kind === 'video');
    if (video !== undefined) {
      const taken = this.#cursor.get('video')?.next ?? video.first;
      const cut = cleanCutFrom(video.track, video.first, Math.min(taken, video.end), video.end);
      cuts.push({ ...video, end: cut.end });
      periodUs = cut.endUs;
    }
    const audio = this.#plan.cuts.find((c) => c.kind === 'audio');
    if (audio !== undefined) {
      const t = audio.track;
      const taken = Math.min(this.#cursor.get('audio')?.next ?? audio.first, audio.end);
      // Frames already taken stay; more only while they end by the video's cut.
      let end = taken;
      const nominal = nominalDuration(t);
      while (video !== undefined && end < audio.end && us(ptsOf(t, end) + Math.max(t.samples.duration[end] ?? 0, nominal), t.timescale) <= periodUs) end++;
      cuts.push({ ...audio, end });
      if (end > audio.first) periodUs = Math.max(periodUs, us(ptsOf(t, end - 1) + Math.max(t.samples.duration[end - 1] ?? 0, nominal), t.timescale));
    }
    this.#plan = { item: this.#plan.item, periodUs: Math.min(periodUs, this.#plan.periodUs), cuts };
  }

  /**
   * A programme's cut (programme-clock.ts): ends the item playing at its last
   * clean cut by item time `limitMs` (null: its own end), never before what was
   * taken, and plays item `next` after it (null: the list's order), from its
   * last keyframe at or before item time `nextFromMs` (null: its beginning).
   */
  limitCurrent(limitMs: number | null, next: number | null, nextFromMs: number | null = null): void {
    const full = planItem(this.#plan.item);
    const taken = Object.fromEntries([...this.#cursor].map(([k, c]) => [k, c.next]));
    this.#plan = limitMs === null ? full : limitPlan(full, Math.round(limitMs * 1000), taken);
    this.#forcedNext = next;
    this.#startAtUs = nextFromMs === null ? null : Math.max(0, Math.round(nextFromMs * 1000));
    this.#joining = nextFromMs !== null;
  }

  /** Item time (ms from the item's own zero) of output time `outputMs` in the item now playing. */
  itemTimeMs(outputMs: number): number {
    return outputMs - (this.#offsetUs + this.#baseUs) / 1000;
  }

  /**
   * Where the list is `advanceMs` of play after item `index` at item time
   * `itemMs`: the item and the time in it (ms), walking on through the list
   * (round when it loops); null past the end of a list that does not loop.
   */
  walk(index: number, itemMs: number, advanceMs: number): { index: number; itemMs: number } | null {
    const periods = this.#items.map((i) => planItem(i).periodUs / 1000);
    let i = index;
    let t = Math.max(0, itemMs) + Math.max(0, advanceMs);
    const total = periods.reduce((a, b) => a + b, 0);
    let wrapped = false;
    for (;;) {
      const p = periods[i] ?? 0;
      if (t < p) return { index: i, itemMs: t };
      t -= p;
      i += 1;
      if (i < periods.length) continue;
      if (!this.#loop) return null;
      i = 0;
      // Hours away from a short list: whole turns of it change nothing.
      if (!wrapped && total > 0) t %= total;
      wrapped = true;
    }
  }

  /**
   * Ends the item playing where the feeder stopped taking it (a cut-in took
   * the output) and plays item `index` next from its last keyframe at or
   * before item time `itemMs`, audio from the first frame presented with
   * it. Every track's first DTS is at least `floorMs[track]` (output ms):
   * the resumed media goes after what the cut-in sent, with the item's own
   * A/V offset. The boundary step comes at the next next().
   */
  resumeAt(index: number, itemMs: number, floorMs: Readonly<Record<TrackKind, number>>): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.#items.length) throw new RangeError(`item ${index} is not in the list of ${this.#items.length}`);
    this.#ended = false;
    // What follows the resumed item is decided at its own boundary (live-items.ts).
    this.#stopAfter = false;
    this.#forcedNext = index;
    this.#startAtUs = Math.max(0, Math.round(itemMs * 1000));
    this.#pending = [];
    const cuts = this.#plan.cuts.map((c) => ({ ...c, end: Math.min(c.end, this.#cursor.get(c.kind)?.next ?? c.first) }));
    // Period 0: the next base comes from the floors alone.
    this.#plan = { item: this.#plan.item, periodUs: 0, cuts };
    for (const [kind, cur] of this.#cursor) {
      cur.lastUs = Math.max(cur.lastUs, floorMs[kind] * 1000 - minStepUs);
      cur.lastDurUs = 0;
    }
  }

  /**
   * Ends the list after the item now playing (an 'end' step), until
   * resumeAt() names what comes next: a live item plays in between.
   */
  stopAfterCurrent(): void {
    this.#stopAfter = true;
  }

  /** Codec configuration of each track as first sent (for the stream's headers). */
  initialConfig(kind: TrackKind): Buffer | null {
    return this.#configs.get(kind) ?? null;
  }

  /**
   * Replaces the list. The current item plays to its end; the next one is
   * the item after it in the new list (found by position, else by id), so an
   * edit never restarts the channel from the first item.
   */
  setItems(items: readonly ItemMedia[], loop: boolean): void {
    if (items.length === 0) throw new Error('a VOD timeline needs at least one item');
    const cur = this.#plan.item.id;
    let at = items[this.#position]?.id === cur ? this.#position : items.findIndex((i) => i.id === cur);
    // The current item was removed: the one now in its slot plays next.
    if (at < 0) at = Math.min(this.#position, items.length) - 1;
    this.#items = items;
    this.#loop = loop;
    this.#position = at;
    if (this.#forcedNext !== null && this.#forcedNext >= items.length) this.#forcedNext = null;
  }

  #current(): ItemMedia {
    const item = this.#items[this.#position];
    if (item === undefined) throw new Error('playlist position out of range');
    return item;
  }

  #resetCursors(first: boolean): void {
    for (const c of this.#plan.cuts) {
      const prev = this.#cursor.get(c.kind);
      this.#cursor.set(c.kind, {
        next: c.first,
        lastUs: first || prev === undefined ? -Infinity : prev.lastUs,
        lastDurUs: prev?.lastDurUs ?? 0,
      });
    }
  }

  /** The next step, or 'end' (and 'end' forever after) when a non-looping list is done. */
  next(): Step {
    const owed = this.#pending.shift();
    if (owed !== undefined) return owed;
    if (this.#ended) return { kind: 'end' };
    let best: { cut: TrackCut; dtsUs: number } | null = null;
    for (const cut of this.#plan.cuts) {
      const cur = this.#cursor.get(cut.kind);
      if (cur === undefined || cur.next >= cut.end) continue;
      const dtsUs = this.#offsetUs + this.#baseUs + us(cut.track.samples.dts[cur.next] ?? 0, cut.track.timescale);
      if (best === null || dtsUs < best.dtsUs) best = { cut, dtsUs };
    }
    if (best === null) return this.#advance();
    const { cut, dtsUs } = best;
    const s = cut.track.samples;
    const cur = this.#cursor.get(cut.kind);
    if (cur === undefined) throw new Error('unreachable: cursor missing');
    const index = cur.next;
    const ptsUs = dtsUs + us(s.cts[index] ?? 0, cut.track.timescale);
    const dtsMs = Math.round(dtsUs / 1000);
    cur.next += 1;
    cur.lastUs = dtsUs;
    cur.lastDurUs = us(s.duration[index] ?? 0, cut.track.timescale);
    return {
      kind: 'sample',
      track: cut.kind,
      item: this.#plan.item,
      index,
      dtsMs,
      ctsMs: Math.round(ptsUs / 1000) - dtsMs,
      keyframe: s.sync[index] === 1,
    };
  }

  /** The current item is used up: move to the next one, or end. */
  #advance(): Step {
    if (this.#stopAfter) {
      this.#stopAfter = false;
      this.#ended = true;
      return { kind: 'end' };
    }
    const forced = this.#forcedNext;
    this.#forcedNext = null;
    const wrapped = forced === null && this.#position + 1 >= this.#items.length;
    if (wrapped && !this.#loop) {
      this.#ended = true;
      return { kind: 'end' };
    }
    this.#position = forced ?? (wrapped ? 0 : this.#position + 1);
    if (wrapped) this.#loops += 1;
    const previous = this.#plan;
    let plan = planItem(this.#current());
    let skippedUs = 0;
    if (this.#startAtUs !== null) {
      ({ plan, skippedUs } = startInside(plan, this.#startAtUs));
      this.#startAtUs = null;
    }
    // A programme's late join goes on right after the cut; a cut-in's return goes after its floors.
    let base = this.#baseUs + previous.periodUs - (this.#joining ? skippedUs : 0);
    this.#joining = false;
    // Keep every track strictly increasing on the wire (ms), e.g. when this
    // item's first DTS is further negative than the last item's reorder allowed.
    for (const c of plan.cuts) {
      const cur = this.#cursor.get(c.kind);
      if (cur === undefined || cur.lastUs === -Infinity) continue;
      const firstUs = this.#offsetUs + us(c.track.samples.dts[c.first] ?? 0, c.track.timescale);
      // lastUs + 1 ms rounds to exactly one ms more than lastUs did.
      base = Math.max(base, cur.lastUs + minStepUs - firstUs);
    }
    let gapUs = 0;
    let startUs = Infinity;
    for (const c of plan.cuts) startUs = Math.min(startUs, this.#offsetUs + base + us(c.track.samples.dts[c.first] ?? 0, c.track.timescale));
    for (const c of plan.cuts) {
      const cur = this.#cursor.get(c.kind);
      if (cur === undefined || cur.lastUs === -Infinity) continue;
      const firstUs = this.#offsetUs + base + us(c.track.samples.dts[c.first] ?? 0, c.track.timescale);
      gapUs = Math.max(gapUs, firstUs - (cur.lastUs + cur.lastDurUs));
    }
    this.#baseUs = base;
    this.#plan = plan;
    this.#resetCursors(false);
    for (const c of plan.cuts) {
      if (!sameConfig(this.#configs.get(c.kind) ?? null, c.track.config) && c.track.config !== null) {
        this.#configs.set(c.kind, c.track.config);
        const dtsMs = Math.round((this.#offsetUs + base + us(c.track.samples.dts[c.first] ?? 0, c.track.timescale)) / 1000);
        this.#pending.push({ kind: 'config', track: c.kind, dtsMs, config: c.track.config });
      }
    }
    return {
      kind: 'boundary',
      loop: wrapped,
      gapSeconds: Math.max(0, gapUs) / 1_000_000,
      nextItem: plan.item,
      index: this.#position,
      startMs: Math.round(startUs / 1000),
      periodMs: Math.round((plan.periodUs - skippedUs) / 1000),
      fromMs: Math.round(skippedUs / 1000),
    };
  }
}
