/**
 * setProgramme and clearProgramme (issue #22 item 1): a channel's wall-clock
 * programme checked, stored, and kept in its worker.
 *
 * - Checked before anything is written: the input's rules
 *   (programme-input.ts), the channel (NOT_FOUND; an ONLINE one is
 *   WRONG_SOURCE_TYPE), every VOD id (NOT_FOUND), and the items as one
 *   publish session like a playlist's (INCOMPATIBLE_MEDIA; under an output
 *   profile, conformable), with what a running channel has on the wire.
 * - The worker gets the occurrences from a day back to three days ahead
 *   (`windowMs`), aligned to the hour, with the programme's items as its
 *   list: when the channel turns LIVING (its pipeline starts on the filler,
 *   then joins the entry on now), after an edit (it takes effect from the
 *   next entry), and whenever what it would send changed: the window gained
 *   an occurrence, or the stored programme changed (`refreshMs`). An edit
 *   made on another node of a cluster reaches the node that runs it at once
 *   (ChannelService.tellOwner, then onRemoteEdit there); the refresh also
 *   catches one whose notification was lost.
 * - A live-source entry's slot carries its source as the channel pulls it
 *   (its connect timeout, RTSP transport, transcode), and the stored
 *   entry's id, which names it in the worker's cues and the played log.
 *
 * Owns: the programme's window and what was last sent per channel.
 * Imports channels (records, sends), the planner and the input rules.
 */
import type { StatusEvents } from '../channels/events.js';
import { checkSession } from '../channels/input.js';
import { breaksSpec, checkBreaks, parseBreaks, shortestTrackSeconds, type StoredBreak } from '../channels/ad-breaks.js';
import { playlistOf, type ChannelProgramme, type ChannelRecord, type ChannelRepository, type ChannelVod } from '../channels/repository.js';
import type { ChannelService } from '../channels/service.js';
import { checkCompatible } from '../media/compat.js';
import { parseProfileKey } from '../media/output-profile.js';
import { isActive } from '../channels/status.js';
import { notFound, VliveError } from '../errors.js';
import type { Logger } from '../log.js';
import { checkId } from '../names.js';
import type { AdBreak, LiveSource, ProgrammeSpec } from '../pool/pipeline-spec.js';
import { pullOf } from '../channels/spec.js';
import { entryStartOf, validateProgramme, type ProgrammeInput } from './programme-input.js';
import { occurrences, type EntryStart, type PlanEntry, type ProgrammePlan } from './programme-plan.js';

const hourMs = 3_600_000;
const dayMs = 24 * hourMs;

/** The worker's window: a day back, three days ahead, from the hour. */
export const windowMs = { back: dayMs, ahead: 3 * dayMs } as const;

/** A stored programme as the planner takes it. */
export function planOf(p: ChannelProgramme): ProgrammePlan {
  // Stored starts passed validateProgramme; the epoch stands in for one that no longer parses.
  const start = (s: string): EntryStart => entryStartOf(s) ?? { kind: 'at', ms: 0 };
  return {
    timeZone: p.timeZone,
    dayStartSecond: p.dayStartSecond,
    entries: p.entries.map((e) => ({
      start: start(e.start),
      durationMs: e.durationSeconds === null ? null : Math.round(e.durationSeconds * 1000),
      items: e.items.map((i) => i.vodResourceId),
      sourceUrl: e.sourceUrl,
    })),
  };
}

/** A stored entry's ad breaks as a slot carries them (none: no field). */
function slotBreaks(json: string | undefined): { breaks?: AdBreak[] } {
  const breaks = json === undefined ? [] : parseBreaks(json);
  return breaks.length === 0 ? {} : { breaks: breaksSpec(breaks) };
}

/** A stored live-source entry's source as its slot carries it (a VOD entry: no field). */
function liveOf(e: ChannelProgramme['entries'][number] | undefined, pull: (url: string, field: string) => LiveSource): { live?: { id: string; source: LiveSource } } {
  return e?.sourceUrl == null ? {} : { live: { id: e.id, source: pull(e.sourceUrl, 'sourceUrl') } };
}

/**
 * The slots a worker gets at `nowMs` (see the module comment); `pull` says
 * how the channel pulls a live-source entry's URL (channels/spec.ts pullOf).
 */
export function programmeSpecOf(p: ChannelProgramme, nowMs: number, pull: (url: string, field: string) => LiveSource): ProgrammeSpec {
  const hour = Math.floor(nowMs / hourMs) * hourMs;
  const plan = planOf(p);
  const toMs = hour + windowMs.ahead;
  const slots = occurrences(plan, hour - windowMs.back, toMs).map((o) => ({
    startMs: o.startMs,
    // After a dated programme's last entry: its content, then the filler for good.
    endMs: Number.isFinite(o.endMs) ? o.endMs : Math.max(o.startMs, toMs) + 7 * dayMs,
    items: [...(plan.entries[o.entry]?.items ?? [])],
    ...slotBreaks(p.entries[o.entry]?.breaks),
    ...liveOf(p.entries[o.entry], pull),
  }));
  return { filler: p.fillers.map((f) => f.vodResourceId), slots };
}

export interface ProgrammeServiceDeps {
  channels: Pick<ChannelService, 'get' | 'list' | 'sendProgramme' | 'cutIn' | 'tellOwner' | 'onRemoteEdit'>;
  repo: Pick<ChannelRepository, 'setProgramme' | 'getVods'>;
  /** This node's own status events: a channel that turns LIVING here gets its programme. */
  events: Pick<StatusEvents, 'subscribe'>;
  log: Logger;
  now?: () => number;
  /** How often running channels' programmes are compared with what their workers have, ms (default 60 s). */
  refreshMs?: number;
}

export class ProgrammeService {
  readonly #deps: ProgrammeServiceDeps;
  readonly #now: () => number;
  /** What each channel's worker was last sent (JSON), so a refresh sends only a change. */
  readonly #sent = new Map<string, string>();
  #timer: NodeJS.Timeout | null = null;
  #unsubscribe: (() => void) | null = null;
  #unlisten: (() => void) | null = null;

  constructor(deps: ProgrammeServiceDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  start(): void {
    this.#unsubscribe = this.#deps.events.subscribe((c) => {
      if (c.status === 'LIVING' && c.previous !== 'LIVING') {
        this.#sent.delete(c.id);
        this.#push(c.id).catch((err: unknown) => this.#deps.log.warn('programme not sent', { channel: c.id, err: (err as Error).message }));
      }
    });
    // An edit made on another node of a cluster, for a channel this node runs: sent now, not at the next refresh.
    this.#unlisten = this.#deps.channels.onRemoteEdit((id) => {
      this.#sent.delete(id);
      this.#push(id).catch((err: unknown) => this.#deps.log.warn('programme not sent', { channel: id, err: (err as Error).message }));
    });
    this.#timer = setInterval(() => void this.#refresh(), this.#deps.refreshMs ?? 60_000);
    this.#timer.unref();
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unlisten?.();
    if (this.#timer !== null) clearInterval(this.#timer);
  }

  /**
   * Replaces channel `id`'s programme; a running channel takes it from its next entry.
   * @throws BAD_USER_INPUT and URL_NOT_ALLOWED (programme-input.ts), NOT_FOUND (channel, VOD resource),
   *   WRONG_SOURCE_TYPE (an ONLINE channel), INCOMPATIBLE_MEDIA (items that cannot share a session),
   *   INVALID_STATE (a running channel with live items or a cut-in on air);
   *   BAD_USER_INPUT (entries[i].breaks) for a break outside its file.
   */
  async set(id: string, input: ProgrammeInput): Promise<ChannelRecord> {
    const fields = validateProgramme(input);
    const rec = await this.#channel(id);
    const ids = [...fields.filler, ...fields.entries.flatMap((e) => e.items)];
    const vods = await this.#deps.repo.getVods([...new Set(ids)]);
    const known = new Set(vods.map((v) => v.id));
    const unknown = ids.find((v) => !known.has(v));
    if (unknown !== undefined) throw notFound('VOD resource', unknown);
    const profile = parseProfileKey(rec.outputProfile);
    checkSession(vods, profile, 'the programme');
    const breaks = this.#breaks(input, fields.entries, vods);
    if (isActive(rec.status)) {
      this.#assertSwappable(rec);
      // A running channel takes the programme inside the session it has.
      const onAir = playlistOf(rec)[0];
      if (profile === null && onAir !== undefined) checkCompatible([onAir, ...vods], 'the running channel');
    }
    await this.#deps.repo.setProgramme(id, {
      timeZone: fields.timeZone,
      dayStartSecond: fields.dayStartSecond,
      filler: fields.filler,
      entries: fields.entries.map((e, i) => ({
        start: input.entries[i]?.start ?? '',
        durationSeconds: e.durationMs === null ? null : e.durationMs / 1000,
        items: [...e.items],
        breaks: breaks[i] ?? [],
        sourceUrl: e.sourceUrl,
      })),
    });
    this.#deps.log.info('programme set', { channel: id, entries: fields.entries.length, timeZone: fields.timeZone });
    await this.#apply(rec);
    return this.#channel(id);
  }

  /** Removes channel `id`'s programme; a running channel goes back to its playlist after the item playing. @throws NOT_FOUND */
  async clear(id: string): Promise<ChannelRecord> {
    const rec = await this.#channel(id);
    if (isActive(rec.status)) this.#assertSwappable(rec);
    await this.#deps.repo.setProgramme(id, null);
    this.#deps.log.info('programme cleared', { channel: id });
    await this.#apply(rec);
    return this.#channel(id);
  }

  /**
   * Each entry's ad breaks, checked against its file's length (its shortest
   * track, or the entry's duration when shorter: a break past the cut never goes out).
   * @throws BAD_USER_INPUT (field entries[i].breaks)
   */
  #breaks(input: ProgrammeInput, entries: readonly PlanEntry[], vods: readonly ChannelVod[]): StoredBreak[][] {
    const byId = new Map(vods.map((v) => [v.id, v]));
    return input.entries.map((e, i) => {
      const given = e.breaks ?? [];
      const vod = byId.get(entries[i]?.items[0] ?? '');
      if (given.length === 0 || vod === undefined) return [];
      const durationMs = entries[i]?.durationMs ?? null;
      const seconds = Math.min(shortestTrackSeconds(vod), durationMs === null ? Infinity : durationMs / 1000);
      return checkBreaks(given, `entries[${i}]`, seconds, `entries[${i}].breaks`);
    });
  }

  /** A running playlist with live items, or a cut-in on air, is planned by its worker: no programme swaps in or out under them. */
  #assertSwappable(rec: ChannelRecord): void {
    if (this.#deps.channels.cutIn(rec.id) !== null) throw new VliveError('INVALID_STATE', `virtual live ${rec.id} has a live cut-in on air: return to the playlist first`);
    if (rec.liveItems.length > 0) throw new VliveError('INVALID_STATE', `virtual live ${rec.id} is running a playlist with live items: stop it to put it on a programme or take it off one`);
  }

  async #channel(id: string): Promise<ChannelRecord> {
    const rec = await this.#deps.channels.get(checkId('virtualLiveId', id));
    if (rec === null) throw notFound('virtual live', id);
    if (rec.sourceType !== 'VOD') throw new VliveError('WRONG_SOURCE_TYPE', `virtual live ${id} relays an online source; a programme needs a VOD channel`);
    return rec;
  }

  /** After an edit: the running channel's worker gets it now, here or through the node that runs it. */
  async #apply(before: ChannelRecord): Promise<void> {
    if (isActive(before.status) && this.#deps.channels.tellOwner(before.id)) return;
    await this.#push(before.id);
  }

  /** Sends the stored programme (or its removal) to the channel's worker, if it runs here. */
  async #push(id: string, rec?: ChannelRecord | null): Promise<void> {
    const r = rec === undefined ? await this.#deps.channels.get(id) : rec;
    // Nothing to send, nor to take back: a channel that never had a programme here keeps its playlist untouched.
    if (r === null || (r.programme === null && !this.#sent.has(id))) return;
    const spec = r.programme === null ? null : programmeSpecOf(r.programme, this.#now(), (url, field) => pullOf(r, url, field));
    const json = JSON.stringify(spec);
    if (await this.#deps.channels.sendProgramme(id, spec)) this.#sent.set(id, json);
  }

  async #refresh(): Promise<void> {
    try {
      for (const rec of await this.#deps.channels.list()) {
        if (rec.status !== 'LIVING' || rec.sourceType !== 'VOD') continue;
        const spec = rec.programme === null ? null : programmeSpecOf(rec.programme, this.#now(), (url, field) => pullOf(rec, url, field));
        const last = this.#sent.get(rec.id);
        if ((last === undefined && spec === null) || last === JSON.stringify(spec)) continue;
        await this.#push(rec.id, rec);
      }
    } catch (err) {
      this.#deps.log.warn('programme refresh failed', { err: (err as Error).message });
    }
  }
}
