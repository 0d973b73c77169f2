/**
 * Playout control of VOD and playlist channels, on the supervisor's side:
 * what is on air (as each channel's worker reports it at every item
 * boundary), and skips and jumps (checked here, carried out by the worker at
 * its next clean cut, worker/playout.ts).
 *
 * - nowPlaying is kept in memory, per channel, from the worker's 'item'
 *   events: it describes a running pipeline, so it is forgotten when the
 *   channel stops, and a restarted pipeline reports its first item again.
 * - Each item event goes out as a detail StatusChange (status unchanged)
 *   carrying it, so subscribers see every boundary.
 * - A command waits for the worker's answer, which comes once the cut is
 *   decided (a pace period and a mini-GOP at most) with the exact switch time.
 * - A live cut-in (takeLive) is answered once the source's first keyframe
 *   went out, or refused (unreachable, tracks that differ from the
 *   playlist's); a return (returnToPlaylist) like a jump. The cut-in is
 *   runtime state, like nowPlaying: a restarted pipeline plays the playlist.
 *
 * Owns: the now-playing book and the commands in flight. Imports the
 * ports, repository, status, errors and the pool's playout types.
 */
import { VliveError, badInput, notFound } from '../errors.js';
import type { Logger } from '../log.js';
import { liveProtocolOf, maskUrl, parseSourceUrl } from '../media/urls.js';
import type { LiveSource, VodItem } from '../pool/pipeline-spec.js';
import type { CutInSource, PlayoutCommand, PlayoutEvent, PlayoutItemRef, ReturnMode } from '../pool/playout-spec.js';

export type { CuePointView, CutInView, NowPlaying };
import type { CuePointView, CutInView, NowPlaying, StatusEvents } from './events.js';
import { playlistOf, type ChannelRecord } from './repository.js';
import { isActive } from './status.js';

/** The answer to a skip or jump: item `index` goes on air at `at`. */
export interface PlayoutSwitch extends PlayoutItemRef {
  at: Date;
}

/** A command the worker has not answered by then is given up (it may still happen). */
const answerTimeoutMs = 5000;

/**
 * A take-live waits for its source's first keyframe: the connect timeout,
 * then this long (the worker refuses it by itself 2 s before, cut-in.ts).
 */
const keyframeWaitMs = 7000;

const cutInSources: Readonly<Record<CutInSource, CutInView['source']>> = { 'on-air': 'ON_AIR', slate: 'SLATE', waiting: 'WAITING' };

/** What a command waits for: the worker's event that answers it. */
interface Waiter {
  settle(event: Extract<PlayoutEvent, { kind: 'switched' | 'cut-in' }>): void;
  reject(e: Error): void;
}

export interface PlayoutDeskDeps {
  /** Sends a command to the channel's worker; false when it has no pipeline. */
  send(channelId: string, requestId: number, command: PlayoutCommand): boolean;
  events: StatusEvents;
  /** Publishes a detail event of the channel carrying `playing`. */
  announce(channelId: string, playing: NowPlaying): void;
  /** Publishes a detail event of the channel carrying its cut-in (null: it ended). */
  announceCutIn(channelId: string, cutIn: CutInView | null): void;
  /** Publishes a detail event of the channel carrying a cue point it sent. */
  announceCue(channelId: string, cue: CuePointView): void;
  log: Logger;
}

export class PlayoutDesk {
  readonly #deps: PlayoutDeskDeps;
  readonly #playing = new Map<string, NowPlaying>();
  readonly #cutIns = new Map<string, CutInView>();
  readonly #lastCues = new Map<string, CuePointView>();
  readonly #waiting = new Map<number, Waiter>();
  #nextRequest = 1;
  readonly #unsubscribe: () => void;

  constructor(deps: PlayoutDeskDeps) {
    this.#deps = deps;
    // What a stopped channel played is no longer on air.
    this.#unsubscribe = deps.events.subscribe((change) => {
      if (!isActive(change.status)) {
        this.#playing.delete(change.id);
        this.#lastCues.delete(change.id);
      }
      // A VOD channel leaves LIVING only when its pipeline ends or is replaced: a new one plays its playlist.
      if (change.status !== 'LIVING') this.#cutIns.delete(change.id);
    });
  }

  dispose(): void {
    this.#unsubscribe();
    for (const w of this.#waiting.values()) w.reject(new VliveError('SHUTTING_DOWN', 'the service is shutting down'));
    this.#waiting.clear();
  }

  /** What the channel has on air; null when it does not run a VOD pipeline here (or before its first report). */
  nowPlaying(channelId: string): NowPlaying | null {
    return this.#playing.get(channelId) ?? null;
  }

  /** The last cue point the channel sent; null when it does not run a VOD pipeline here (or sent none yet). */
  lastCuePoint(channelId: string): CuePointView | null {
    return this.#lastCues.get(channelId) ?? null;
  }

  /** The channel's live cut-in; null when it plays its playlist (or does not run here). */
  cutIn(channelId: string): CutInView | null {
    return this.#cutIns.get(channelId) ?? null;
  }

  /** An event of a channel's worker (the pool checked it comes from the channel's placement). */
  onEvent(channelId: string, event: PlayoutEvent): void {
    switch (event.kind) {
      case 'item': {
        const playing: NowPlaying = {
          index: event.index,
          itemId: event.itemId,
          startedAt: new Date(event.startedAtMs),
          endsAt: new Date(event.startedAtMs + event.durationMs),
          loop: event.loop,
          next: event.next,
        };
        this.#playing.set(channelId, playing);
        this.#deps.announce(channelId, playing);
        return;
      }
      case 'switched':
        this.#settle(event.requestId)?.settle(event);
        return;
      case 'refused':
        this.#settle(event.requestId)?.reject(new VliveError(event.code ?? 'INVALID_STATE', event.error));
        return;
      case 'cut-in':
        this.#onCutIn(channelId, event);
        return;
      case 'cue': {
        const c = event.cue;
        const view: CuePointView = {
          kind: c.kind,
          id: c.id,
          index: c.index,
          itemId: c.itemId,
          at: new Date(event.atMs),
          mediaTimeSeconds: c.mediaMs / 1000,
          offsetSeconds: c.offsetMs / 1000,
          durationSeconds: c.durationMs / 1000,
          keyframeTimeSeconds: c.keyframeMs === null ? null : c.keyframeMs / 1000,
          loop: c.loop,
        };
        this.#lastCues.set(channelId, view);
        this.#deps.announceCue(channelId, view);
        return;
      }
      default:
        event satisfies never;
    }
  }

  /**
   * Checks a skip or jump against the channel's record and sends it to the
   * channel's worker; resolves with the switch, once the worker has decided it.
   * `runsHere`: this node runs the channel's pipeline.
   * @throws WRONG_SOURCE_TYPE for an ONLINE channel, INVALID_STATE when the
   *   channel is not LIVING here, BAD_USER_INPUT (field index) for an index
   *   outside its playlist.
   */
  async command(rec: ChannelRecord | null, id: string, command: PlayoutCommand, runsHere: boolean): Promise<PlayoutSwitch> {
    if (rec === null) throw notFound('virtual live', id);
    if (rec.sourceType !== 'VOD') throw new VliveError('WRONG_SOURCE_TYPE', `virtual live ${id} relays an online source; skip and jump need a VOD file or playlist`);
    if (rec.liveItems.length > 0) throw new VliveError('INVALID_STATE', `virtual live ${id} has live items in its playlist; skip and jump are not available there`);
    const items = playlistOf(rec).length;
    if (command.kind === 'jump' && !(Number.isSafeInteger(command.index) && command.index >= 0 && command.index < items)) {
      throw badInput('index', `must be 0..${items - 1}, the playlist has ${items} item${items === 1 ? '' : 's'}`);
    }
    if (rec.status !== 'LIVING') throw new VliveError('INVALID_STATE', `virtual live ${id} is ${rec.status}; skip and jump need it LIVING`);
    if (!runsHere) throw new VliveError('INVALID_STATE', `virtual live ${id} runs on another node; send the command to that node's API`);
    const sw = await this.#ask(id, command, answerTimeoutMs, (e) => (e.kind === 'switched' ? { index: e.index, itemId: e.itemId, at: new Date(e.atMs) } : null));
    this.#deps.log.info('playout switch', { channel: id, command: command.kind, index: sw.index, at: sw.at.toISOString() });
    return sw;
  }

  /**
   * A live cut-in: `url` replaces the playlist at its first keyframe, in the
   * same publish session; resolves once that keyframe went out. `slate` fills
   * while the source is away.
   * @throws as command(), BAD_USER_INPUT or URL_NOT_ALLOWED (field url) for a
   *   URL a sourceUrl could not be, INVALID_STATE when a cut-in is already on,
   *   SOURCE_UNREACHABLE when the source sends no keyframe within its connect
   *   timeout, INCOMPATIBLE_MEDIA when its tracks differ from the playlist's.
   */
  async takeLive(rec: ChannelRecord | null, id: string, url: string, slate: VodItem | null, runsHere: boolean): Promise<CutInView> {
    if (rec === null) throw notFound('virtual live', id);
    if (rec.sourceType !== 'VOD') throw new VliveError('WRONG_SOURCE_TYPE', `virtual live ${id} relays an online source; a cut-in needs a VOD file or playlist`);
    const parsed = parseSourceUrl(url, 'url');
    this.#assertRunning(rec, id, runsHere, 'a cut-in');
    if (rec.liveItems.length > 0) throw new VliveError('INVALID_STATE', `virtual live ${id} has live items in its playlist; it takes no cut-in`);
    if (this.#cutIns.has(id)) throw new VliveError('INVALID_STATE', `virtual live ${id} already has a live cut-in; return to the playlist first`);
    const source: LiveSource = {
      label: 'primary',
      protocol: liveProtocolOf(parsed),
      url,
      connectTimeoutMs: rec.connectTimeoutMs,
      rtspTransport: rec.rtspTransport === 'UDP' ? 'udp' : 'tcp',
      transcode: rec.liveTranscode === 'ALWAYS' ? 'always' : rec.liveTranscode === 'NEVER' ? 'never' : 'auto',
    };
    const view = await this.#ask(id, { kind: 'take-live', source, slate }, rec.connectTimeoutMs + keyframeWaitMs, (e) =>
      e.kind === 'cut-in' && e.state === 'on-air' ? { url: maskUrl(url), startedAt: new Date(e.atMs), source: 'ON_AIR' as const } : null,
    );
    this.#cutIns.set(id, view);
    this.#deps.announceCutIn(id, view);
    this.#deps.log.info('live cut-in', { channel: id, url: view.url, at: view.startedAt.toISOString() });
    return view;
  }

  /**
   * Ends a cut-in: back to the playlist where it was left (resume) or where
   * it would be now (wallclock). Resolves with the switch.
   * @throws INVALID_STATE when there is no cut-in, or wallclock would pass the end of a list that does not loop.
   */
  async returnToPlaylist(rec: ChannelRecord | null, id: string, mode: ReturnMode, runsHere: boolean): Promise<PlayoutSwitch> {
    if (rec === null) throw notFound('virtual live', id);
    if (rec.sourceType !== 'VOD') throw new VliveError('WRONG_SOURCE_TYPE', `virtual live ${id} relays an online source; it has no playlist to return to`);
    this.#assertRunning(rec, id, runsHere, 'a return to the playlist');
    if (!this.#cutIns.has(id)) throw new VliveError('INVALID_STATE', `virtual live ${id} has no live cut-in; it plays its playlist`);
    const sw = await this.#ask(id, { kind: 'return', mode }, answerTimeoutMs, (e) => (e.kind === 'switched' ? { index: e.index, itemId: e.itemId, at: new Date(e.atMs) } : null));
    this.#deps.log.info('back to the playlist', { channel: id, mode, index: sw.index, at: sw.at.toISOString() });
    return sw;
  }

  #assertRunning(rec: ChannelRecord, id: string, runsHere: boolean, what: string): void {
    if (rec.status !== 'LIVING') throw new VliveError('INVALID_STATE', `virtual live ${id} is ${rec.status}; ${what} needs it LIVING`);
    if (!runsHere) throw new VliveError('INVALID_STATE', `virtual live ${id} runs on another node; send the command to that node's API`);
  }

  /** A cut-in changed on the worker: the answer to a take-live, the source away or back, or its end. */
  #onCutIn(channelId: string, event: Extract<PlayoutEvent, { kind: 'cut-in' }>): void {
    if (event.requestId !== null) {
      this.#settle(event.requestId)?.settle(event);
      return;
    }
    const had = this.#cutIns.get(channelId);
    if (had === undefined) return;
    if (event.state === 'ended') {
      this.#cutIns.delete(channelId);
      this.#deps.announceCutIn(channelId, null);
      return;
    }
    const now: CutInView = { ...had, source: cutInSources[event.state] };
    this.#cutIns.set(channelId, now);
    this.#deps.announceCutIn(channelId, now);
  }

  /** Sends `command` to the channel's worker and waits for the event `pick` takes as its answer. */
  async #ask<T>(id: string, command: PlayoutCommand, timeoutMs: number, pick: (e: Extract<PlayoutEvent, { kind: 'switched' | 'cut-in' }>) => T | null): Promise<T> {
    const requestId = this.#nextRequest++;
    const answer = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(requestId);
        reject(new VliveError('INVALID_STATE', `the channel's worker did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(requestId, {
        settle: (e) => {
          clearTimeout(timer);
          const v = pick(e);
          if (v === null) reject(new VliveError('INVALID_STATE', `the channel's worker answered ${e.kind} to ${command.kind}`));
          else resolve(v);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
    });
    if (!this.#deps.send(id, requestId, command)) {
      this.#settle(requestId)?.reject(new VliveError('INVALID_STATE', `virtual live ${id} has no running pipeline`));
    }
    return answer;
  }

  #settle(requestId: number): Waiter | undefined {
    const w = this.#waiting.get(requestId);
    this.#waiting.delete(requestId);
    return w;
  }
}
