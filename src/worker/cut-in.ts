/**
 * A live cut-in on a VOD channel (issue #21 item 4): a live source replaces
 * the playlist in the same publish session, and the channel later returns
 * to the playlist. The live side is a LiveFeeder (live-feeder.ts), the very
 * one relays use, so the source joins at its first keyframe, after the last
 * tag the playlist sent, and the slate fills while the source is away.
 *
 * - Until the source's first keyframe the playlist plays on; the feeder then
 *   asks whether its tracks fit the playlist's (audio, video), and refuses
 *   it before anything of it is output when they do not.
 * - A source lost after it joined is tried again every `retryMs` (the slate,
 *   or nothing, fills meanwhile). The worker retries by itself: a cut-in is
 *   an operator's act on a running channel, not a channel's source, so the
 *   channel layer's reconnect budget and failover rules do not apply to it.
 * - A programme's live entries that follow each other are one cut-in: the
 *   next entry's source is handed over to (handOver), pulled beside the one
 *   on air and taking over at its first keyframe from its time on; the one
 *   on air plays until then, and when the time comes without that keyframe
 *   (handOff) it stops and the slate fills. Retries pull the newest source.
 *
 * Owns: the LiveFeeder of the cut-in and its retry timer. Imports
 * live-feeder.ts and the pool's spec types.
 */
import type { Logger } from '../log.js';
import type { FlvTag } from '../media/flv-reader.js';
import type { LiveSource } from '../pool/pipeline-spec.js';
import type { CutInSource, RefusalCode } from '../pool/playout-spec.js';
import type { Templates } from '../gst/templates.js';
import { LiveFeeder, type Handover, type Track } from './live-feeder.js';
import type { ItemMedia } from './vod-timeline.js';

/** A cut-in source lost after it joined is pulled again this long after. */
export const cutInRetryMs = 1000;

/** A cut-in source must join (send a keyframe that fits) within its connect timeout and this long, ms. */
export const keyframeWaitMs = 5000;

export interface CutInDeps {
  readonly channelId: string;
  readonly source: LiveSource;
  readonly slate: readonly ItemMedia[] | null;
  /** The playlist's tracks: the source must have the same. */
  readonly tracks: Readonly<Record<Track, boolean>>;
  readonly templates: Templates;
  readonly stallTimeoutMs: number;
  readonly log: Logger;
  readonly push: (tag: FlvTag) => void;
  readonly clockMs: () => number;
  /**
   * The source is about to join: what the output last sent, per track (it
   * joins after that). The playlist may first fill up to where the source
   * will join, so that the switch leaves no hole.
   */
  readonly before: () => { lastOut: Readonly<Record<Track, number>>; config: Readonly<Record<Track, Buffer | null>> };
  /**
   * The source's first keyframe went out, or a live item's stand-in began:
   * the playlist stops here. `atMs`: the output time of the stand-in slate's
   * first tag, told before that tag goes out (null otherwise).
   */
  readonly onJoined: (atMs: number | null) => void;
  /** It never joined: unreachable, or its tracks differ from the playlist's. Nothing of it was output. */
  readonly onRefused: (code: RefusalCode, reason: string) => void;
  /** After it joined: what feeds the output now. */
  readonly onChange: (state: CutInSource) => void;
  /**
   * A live item (live-items.ts) rather than an operator's cut-in: the source
   * joins no earlier than output time `notBeforeMs`, and one that fails
   * before it joined is tried again every `cutInRetryMs` instead of being
   * refused (the item has its slot whatever the source does; standIn()
   * fills it). `onWarn` says why a source was passed over.
   */
  readonly item?: { readonly notBeforeMs: number; readonly onWarn: (reason: string) => void };
}

export class CutIn {
  readonly #deps: CutInDeps;
  readonly #feeder: LiveFeeder;
  #joined = false;
  #state: CutInSource = 'on-air';
  #retry: NodeJS.Timeout | null = null;
  #closed = false;
  #mismatch: string | null = null;
  /** Refuses a source that connected but never sent a keyframe (or audio, when it has no video). */
  #joinTimer: NodeJS.Timeout | null = null;
  /** The source a retry pulls: the first, then each handover's. */
  #source: LiveSource;
  /** The handover under way (until its source joins). */
  #handover: Handover | null = null;
  /** Its time came without its keyframe: the one before stopped, and its own start was reported. */
  #handedOff = false;
  /** Reports the handover's start at handOff(), once: the slate's first tag's time, or null. */
  #handOffStart: (atMs: number | null) => void = () => undefined;

  constructor(deps: CutInDeps) {
    this.#deps = deps;
    this.#source = deps.source;
    this.#feeder = new LiveFeeder({
      channelId: deps.channelId,
      initial: deps.source,
      slate: deps.slate,
      templates: deps.templates,
      stallTimeoutMs: deps.stallTimeoutMs,
      log: deps.log,
      push: deps.push,
      clockMs: deps.clockMs,
      continues: deps.before,
      ...(deps.item !== undefined ? { notBeforeMs: deps.item.notBeforeMs } : {}),
      admit: (tracks) => (this.#mismatch = mismatch(deps.tracks, tracks)),
      onReady: () => this.#onJoined(),
      onEvent: (e) => {
        if (this.#closed) return;
        if (e.kind === 'up') this.#set('on-air');
        else if (e.kind === 'down') {
          this.#set(e.slate ? 'slate' : 'waiting');
          // The source before a handover is in its last seconds (the pre-roll): the slate fills them.
          if (this.#handover === null || this.#handedOff) this.#scheduleRetry();
        } else if (e.kind === 'candidate-failed' && this.#handover !== null) {
          deps.log.info('next live source not played; trying again', { channel: deps.channelId, reason: e.error });
          this.#scheduleRetry();
        }
      },
      onFatal: (reason) => (deps.item !== undefined ? this.#itemFailed(reason) : this.#refuse(this.#mismatch !== null ? 'INCOMPATIBLE_MEDIA' : 'SOURCE_UNREACHABLE', this.#mismatch !== null ? reason : `the live source could not be played: ${reason}`)),
    });
  }

  #refuse(code: RefusalCode, reason: string): void {
    if (this.#closed) return;
    this.close();
    this.#deps.onRefused(code, reason);
  }

  /** The source's first keyframe went out: the playlist no longer feeds the output. */
  get joined(): boolean {
    return this.#joined;
  }

  /** Nothing reaches the output (the source is away and there is no slate): not a stall. */
  get waiting(): boolean {
    return this.#joined && !this.#feeder.flowing;
  }

  get state(): CutInSource {
    return this.#state;
  }

  /** Starts pulling the source; the output already takes tags. */
  begin(nowMs: number): void {
    if (this.#deps.item !== undefined) {
      this.#feeder.begin(nowMs);
      this.#feeder.open();
      return;
    }
    const limit = this.#deps.source.connectTimeoutMs + keyframeWaitMs;
    this.#joinTimer = setTimeout(() => {
      if (!this.#joined) this.#refuse('SOURCE_UNREACHABLE', `the live source sent no keyframe within ${limit} ms`);
    }, limit);
    this.#feeder.begin(nowMs);
    this.#feeder.open();
  }

  /** The active source delivers media, joined or not. */
  get receiving(): boolean {
    return this.#feeder.receiving;
  }

  /**
   * A live item's time came and its source has not joined: the slate (or
   * nothing: waiting) fills; the source joins when it sends a keyframe.
   */
  standIn(): void {
    if (this.#closed || this.#joined) return;
    // Told the slate's time before its first tag, so that a cue marking it goes out ahead of it.
    const slate = this.#feeder.standIn((atMs) => this.#onJoined(atMs));
    if (!this.#joined) this.#onJoined(null);
    this.#set(slate ? 'slate' : 'waiting');
  }

  /**
   * The next live entry (see the module comment): `source` takes over from
   * the one on air at its first keyframe from output time `notBeforeMs` on.
   * `onStart` gets the output time of its first tag, or when its time came
   * first (handOff) the slate's, told before that tag goes out, or null
   * without a slate.
   * `onWarn` says why it was passed over (its tracks do not fit).
   */
  handOver(source: LiveSource, notBeforeMs: number, onStart: (atMs: number | null) => void, onWarn: (reason: string) => void): void {
    if (this.#closed) return;
    const before = this.#source;
    this.#source = source;
    this.#handedOff = false;
    let started = false;
    const start = (atMs: number | null): void => {
      if (!started) onStart(atMs);
      started = true;
    };
    const h: Handover = {
      notBeforeMs,
      onJoined: (atMs) => {
        if (this.#handover === h) this.#handover = null;
        start(atMs);
      },
      onRefused: (reason) => {
        // Passed over for good: a retry must not pull it without its check.
        if (this.#handover === h) this.#handover = null;
        if (this.#source === source) this.#source = before;
        onWarn(reason);
      },
    };
    this.#handover = h;
    this.#handOffStart = start;
    this.#feeder.setSource(source, 'candidate', performance.now(), h);
  }

  /** The handover's source delivers media (it may not have joined yet). */
  get handoverReceiving(): boolean {
    return this.#feeder.handoverReceiving;
  }

  /** The next live entry's time came without its keyframe: the source before stops and the slate (or nothing) fills until it joins. */
  handOff(): void {
    if (this.#closed) return;
    this.#handedOff = true;
    const slate = this.#feeder.handOff((atMs) => this.#handOffStart(atMs));
    this.#set(slate ? 'slate' : 'waiting');
    this.#handOffStart(null);
  }

  sample(nowMs: number, positionMs: number | null): void {
    if (!this.#closed) this.#feeder.sample(nowMs, positionMs);
  }

  close(): void {
    this.#closed = true;
    if (this.#retry !== null) clearTimeout(this.#retry);
    if (this.#joinTimer !== null) clearTimeout(this.#joinTimer);
    this.#retry = null;
    this.#joinTimer = null;
    this.#feeder.close();
  }

  /** A live item's source failed before it joined: its tracks do not fit (passed over for good), or it could not be played (tried again). */
  #itemFailed(reason: string): void {
    if (this.#closed) return;
    if (this.#mismatch !== null) {
      this.#deps.item?.onWarn(reason);
      return;
    }
    this.#deps.log.info('live item source not played; trying again', { channel: this.#deps.channelId, reason });
    this.#scheduleRetry();
  }

  #onJoined(atMs: number | null = null): void {
    this.#joined = true;
    if (this.#joinTimer !== null) clearTimeout(this.#joinTimer);
    this.#joinTimer = null;
    this.#deps.onJoined(atMs);
  }

  #set(state: CutInSource): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#deps.onChange(state);
  }

  #scheduleRetry(): void {
    if (this.#retry !== null || this.#closed) return;
    this.#retry = setTimeout(() => {
      this.#retry = null;
      if (this.#closed) return;
      const pending = this.#handover !== null && !this.#handedOff;
      this.#feeder.setSource(this.#source, pending ? 'candidate' : 'replace', performance.now(), this.#handover);
    }, cutInRetryMs);
  }
}

/** Why a source's tracks do not fit the playlist's; null when they do. */
function mismatch(playlist: Readonly<Record<Track, boolean>>, source: Readonly<Record<Track, boolean>>): string | null {
  const say = (t: Readonly<Record<Track, boolean>>): string => (t.video && t.audio ? 'audio and video' : t.video ? 'video only' : 'audio only');
  if (playlist.video === source.video && playlist.audio === source.audio) return null;
  return `the live source has ${say(source)}, the playlist ${say(playlist)}: one publish session cannot switch between them`;
}
