/**
 * The programme guide (issue #22 item 2): what each channel played, plays and
 * will play in a window of time, as one list of entries per channel.
 *
 *   PLAYED   an item that left the air, with its real times (played-log.ts)
 *   ON_AIR   the item playing now: its real start and the end it will reach if nothing cuts it
 *   PLANNED  what follows, projected from the item on air through the playlist
 *   LIVE     an online source relayed now: from the channel's start, open-ended (stop null)
 *
 * Planned entries come from sources of plans (`PlanSource`). Today there is
 * the playlist projection, and the wall-clock programme of issue #22 item 1
 * (programme-plan.ts, given by the composition root); the guide merges what they give. Stopped channels
 * have their history only.
 *
 * The projection: from the item on air's end, its announced successor (which
 * follows skips, jumps and playlist edits), then the playlist in order,
 * wrapping round when the channel loops. Each item lasts what the worker
 * last reported for it on this channel (exact: its period from the shortest
 * track and clean cuts), else its probe's shortest track (a mini-GOP longer at
 * most, so a long projection drifts by that much per unseen item).
 *
 * Owns: the window's rules and the merge. Imports channels (records, now
 * playing), played-log.ts and errors.
 */
import { breaksOf, playlistOf, type ChannelRecord } from '../channels/repository.js';
import { liveItemName, wholeList, type ListEntry } from '../channels/live-items.js';
import type { NowPlaying } from '../channels/events.js';
import { shortestTrackSeconds, type StoredBreak } from '../channels/ad-breaks.js';
import { isActive } from '../channels/status.js';
import { badInput, notFound } from '../errors.js';
import type { VodResource } from '../generated/prisma-sqlite/client.js';
import type { PlayedLog } from './played-log.js';

export type ProgrammeKind = 'PLAYED' | 'ON_AIR' | 'PLANNED' | 'LIVE';

export interface ProgrammeEntry {
  start: Date;
  /** Null: open-ended (a LIVE relay, until it stops). */
  stop: Date | null;
  title: string;
  kind: ProgrammeKind;
  /** The VOD resource played; null for LIVE. */
  vodResourceId: string | null;
  /** Its place in the playlist (0-based); null for LIVE. */
  index: number | null;
  /** Ad breaks in it (each one's cue point), by time; a plan source may give its own, else withBreaks() reads the playlist's. */
  breaks?: GuideBreak[];
}

/** An ad break of a guide entry: the item's declared break, placed at the entry's start plus its offset. */
export interface GuideBreak {
  id: string;
  offsetSeconds: number;
  durationSeconds: number;
  at: Date;
}

/**
 * The entry's ad breaks, from the channel's playlist as it is now (the
 * entry's index, if the VOD resource there is still the entry's): those that
 * fall before its stop, placed from its start. A played item that was edited
 * out of the list since shows none.
 */
export function withBreaks(e: ProgrammeEntry, list: readonly ListEntry[]): ProgrammeEntry {
  if (e.breaks !== undefined) return e;
  const item = e.index === null ? undefined : list[e.index];
  if (item?.kind !== 'vod' || item.vod.id !== e.vodResourceId) return { ...e, breaks: [] };
  return { ...e, breaks: placeBreaks(item.breaks, e.start.getTime(), e.stop?.getTime() ?? null) };
}

/** Declared breaks placed from an item's start (ms), those before its stop (null: open-ended). */
export function placeBreaks(breaks: readonly StoredBreak[], startMs: number, stopMs: number | null): GuideBreak[] {
  return breaks.map((b) => ({ ...b, at: new Date(startMs + Math.round(b.offsetSeconds * 1000)) })).filter((b) => stopMs === null || b.at.getTime() < stopMs);
}

export interface ChannelProgramme {
  id: string;
  name: string;
  entries: ProgrammeEntry[];
}

export interface ProgrammeWindow {
  from: Date;
  to: Date;
}

/** Defaults and bounds of a window, ms. */
export const programmeLimits = {
  defaultBackMs: 6 * 3600_000,
  defaultAheadMs: 24 * 3600_000,
  /** `to` at most this far ahead of now. */
  maxAheadMs: 7 * 24 * 3600_000,
  /** Planned entries per channel at most: a list of very short items ends its projection there. */
  maxPlannedPerChannel: 2000,
} as const;

/**
 * The window asked for, with defaults (the last 6 hours and the next 24).
 * @throws BAD_USER_INPUT naming `from` or `to`: not a date-time, `to` not after
 *   `from`, or `to` more than 7 days ahead.
 */
export function programmeWindow(from: Date | null | undefined, to: Date | null | undefined, now = Date.now()): ProgrammeWindow {
  for (const [field, v] of [['from', from], ['to', to]] as const) {
    if (v != null && Number.isNaN(v.getTime())) throw badInput(field, 'must be an RFC 3339 date-time, e.g. 2026-12-05T18:00:00Z');
  }
  const f = from ?? new Date(now - programmeLimits.defaultBackMs);
  const t = to ?? new Date(Math.min(Math.max(now, f.getTime()) + programmeLimits.defaultAheadMs, now + programmeLimits.maxAheadMs));
  if (t.getTime() <= f.getTime()) throw to == null ? badInput('from', 'must be less than 7 days ahead') : badInput('to', `must be after from (${f.toISOString()})`);
  if (t.getTime() > now + programmeLimits.maxAheadMs) {
    throw badInput('to', `must be at most 7 days ahead (${new Date(now + programmeLimits.maxAheadMs).toISOString()}); the guide plans no further`);
  }
  return { from: f, to: t };
}

/** What a source of plans is told about a running channel. */
export interface PlanContext {
  rec: ChannelRecord;
  /** Its item on air; null for an online channel or before the first report. */
  onAir: NowPlaying | null;
  window: ProgrammeWindow;
}

/** Planned entries of a channel within the window (the playlist today; a wall-clock programme later). */
export type PlanSource = (ctx: PlanContext) => ProgrammeEntry[];

export interface ProgrammeDeps {
  played: Pick<PlayedLog, 'history' | 'lengthMs'>;
  nowPlaying: (id: string) => NowPlaying | null;
  /** Names of VOD resources by id (the history may name some the records no longer hold). */
  vodNames: (ids: readonly string[]) => Promise<Map<string, string>>;
  /** Extra sources of plans, after the playlist projection. */
  planSources?: readonly PlanSource[];
}

/** The length an item is expected to play, ms: what the worker reported, else the probe's shortest track. */
export function expectedMs(played: ProgrammeDeps['played'], channelId: string, vod: VodResource): number {
  const seen = played.lengthMs(channelId, vod.id);
  if (seen !== null) return seen;
  return Math.round(shortestTrackSeconds(vod) * 1000);
}

/** The playlist projection (see the module comment); a live item lasts its duration. */
export function playlistPlan(played: ProgrammeDeps['played']): PlanSource {
  return ({ rec, onAir, window }) => {
    // A channel on a wall-clock programme is planned by programme-plan.ts.
    if (rec.sourceType !== 'VOD' || onAir === null || rec.programme !== null) return [];
    const list = wholeList(playlistOf(rec), rec.liveItems);
    const idOf = (e: ListEntry | undefined): string | undefined => (e === undefined ? undefined : e.kind === 'vod' ? e.vod.id : e.id);
    const out: ProgrammeEntry[] = [];
    let at = onAir.endsAt.getTime();
    let next = onAir.next === null ? null : { index: onAir.next.index, entry: list[onAir.next.index] };
    // The announced successor may be an item the record no longer lists at that place (an edit in flight): its id decides.
    if (next !== null && idOf(next.entry) !== onAir.next?.itemId) next = null;
    while (next?.entry !== undefined && at < window.to.getTime() && out.length < programmeLimits.maxPlannedPerChannel) {
      const e = next.entry;
      const ms = e.kind === 'vod' ? expectedMs(played, rec.id, e.vod) : Math.round(e.durationSeconds * 1000);
      if (!(ms > 0)) break;
      const what = e.kind === 'vod' ? { title: e.vod.name, vodResourceId: e.vod.id } : { title: liveItemName(e.sourceUrl), vodResourceId: null };
      out.push({ start: new Date(at), stop: new Date(at + ms), ...what, kind: 'PLANNED', index: next.index });
      at += ms;
      const i = next.index + 1 < list.length ? next.index + 1 : rec.loop ? 0 : -1;
      next = i < 0 ? null : { index: i, entry: list[i] };
    }
    return out;
  };
}

/**
 * A played or on-air item's title, VOD resource and place (`index`, as the
 * worker reported it): a live item of the channel shows its masked URL and
 * no VOD resource; so does a live-source entry of its programme (its id is
 * the stored entry's), which has no place in the list either.
 */
function describe(rec: ChannelRecord, itemId: string, vodName: string | undefined, index: number): { title: string; vodResourceId: string | null; index: number | null } {
  const item = rec.liveItems.find((l) => l.id === itemId);
  if (item !== undefined) return { title: liveItemName(item.sourceUrl), vodResourceId: null, index };
  const entryUrl = rec.programme?.entries.find((e) => e.id === itemId)?.sourceUrl ?? null;
  if (entryUrl !== null) return { title: liveItemName(entryUrl), vodResourceId: null, index: null };
  return { title: vodName ?? itemId, vodResourceId: itemId, index };
}

const overlaps = (e: ProgrammeEntry, w: ProgrammeWindow): boolean => e.start < w.to && (e.stop === null || e.stop > w.from);

/** The programme of each channel in `recs`, in their order, within the window. */
export async function programmeOf(deps: ProgrammeDeps, recs: readonly ChannelRecord[], window: ProgrammeWindow): Promise<ChannelProgramme[]> {
  const rows = recs.length === 0 ? [] : await deps.played.history(recs.length === 1 ? [recs[0]!.id] : null, window.from, window.to);
  const names = await deps.vodNames([...new Set(rows.map((r) => r.vodResourceId))]);
  const sources = [playlistPlan(deps.played), ...(deps.planSources ?? [])];
  return recs.map((rec) => {
    const entries: ProgrammeEntry[] = rows
      .filter((r) => r.virtualLiveId === rec.id)
      .map((r) => ({ start: r.startedAt, stop: r.endedAt, ...describe(rec, r.vodResourceId, names.get(r.vodResourceId), r.position), kind: 'PLAYED' }));
    if (rec.status === 'LIVING' || rec.status === 'STARTING') {
      const onAir = rec.sourceType === 'VOD' ? deps.nowPlaying(rec.id) : null;
      if (rec.sourceType === 'ONLINE') {
        entries.push({ start: rec.startedAt ?? new Date(), stop: null, title: rec.name, kind: 'LIVE', vodResourceId: null, index: null });
      } else if (onAir !== null) {
        const vod = playlistOf(rec).find((v) => v.id === onAir.itemId);
        entries.push({ start: onAir.startedAt, stop: onAir.endsAt, ...describe(rec, onAir.itemId, vod?.name, onAir.index), kind: 'ON_AIR' });
      }
      for (const source of sources) entries.push(...source({ rec, onAir, window }));
    } else if (isActive(rec.status) && rec.sourceType === 'ONLINE') {
      // RECONNECTING: the relay is still on (in place, or the slate) and comes back by itself.
      entries.push({ start: rec.startedAt ?? new Date(), stop: null, title: rec.name, kind: 'LIVE', vodResourceId: null, index: null });
    }
    const list = rec.sourceType === 'VOD' ? wholeList(playlistOf(rec), rec.liveItems, breaksOf(rec)) : [];
    const shown = entries.filter((e) => overlaps(e, window)).map((e) => withBreaks(e, list));
    return { id: rec.id, name: rec.name, entries: shown.sort((a, b) => a.start.getTime() - b.start.getTime()) };
  });
}

/** The guide as the API and the /epg/ routes ask for it. */
export class ProgrammeGuide {
  constructor(private readonly deps: ProgrammeDeps & { channels: { get(id: string): Promise<ChannelRecord | null>; list(): Promise<ChannelRecord[]> } }) {}

  /**
   * The programme of channel `id` (null: every channel) in the window from..to (defaults in programmeWindow).
   * @throws BAD_USER_INPUT (from, to) as programmeWindow; NOT_FOUND for an unknown channel.
   */
  async read(id: string | null, from?: Date | null, to?: Date | null): Promise<{ window: ProgrammeWindow; programmes: ChannelProgramme[] }> {
    const window = programmeWindow(from, to);
    let recs: ChannelRecord[];
    if (id === null) recs = await this.deps.channels.list();
    else {
      const rec = await this.deps.channels.get(id);
      if (rec === null) throw notFound('virtual live', id);
      recs = [rec];
    }
    return { window, programmes: await programmeOf(this.deps, recs, window) };
  }
}
