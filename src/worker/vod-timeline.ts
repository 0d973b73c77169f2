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
import type { Mp4Track } from '../media/mp4.js';

export type TrackKind = 'video' | 'audio';

/** One playlist item as the worker loaded it. */
export interface ItemMedia {
  /** Stable identity (the VOD resource id), used to keep the position when the list is edited. */
  readonly id: string;
  readonly path: string;
  readonly video: Mp4Track | null;
  readonly audio: Mp4Track | null;
}

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
    }
  | { readonly kind: 'end' };

/** Minimum DTS step between two samples of one track on the wire, µs (FLV has ms). */
const minStepUs = 1000;

const us = (t: number, timescale: number): number => Math.round((t * 1_000_000) / timescale);

interface TrackCut {
  readonly kind: TrackKind;
  readonly track: Mp4Track;
  /** Decode-order range of samples that go out. */
  readonly first: number;
  readonly end: number;
}

interface ItemPlan {
  readonly item: ItemMedia;
  readonly periodUs: number;
  readonly cuts: readonly TrackCut[];
}

const ptsOf = (t: Mp4Track, i: number): number => (t.samples.dts[i] ?? 0) + (t.samples.cts[i] ?? 0);

function presentationEndUs(t: Mp4Track): number {
  let end = -Infinity;
  for (let i = 0; i < t.samples.count; i++) end = Math.max(end, ptsOf(t, i) + (t.samples.duration[i] ?? 0));
  return us(end, t.timescale);
}

/** First video sample to send: the first keyframe. */
function firstVideo(t: Mp4Track): number {
  let i = 0;
  while (i < t.samples.count && t.samples.sync[i] !== 1) i++;
  return i;
}

/** First audio sample to send: the first one the edit list presents. */
function firstAudio(t: Mp4Track): number {
  let i = 0;
  while (i < t.samples.count && us(ptsOf(t, i), t.timescale) < 0) i++;
  return i;
}

/**
 * The clean video cut at or before `limitUs`: the longest decode-order prefix
 * (from `first`) presented entirely before every later frame and ending by
 * the limit. Returns its end index and presentation end (µs).
 */
function videoCut(t: Mp4Track, first: number, limitUs: number): { end: number; endUs: number } {
  const n = t.samples.count;
  // minPtsAfter[i] = smallest pts among samples i..n-1.
  const minPtsAfter = new Float64Array(n + 1);
  minPtsAfter[n] = Infinity;
  for (let i = n - 1; i >= first; i--) minPtsAfter[i] = Math.min(ptsOf(t, i), minPtsAfter[i + 1] ?? Infinity);
  let best = { end: first, endUs: 0 };
  let prefixEnd = -Infinity;
  for (let c = first + 1; c <= n; c++) {
    prefixEnd = Math.max(prefixEnd, ptsOf(t, c - 1) + (t.samples.duration[c - 1] ?? 0));
    const endUs = us(prefixEnd, t.timescale);
    if (endUs > limitUs) break;
    if (prefixEnd <= (minPtsAfter[c] ?? Infinity)) best = { end: c, endUs };
  }
  return best;
}

/**
 * The first clean video cut at or after decode index `from` (up to `end`):
 * the shortest decode-order prefix from `first` that takes at least the
 * samples before `from` and is presented entirely before every later frame.
 * Without B-frames that is `from` itself. Returns its end index and
 * presentation end (µs).
 */
function cleanCutFrom(t: Mp4Track, first: number, from: number, end: number): { end: number; endUs: number } {
  // Nothing taken yet: the item ends before its first frame.
  if (from <= first) return { end: first, endUs: 0 };
  let minAfter = Infinity;
  const minPtsAfter = new Float64Array(end + 1);
  minPtsAfter[end] = Infinity;
  for (let i = end - 1; i >= first; i--) {
    minAfter = Math.min(minAfter, ptsOf(t, i));
    minPtsAfter[i] = minAfter;
  }
  let prefixEnd = -Infinity;
  for (let c = first + 1; c <= end; c++) {
    prefixEnd = Math.max(prefixEnd, ptsOf(t, c - 1) + (t.samples.duration[c - 1] ?? 0));
    if (c >= from && prefixEnd <= (minPtsAfter[c] ?? Infinity)) return { end: c, endUs: us(prefixEnd, t.timescale) };
  }
  return { end, endUs: us(prefixEnd, t.timescale) };
}

/** The usual frame length of a track (its most common sample duration). */
function nominalDuration(t: Mp4Track): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < t.samples.count; i++) {
    const d = t.samples.duration[i] ?? 0;
    counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  let best = 0;
  let bestCount = 0;
  for (const [d, c] of counts) if (c > bestCount) [best, bestCount] = [d, c];
  return best;
}

/** Splits an item into its per-track cuts and its period. Throws on an item with nothing to play. */
export function planItem(item: ItemMedia): ItemPlan {
  const { video, audio } = item;
  if (video === null && audio === null) throw new Error(`${item.id}: no audio or video track`);
  let periodUs = Math.min(video === null ? Infinity : presentationEndUs(video), audio === null ? Infinity : presentationEndUs(audio));
  const cuts: TrackCut[] = [];
  if (video !== null) {
    const first = firstVideo(video);
    const cut = videoCut(video, first, periodUs);
    periodUs = cut.endUs;
    cuts.push({ kind: 'video', track: video, first, end: cut.end });
  }
  if (!(periodUs > 0)) throw new Error(`${item.id}: the media has no duration`);
  if (audio !== null) {
    const first = firstAudio(audio);
    const nominal = nominalDuration(audio);
    let end = first;
    while (end < audio.samples.count && us(ptsOf(audio, end) + Math.max(audio.samples.duration[end] ?? 0, nominal), audio.timescale) <= periodUs) end++;
    cuts.push({ kind: 'audio', track: audio, first, end });
  }
  if (cuts.some((c) => c.end <= c.first)) throw new Error(`${item.id}: a track has no sample inside the common period`);
  return { item, periodUs, cuts };
}

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
    let base = this.#baseUs + previous.periodUs;
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
    };
  }
}

/**
 * An item's plan started inside it (a return from a cut-in): video from its
 * last keyframe presented at or before `atUs` (item time), audio from the
 * first frame presented at or after that keyframe's decode time (with
 * B-frames its DTS is a few frames before its PTS: audio from the PTS would
 * leave that much silence after what came before); `skippedUs` is the item
 * time before the keyframe's presentation.
 */
function startInside(plan: ItemPlan, atUs: number): { plan: ItemPlan; skippedUs: number } {
  const video = plan.cuts.find((c) => c.kind === 'video');
  let fromUs = atUs;
  let audioFromUs = atUs;
  let key = video?.first ?? 0;
  if (video !== undefined) {
    const t = video.track;
    for (let i = video.first; i < video.end; i++) if (t.samples.sync[i] === 1 && us(ptsOf(t, i), t.timescale) <= atUs) key = i;
    fromUs = us(ptsOf(t, key), t.timescale);
    audioFromUs = us(t.samples.dts[key] ?? 0, t.timescale);
  }
  const cuts = plan.cuts.map((c): TrackCut => {
    if (c.kind === 'video') return { ...c, first: key };
    let i = c.first;
    while (i < c.end && us(ptsOf(c.track, i), c.track.timescale) < audioFromUs) i++;
    return { ...c, first: i };
  });
  return { plan: { ...plan, cuts }, skippedUs: Math.max(0, fromUs) };
}
