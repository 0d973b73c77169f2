/**
 * The VOD channel's side of a live cut-in (issue #21 item 4): where the
 * playlist stops when the live source joins, and how it comes back.
 *
 * - Every tag of a VOD channel goes out through `send`, which remembers the
 *   last time out per track and the last sequence headers: the source joins
 *   after them, and the playlist comes back after the source.
 * - The playlist plays on until the source's first keyframe, up to where the
 *   source joins (a playout delay ahead of the clock), so the switch leaves
 *   no hole; then it is held, its place noted (item, item time, output time).
 * - A return first lets the source's audio catch up with its video (a live
 *   source interleaves its tracks loosely; cut at once, the audio would
 *   have a hole as long as it lagged), at most `drainMs`; then the timeline
 *   resumes (VodTimeline.resumeAt) just after the last tag of each track,
 *   from the keyframe at or before the point RESUME or WALLCLOCK names.
 *
 * Owns: the cut-in, the place the playlist was left, the return in
 * progress. Imports cut-in.ts, the timeline, the feeder and playout types.
 */
import type { Logger } from '../log.js';
import { tagKind, type FlvTag } from '../media/flv-reader.js';
import { TAG_VIDEO } from '../media/flv.js';
import type { LiveSource } from '../pool/pipeline-spec.js';
import type { CutInSource, PlayoutEvent, ReturnMode } from '../pool/playout-spec.js';
import type { Templates } from '../gst/templates.js';
import { maskUrls } from '../gst/bus-errors.js';
import { CutIn, type CutInDeps } from './cut-in.js';
import { playoutDelayMs, type Track } from './live-feeder.js';
import type { Playout } from './playout.js';
import type { VodFeeder } from './vod-feeder.js';
import type { ItemMedia, VodTimeline } from './vod-timeline.js';

/** A return waits at most this long for the source's audio to catch up with its video, ms. */
export const drainMs = 300;

export interface VodCutInDeps {
  readonly channelId: string;
  readonly timeline: VodTimeline;
  readonly feeder: () => VodFeeder | null;
  readonly playout: () => Playout | null;
  readonly templates: Templates;
  readonly stallTimeoutMs: number;
  readonly log: Logger;
  /** Into the output. */
  readonly push: (tag: FlvTag) => void;
  /** The output's running time now, ms. */
  readonly clockMs: () => number;
  /** Output ms → wall clock ms since the epoch. */
  readonly epochMs: (outputMs: number) => number;
  readonly send: (event: PlayoutEvent) => void;
}

export class VodCutIn {
  readonly #deps: VodCutInDeps;
  #cutIn: CutIn | null = null;
  /** Where the playlist was left when the cut-in joined: item, item time and output time, ms. */
  #leftAt: { index: number; itemMs: number; outputMs: number } | null = null;
  readonly #lastOut: Record<Track, number> = { video: -1, audio: -1 };
  readonly #lastConfig: Record<Track, Buffer | null> = { video: null, audio: null };
  /** A return waiting for the source's audio to reach `untilMs`. */
  #draining: { requestId: number | null; mode: ReturnMode | Point; untilMs: number; timer: NodeJS.Timeout } | null = null;

  constructor(deps: VodCutInDeps) {
    this.#deps = deps;
  }

  /** A cut-in is on (joined or not yet). */
  get active(): boolean {
    return this.#cutIn !== null;
  }

  /** The source joined: the playlist is held. */
  get holdsPlaylist(): boolean {
    return this.#cutIn?.joined === true;
  }

  /** Nothing reaches the output (the source is away, no slate): not a stall. */
  get waiting(): boolean {
    return this.#cutIn?.waiting === true;
  }

  /** One tag into the output, remembering what went out. */
  send(tag: FlvTag): void {
    const track: Track = tag.type === TAG_VIDEO ? 'video' : 'audio';
    const kind = tagKind(tag);
    if (kind === 'video-config' || kind === 'audio-config') this.#lastConfig[track] = tag.body;
    else if (kind !== 'script') this.#lastOut[track] = Math.max(this.#lastOut[track], tag.timeMs);
    this.#deps.push(tag);
  }

  takeLive(requestId: number, source: LiveSource, slate: readonly ItemMedia[] | null): void {
    const { timeline, send } = this.#deps;
    if (this.#cutIn !== null) return send({ kind: 'refused', requestId, error: 'a live cut-in is already on: return to the playlist first' });
    const item = timeline.item;
    const cutIn: CutIn = this.#cutInOf(source, slate, {
      before: () => {
        this.#deps.feeder()?.fillUntil(this.#deps.clockMs() + playoutDelayMs);
        return { lastOut: this.#lastOut, config: this.#lastConfig };
      },
      onJoined: () => {
        const outputMs = this.#deps.feeder()?.lastTimeMs ?? 0;
        this.#leftAt = { index: timeline.position, itemMs: timeline.itemTimeMs(outputMs), outputMs };
        // The source's keyframe (or first audio) was the last tag out.
        const atMs = this.#lastOutOf(item);
        send({ kind: 'cut-in', requestId, state: 'on-air', atMs: this.#deps.epochMs(atMs) });
        this.#deps.log.info('live cut-in on air', { channel: this.#deps.channelId, atMs, left: this.#leftAt });
      },
      onRefused: (code, error) => {
        if (this.#cutIn === cutIn) this.#cutIn = null;
        send({ kind: 'refused', requestId, error: maskUrls(error), code });
      },
      onChange: (state) => send({ kind: 'cut-in', requestId: null, state, atMs: Date.now() }),
    });
    this.#cutIn = cutIn;
    cutIn.begin(performance.now());
  }

  /**
   * A live item (live-items.ts): pulls `source` now (its pre-roll) and puts
   * it on the output no earlier than output time `fromMs`, where the timeline
   * has stopped; `onStart` gets the output time of its first tag (or of the
   * slate's, standIn()); `onState` hears what feeds the output after that
   * (the source, the slate, nothing), handovers' sources included. Ended by
   * endItem().
   */
  startItem(source: LiveSource, slate: readonly ItemMedia[] | null, fromMs: number, onStart: (atMs: number) => void, onWarn: (reason: string) => void, onState: (state: CutInSource) => void = () => undefined): void {
    if (this.#cutIn !== null) return;
    const { timeline } = this.#deps;
    const item = timeline.item;
    const cutIn: CutIn = this.#cutInOf(source, slate, {
      before: () => {
        // The item before plays to its end (the timeline stops there), however little of it the pace has read yet.
        this.#deps.feeder()?.fillUntil(fromMs);
        return { lastOut: this.#lastOut, config: this.#lastConfig };
      },
      onJoined: (atMs) => {
        this.#leftAt = { index: timeline.position, itemMs: 0, outputMs: fromMs };
        onStart(atMs ?? Math.max(fromMs, this.#lastOutOf(item)));
      },
      onRefused: () => undefined,
      onChange: (state) => {
        this.#deps.log.info('live item source', { channel: this.#deps.channelId, state });
        onState(state);
      },
      item: {
        notBeforeMs: fromMs,
        onWarn: (reason) => {
          this.#deps.log.warn('live item source passed over; the slate fills its time', { channel: this.#deps.channelId, reason: maskUrls(reason) });
          onWarn(maskUrls(reason));
        },
      },
    });
    this.#cutIn = cutIn;
    cutIn.begin(performance.now());
  }

  /**
   * A programme's next live entry, right after the one on air (cut-in.ts's
   * handover): `source` takes over at its first keyframe from output time
   * `fromMs` on; `onStart` as for startItem(), once.
   */
  handOver(source: LiveSource, fromMs: number, onStart: (atMs: number) => void, onWarn: (reason: string) => void): void {
    const item = this.#deps.timeline.item;
    this.#cutIn?.handOver(
      source,
      fromMs,
      (atMs) => onStart(atMs ?? Math.max(fromMs, this.#lastOutOf(item))),
      (reason) => {
        this.#deps.log.warn('next live source passed over; the slate fills its time', { channel: this.#deps.channelId, reason: maskUrls(reason) });
        onWarn(maskUrls(reason));
      },
    );
  }

  /** The next live entry's time came without its keyframe: the source before stops, and the slate (or nothing) fills until it joins. */
  handOff(): void {
    this.#cutIn?.handOff();
  }

  /** The next live entry's source delivers media (joined or not). */
  get handoverReceiving(): boolean {
    return this.#cutIn?.handoverReceiving === true;
  }

  /** A live item's time came: if its source has not joined, the slate (or nothing) fills. */
  standIn(): void {
    this.#cutIn?.standIn();
  }

  /** The live item's source delivers media (joined or not). */
  get receiving(): boolean {
    return this.#cutIn?.receiving === true;
  }

  /** A live item's end: the playlist goes on with item `index` from its start, just after the source's last tags. */
  endItem(index: number): void {
    if (this.#cutIn === null || this.#draining !== null) return;
    if (!this.#cutIn.joined) this.#cutIn.standIn();
    this.returnToPlaylist(null, { index, itemMs: 0 });
  }

  /** The time of the last tag out on `item`'s leading track (video, else audio), ms. */
  #lastOutOf(item: ItemMedia): number {
    return item.video !== null ? this.#lastOut.video : this.#lastOut.audio;
  }

  /** A CutIn of `source` into this channel's output; `hooks` say what its joining means. */
  #cutInOf(source: LiveSource, slate: readonly ItemMedia[] | null, hooks: Pick<CutInDeps, 'before' | 'onJoined' | 'onRefused' | 'onChange' | 'item'>): CutIn {
    const item = this.#deps.timeline.item;
    return new CutIn({
      channelId: this.#deps.channelId,
      source,
      slate,
      tracks: { video: item.video !== null, audio: item.audio !== null },
      templates: this.#deps.templates,
      stallTimeoutMs: this.#deps.stallTimeoutMs,
      log: this.#deps.log,
      push: (tag) => this.#fromSource(tag),
      clockMs: this.#deps.clockMs,
      ...hooks,
    });
  }

  /** Back to the playlist (see the module comment); answered by the playout's 'switched' at the boundary. */
  returnToPlaylist(requestId: number | null, mode: ReturnMode | Point): void {
    const { send } = this.#deps;
    if (this.#cutIn === null || this.#leftAt === null || !this.#cutIn.joined || this.#draining !== null) {
      const why = this.#cutIn === null ? 'no live cut-in is on' : this.#draining !== null ? 'a return is already under way' : 'the live cut-in has not joined yet';
      if (requestId !== null) send({ kind: 'refused', requestId, error: why });
      return;
    }
    if (this.#target(mode) === null) {
      if (requestId !== null) send({ kind: 'refused', requestId, error: wallclockPastEnd });
      return;
    }
    const item = this.#deps.timeline.item;
    const lag = this.#lastOut.video - this.#lastOut.audio;
    if (item.video === null || item.audio === null || lag <= 0) return this.#finishReturn(requestId, mode);
    const timer = setTimeout(() => this.#drained(), drainMs);
    this.#draining = { requestId, mode, untilMs: this.#lastOut.video, timer };
  }

  sample(nowMs: number, positionMs: number | null): void {
    this.#cutIn?.sample(nowMs, positionMs);
  }

  close(): void {
    if (this.#draining !== null) clearTimeout(this.#draining.timer);
    this.#draining = null;
    this.#cutIn?.close();
    this.#cutIn = null;
  }

  /** A tag of the cut-in (source or slate); while a return drains, only audio up to the video's end passes. */
  #fromSource(tag: FlvTag): void {
    const d = this.#draining;
    if (d === null) return this.send(tag);
    if (tag.type === TAG_VIDEO) return;
    if (tag.timeMs <= d.untilMs) return this.send(tag);
    this.#drained();
  }

  #drained(): void {
    const d = this.#draining;
    if (d === null) return;
    clearTimeout(d.timer);
    this.#draining = null;
    this.#finishReturn(d.requestId, d.mode);
  }

  /** Where the playlist comes back: the floor per track (just after the cut-in, not behind the clock) and the point in the list. */
  #target(mode: ReturnMode | Point): { floor: Record<Track, number>; index: number; itemMs: number } | null {
    const left = this.#leftAt;
    if (left === null) return null;
    const clock = this.#deps.clockMs();
    const floor: Record<Track, number> = { video: Math.max(this.#lastOut.video + 1, clock), audio: Math.max(this.#lastOut.audio + 1, clock) };
    if (typeof mode === 'object') return { floor, ...mode };
    const backAtMs = Math.max(floor.video, floor.audio);
    const to = this.#deps.timeline.walk(left.index, left.itemMs, mode === 'wallclock' ? backAtMs - left.outputMs : 0);
    return to === null ? null : { floor, ...to };
  }

  #finishReturn(requestId: number | null, mode: ReturnMode | Point): void {
    const { send, timeline } = this.#deps;
    const feeder = this.#deps.feeder();
    const playout = this.#deps.playout();
    const to = this.#target(mode);
    if (feeder === null || to === null) {
      if (requestId !== null) send({ kind: 'refused', requestId, error: to === null ? wallclockPastEnd : 'the channel has ended' });
      return;
    }
    this.#cutIn?.close();
    this.#cutIn = null;
    this.#leftAt = null;
    timeline.resumeAt(to.index, to.itemMs, to.floor);
    feeder.dropHeld();
    if (requestId !== null) {
      playout?.awaitBoundary(requestId);
      send({ kind: 'cut-in', requestId: null, state: 'ended', atMs: Date.now() });
    }
    this.#deps.log.info('back to the playlist', { channel: this.#deps.channelId, mode, index: to.index, itemMs: Math.round(to.itemMs) });
    // Placed now, not at the next tick, so the answer carries the exact switch time.
    feeder.fill(performance.now());
  }
}

/** A place in the list: item `index` at item time `itemMs` (a live item's end returns to the next item's start). */
type Point = { readonly index: number; readonly itemMs: number };

const wallclockPastEnd = 'the playlist does not loop and would have ended by now: nothing to return to by the wall clock';
