/**
 * The cut of a programme's item (programme-clock.ts): an item that would run
 * past an entry's time ends at the last clean cut at or before it. Pure.
 *
 * - Video ends at the last point where decode and presentation order agree
 *   and whose presentation ends by the limit (item-plan.ts's videoCut): with
 *   B-frames the end of a mini-GOP, without them any frame. The next item
 *   opens on its own keyframe, so nothing waits for a keyframe: the item
 *   after the cut starts at most a mini-GOP before the entry's time.
 * - Audio ends at the last whole frame that ends by the video's cut (by the
 *   limit for audio only), as a skip's cut does.
 * - Samples already taken stay: a limit behind them (a programme edited
 *   while the item plays) cuts at the first clean cut after them.
 */
import { cleanCutFrom, nominalDuration, planItem, ptsOf, us, videoCut, type ItemMedia, type ItemPlan, type TrackCut, type TrackKind } from './item-plan.js';

/** How long an item plays if nothing cuts it, ms. */
export const periodMsOf = (item: ItemMedia): number => planItem(item).periodUs / 1000;

/**
 * How far before its own zero an item's first tag goes out, ms (<= 0): with
 * B-frames its first DTS is negative. An item that follows a cut starts that
 * much before the cut's end, so the cut leaves room for it.
 */
export function openingDtsMs(item: ItemMedia): number {
  const firsts = planItem(item).cuts.map((c) => us(c.track.samples.dts[c.first] ?? 0, c.track.timescale));
  return Math.min(0, ...firsts) / 1000;
}

/** `plan` ended by item time `limitUs` (µs) at a clean cut, never before the samples `taken` (per track, decode index). */
export function limitPlan(plan: ItemPlan, limitUs: number, taken: Readonly<Partial<Record<TrackKind, number>>>): ItemPlan {
  if (limitUs >= plan.periodUs) return plan;
  const cuts: TrackCut[] = [];
  let periodUs = 0;
  let boundUs = Math.max(0, limitUs);
  const video = plan.cuts.find((c) => c.kind === 'video');
  if (video !== undefined) {
    const t = Math.min(taken.video ?? video.first, video.end);
    let cut = videoCut(video.track, video.first, boundUs);
    if (cut.end < t) cut = cleanCutFrom(video.track, video.first, t, video.end);
    cuts.push({ ...video, end: Math.min(cut.end, video.end) });
    periodUs = cut.endUs;
    boundUs = cut.endUs;
  }
  const audio = plan.cuts.find((c) => c.kind === 'audio');
  if (audio !== undefined) {
    const tr = audio.track;
    const nominal = nominalDuration(tr);
    const endOf = (i: number): number => us(ptsOf(tr, i) + Math.max(tr.samples.duration[i] ?? 0, nominal), tr.timescale);
    let end = audio.first;
    while (end < audio.end && endOf(end) <= boundUs) end++;
    end = Math.max(end, Math.min(taken.audio ?? audio.first, audio.end));
    cuts.push({ ...audio, end });
    if (end > audio.first) periodUs = Math.max(periodUs, endOf(end - 1));
  }
  return { item: plan.item, periodUs: Math.min(periodUs, plan.periodUs), cuts };
}
