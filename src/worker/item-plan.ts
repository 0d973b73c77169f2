/**
 * How one item of a VOD timeline is cut (vod-timeline.ts has the rules):
 * its period, the decode-order range of each track, clean cuts of the
 * video, and a start inside the item (a return from a cut-in). Pure.
 */
import type { Mp4Track } from '../media/mp4.js';
import type { AdBreak } from '../pool/pipeline-spec.js';

export type TrackKind = 'video' | 'audio';

/** One playlist item as the worker loaded it. */
export interface ItemMedia {
  /** Stable identity (the VOD resource id), used to keep the position when the list is edited. */
  readonly id: string;
  readonly path: string;
  readonly video: Mp4Track | null;
  readonly audio: Mp4Track | null;
  /** Ad breaks in item time, by offset: each gets a cue point (cue-points.ts). */
  readonly breaks?: readonly AdBreak[];
}

/** Minimum DTS step between two samples of one track on the wire, µs (FLV has ms). */
export const minStepUs = 1000;

export const us = (t: number, timescale: number): number => Math.round((t * 1_000_000) / timescale);

export interface TrackCut {
  readonly kind: TrackKind;
  readonly track: Mp4Track;
  /** Decode-order range of samples that go out. */
  readonly first: number;
  readonly end: number;
}

export interface ItemPlan {
  readonly item: ItemMedia;
  readonly periodUs: number;
  readonly cuts: readonly TrackCut[];
}

export const ptsOf = (t: Mp4Track, i: number): number => (t.samples.dts[i] ?? 0) + (t.samples.cts[i] ?? 0);

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
export function videoCut(t: Mp4Track, first: number, limitUs: number): { end: number; endUs: number } {
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
export function cleanCutFrom(t: Mp4Track, first: number, from: number, end: number): { end: number; endUs: number } {
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
export function nominalDuration(t: Mp4Track): number {
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

/**
 * An item's plan started inside it (a return from a cut-in): video from its
 * last keyframe presented at or before `atUs` (item time), audio from the
 * first frame presented at or after that keyframe's decode time (with
 * B-frames its DTS is a few frames before its PTS: audio from the PTS would
 * leave that much silence after what came before); `skippedUs` is the item
 * time before the keyframe's presentation.
 */
export function startInside(plan: ItemPlan, atUs: number): { plan: ItemPlan; skippedUs: number } {
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
