/**
 * Live items of a playlist (issue #21 item 3): an online source played for
 * a set time between VOD items, in the same publish session. This module is
 * the channel layer's side: the rules an `items` input must meet, and how
 * VOD and live items share one numbering (positions in the whole list).
 *
 * Rules, and why:
 * - The first item is a VOD item: the worker's session takes its tracks and
 *   codec configuration from it, and a live source is joined after media
 *   that is already out (it cannot open the session).
 * - No two live items in a row: the end of a live item returns to a VOD
 *   item on its own keyframe, which is what keeps the switch exact; a
 *   switch from one live source to another would wait for a keyframe twice.
 * - A list that does not loop ends with a VOD item, for the same reason.
 * - A live item's duration is 1 s .. 24 h; its URL takes every rule of a
 *   sourceUrl (same schemes, same codes), with `items` as the field.
 *
 * Owns: validation of the richer playlist input and the list's layout.
 * Imports errors, urls and the repository's record type.
 */
import { badInput } from '../errors.js';
import { maskUrl, parseSourceUrl } from '../media/urls.js';
import type { VodResource } from '../generated/prisma-sqlite/client.js';
import { vodPositions } from '../pool/pipeline-spec.js';
import type { AdBreakInput, StoredBreak } from './ad-breaks.js';

/** One entry of `items`: a VOD resource, or an online source with a duration. */
export interface PlaylistItemInput {
  vodResourceId?: string | null;
  sourceUrl?: string | null;
  durationSeconds?: number | null;
  /** A VOD item's ad breaks (ad-breaks.ts checks them against the item's length). */
  breaks?: AdBreakInput[] | null;
}

/** A live item as stored: its position in the whole list. */
export interface LiveItemFields {
  position: number;
  sourceUrl: string;
  durationSeconds: number;
}

export const liveItemLimits = { durationSecondsMin: 1, durationSecondsMax: 86_400 } as const;

/**
 * Splits `items` into the VOD resource ids (in order) and the live items
 * (with their positions), checking every rule of the module comment.
 * @throws BAD_USER_INPUT (field items), URL_NOT_ALLOWED (field items).
 */
export function splitItems(items: readonly PlaylistItemInput[], loop: boolean, max: number): { vodIds: string[]; live: LiveItemFields[]; vodBreaks: AdBreakInput[][] } {
  if (items.length === 0) throw badInput('items', 'must name at least one item');
  if (items.length > max) throw badInput('items', `at most ${max} items`);
  const vodIds: string[] = [];
  const vodBreaks: AdBreakInput[][] = [];
  const live: LiveItemFields[] = [];
  items.forEach((item, position) => {
    const at = `item ${position}`;
    const hasVod = item.vodResourceId != null;
    const hasUrl = item.sourceUrl != null;
    if (hasVod === hasUrl) throw badInput('items', `${at}: give either vodResourceId or sourceUrl`);
    if (hasVod) {
      if (item.durationSeconds != null) throw badInput('items', `${at}: durationSeconds is for live items only (a VOD item plays its file)`);
      vodIds.push(item.vodResourceId as string);
      vodBreaks.push(item.breaks ?? []);
      return;
    }
    if (item.breaks != null && item.breaks.length > 0) throw badInput('items', `${at}: breaks are for VOD items only`);
    const url = item.sourceUrl as string;
    parseSourceUrl(url, 'items');
    const d = item.durationSeconds;
    if (d == null) throw badInput('items', `${at}: a live item needs durationSeconds`);
    if (!Number.isFinite(d) || d < liveItemLimits.durationSecondsMin || d > liveItemLimits.durationSecondsMax) {
      throw badInput('items', `${at}: durationSeconds must be ${liveItemLimits.durationSecondsMin}..${liveItemLimits.durationSecondsMax}`);
    }
    if (position === 0) throw badInput('items', 'the first item must be a VOD item: a live item joins a session that is already publishing');
    if (live.at(-1)?.position === position - 1) throw badInput('items', `${at}: two live items in a row; put a VOD item between them`);
    if (!loop && position === items.length - 1) throw badInput('items', 'a list that does not loop must end with a VOD item');
    live.push({ position, sourceUrl: url, durationSeconds: d });
  });
  return { vodIds, live, vodBreaks };
}

/** One entry of a channel's whole list, as the API shows it. */
export type ListEntry =
  | { readonly index: number; readonly kind: 'vod'; readonly vod: VodResource; readonly breaks: readonly StoredBreak[] }
  | { readonly index: number; readonly kind: 'live'; readonly id: string; readonly sourceUrl: string; readonly durationSeconds: number };

/** A stored live item (the Prisma row's fields this needs). */
export interface LiveItemRow {
  id: string;
  position: number;
  sourceUrl: string;
  durationSeconds: number;
}

/** The whole list in order: VOD items (`vods`, in order, with their `breaks` by the same order) and live items at their positions. */
export function wholeList(vods: readonly VodResource[], live: readonly LiveItemRow[], breaks: readonly (readonly StoredBreak[])[] = []): ListEntry[] {
  const positions = vodPositions(vods.length, live.map((l) => l.position));
  const out: ListEntry[] = [];
  vods.forEach((vod, i) => out.push({ index: positions[i] ?? i, kind: 'vod', vod, breaks: breaks[i] ?? [] }));
  for (const l of live) out.push({ index: l.position, kind: 'live', id: l.id, sourceUrl: l.sourceUrl, durationSeconds: l.durationSeconds });
  return out.sort((a, b) => a.index - b.index);
}

/** What a live item is called where a VOD item shows its name: its URL, masked. */
export const liveItemName = (sourceUrl: string): string => maskUrl(sourceUrl);

/** An entry as the API shows it (PlaylistEntry, and the item of NowPlaying and UpNext). */
export interface EntryView {
  index: number;
  vodResource: VodResource | null;
  live: { url: string; durationSeconds: number } | null;
  name: string;
  breaks: readonly StoredBreak[];
}

export function entryView(e: ListEntry): EntryView {
  if (e.kind === 'vod') return { index: e.index, vodResource: e.vod, live: null, name: e.vod.name, breaks: e.breaks };
  const url = liveItemName(e.sourceUrl);
  return { index: e.index, vodResource: null, live: { url, durationSeconds: e.durationSeconds }, name: url, breaks: [] };
}
