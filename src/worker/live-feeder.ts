/**
 * Feeds a relaying channel's output from its live source, through the
 * worker: every FLV tag of the active RelaySource is re-stamped onto the
 * output's own timeline and pushed into the output appsrc. The output
 * pipeline, and so its publish session at the origin, outlives any source:
 *
 * - a source that fails after the channel played is reported `down`, and
 *   the output waits, still published, for the next source the channel layer
 *   sends (a reconnect, or the backup);
 * - a `candidate` source (the primary coming back) runs beside the active
 *   one and takes over at one of its keyframes once it has delivered
 *   `healthyMs` of media, so a switch back costs no gap at all;
 * - a `handover` (a programme's next live entry, cut-in.ts) is a candidate
 *   that takes over at its first keyframe from a set output time on, health
 *   or not, its tracks checked as the first source's were; when its time
 *   comes without that keyframe, handOff() drops the active source and the
 *   slate fills until it joins.
 *
 * - with a fallback slate (a VOD file), the output publishes the slate,
 *   looped, from the moment the source is lost until the next one joins.
 *
 * Timestamps: each source joins at a keyframe (its first audio frame when
 * it has no video) and is shifted so that this tag lands at the later of
 * "just after the last tag out" and "now on the output's clock"; the slate
 * starts the same way, on its first keyframe. So the output's DTS never go
 * back, a switch is seamless, and a source that was away for 10 s without
 * a slate leaves a 10 s gap in time, not a pile-up. Sequence headers are
 * sent again only when they differ from the last sent.
 *
 * Owns: the sources (active, candidate, handover) and when each joins.
 * Where their tags land (the stamps, the held tags, the slate) is
 * live-output.ts's.
 */
import { TAG_VIDEO } from '../media/flv.js';
import { tagKind, type FlvTag } from '../media/flv-reader.js';
import type { Logger } from '../log.js';
import { decode } from '../rtmp/amf0.js';
import type { LiveSource, SourceEvent } from '../pool/pipeline-spec.js';
import { LiveOutput, type Track } from './live-output.js';
import { RelaySource } from './relay-source.js';
import type { Templates } from '../gst/templates.js';
import type { ItemMedia } from './vod-timeline.js';

/**
 * GStreamer's words for "these streams do not fit the remux template" (an
 * H.265 pad offered to h264parse, MP3 to aacparse): the copy cannot work, a
 * transcode can. Network failures never say this.
 */
const codecMismatch = /not-linked|not-negotiated|could not link|no suitable plugins/i;

/**
 * How far behind its arrival a source's media is played out, ms. Tags come
 * in bursts (the network, the source's muxer, the appsink hand-off), and the
 * sink renders by timestamp: joined "just in time", every late tag would
 * freeze the picture for a moment (the probe saw 1 % stutter on 20 relays);
 * GStreamer's own live latency did this job for the old in-pipeline relay.
 */
export const playoutDelayMs = 250;

/**
 * A source without onMetaData whose audio comes with no video for this long
 * is taken as audio-only and joins at its audio, ms. Less than a GOP would
 * mistake a late video track for none.
 */
export const audioOnlyAfterMs = 1500;

/** A candidate must deliver this much media before it takes over, ms. */
export const defaultHealthyMs = 3000;

export interface LiveFeederOptions {
  readonly channelId: string;
  readonly initial: LiveSource;
  readonly templates: Templates;
  readonly stallTimeoutMs: number;
  readonly healthyMs?: number;
  /** The fallback slate's media (one file, looped); null for none. */
  readonly slate: readonly ItemMedia[] | null;
  readonly log: Logger;
  /** Hands one tag to the output, stamped with its time on the output's timeline, ms; its body is the source's, not a copy. */
  readonly push: (tag: FlvTag) => void;
  /**
   * The output's running time now, ms (0 until its pipeline plays). New
   * media joins there: stamped earlier, the sink would render every later
   * tag late by the difference, a standing lag (stutter) for good.
   */
  readonly clockMs: () => number;
  /** The first source has a keyframe in hand: start the output; open() once it takes tags. */
  readonly onReady: () => void;
  /** A source change after the channel first played. */
  readonly onEvent: (event: SourceEvent) => void;
  /** The first source failed before anything was output: the channel's start fails. */
  readonly onFatal: (reason: string) => void;
  /**
   * A cut-in (cut-in.ts): the output already carries other media. What it
   * last sent, per track, read at the first join, which goes after it; and
   * the output's own onMetaData stands (none is sent).
   */
  readonly continues?: () => { lastOut: Readonly<Record<Track, number>>; config: Readonly<Record<Track, Buffer | null>> };
  /**
   * Checked at the first source's join, with the tracks it has: a reason
   * refuses it (onFatal with that reason, nothing output), null lets it join.
   */
  readonly admit?: (tracks: Readonly<Record<Track, boolean>>) => string | null;
  /**
   * A live item (live-items.ts): the first source joins no earlier than this
   * output time, ms (its keyframes before are passed over), so that it
   * starts where the item before it ends.
   */
  readonly notBeforeMs?: number;
}

export type { Track } from './live-output.js';

/** A source that takes over from the active one at a set time, not after a health check (see the module comment). */
export interface Handover {
  /** It joins at its first keyframe from this output time on, ms. */
  readonly notBeforeMs: number;
  /** It joined the output at output time `atMs`. */
  readonly onJoined: (atMs: number) => void;
  /** Its tracks do not fit the output's (`admit`): it was dropped, nothing of it output. */
  readonly onRefused: (reason: string) => void;
}

/** One source's progress towards, and after, joining the output. */
interface Joining {
  readonly relay: RelaySource;
  /** Source time → output time, once joined. */
  offset: number | null;
  sawVideoConfig: boolean;
  /**
   * The source has video: its onMetaData says so, or a video tag came. Then
   * it joins at a keyframe, even when audio comes first (nginx-rtmp sends a
   * freshly published stream's first audio before its video).
   */
  hasVideo: boolean;
  /** The source has audio: its onMetaData says so, or an audio tag came before the join. */
  hasAudio: boolean;
  /** It sent onMetaData, which tells whether it has video. */
  metadata: boolean;
  /** The latest sequence headers seen, to send at the join if they changed. */
  config: { video: FlvTag | null; audio: FlvTag | null };
  /** Source time of the first media tag, for the health check of a candidate. */
  firstMediaMs: number | null;
  /** Set for a handover's source until it joins. */
  handover: Handover | null;
}

export class LiveFeeder {
  readonly #opts: LiveFeederOptions;
  readonly #healthyMs: number;
  #active: Joining | null = null;
  #candidate: Joining | null = null;
  /** Where tags land: stamps, held tags, the slate (live-output.ts). */
  readonly #out: LiveOutput;
  #everUp = false;
  /** The output's earlier media (`continues`) was taken into account, and the first source admitted. */
  #continued = false;
  /** A source passed `admit` (a live item's slate may have filled before it). */
  #admitted = false;
  #closed = false;
  #metadataSent = false;
  #stalls = 0;

  constructor(opts: LiveFeederOptions) {
    this.#opts = opts;
    this.#healthyMs = opts.healthyMs ?? defaultHealthyMs;
    this.#out = new LiveOutput({ channelId: opts.channelId, slate: opts.slate, log: opts.log, push: opts.push, clockMs: opts.clockMs });
    if (opts.continues !== undefined) this.#metadataSent = true;
  }

  /** Media reaches the output, from a source or the slate (false while waiting for the next source). */
  get flowing(): boolean {
    return this.#active?.offset != null || this.#out.slateOn;
  }

  get framesOut(): number {
    return this.#out.framesOut;
  }

  /** Sources that stopped delivering media while connected (the stall watchdog of a relay's input). */
  get stallEvents(): number {
    return this.#stalls;
  }

  /** Starts the first source. */
  begin(nowMs: number): void {
    if (this.#active === null && !this.#closed) this.#active = this.#join(this.#opts.initial, nowMs);
  }

  /** The output takes tags now: the ones held since the first keyframe go in, then every tag as it comes. */
  open(): void {
    if (!this.#closed) this.#out.open();
  }

  /** The active source delivers media (it may not have joined yet). */
  get receiving(): boolean {
    return this.#active?.firstMediaMs != null;
  }

  /**
   * The first source has not joined by its time (a live item): the slate
   * fills from where the output left off, and the source still joins when
   * it sends a keyframe. True when the slate fills; `onSlate` gets the
   * output time of its first tag before that tag goes out.
   */
  standIn(onSlate?: (atMs: number) => void): boolean {
    if (this.#everUp || this.#closed) return this.#out.slateOn;
    this.#continue();
    this.#everUp = true;
    return this.#out.startSlate(onSlate);
  }

  /**
   * The channel layer's next source (see the 'source' IPC command), or a
   * handover's: a candidate beside the active source, or the active one
   * when there is none.
   */
  setSource(source: LiveSource, mode: 'replace' | 'candidate', nowMs: number, handover: Handover | null = null): void {
    if (this.#closed) return;
    this.#candidate?.relay.stop();
    this.#candidate = null;
    if (mode === 'candidate' && this.#active !== null) {
      this.#candidate = this.#join(source, nowMs, undefined, handover);
      return;
    }
    this.#active?.relay.stop();
    this.#active = this.#join(source, nowMs, undefined, handover);
  }

  /** The source of the handover under way delivers media (it may not have joined yet). */
  get handoverReceiving(): boolean {
    const j = this.#candidate?.handover != null ? this.#candidate : this.#active?.handover != null ? this.#active : null;
    return j?.firstMediaMs != null;
  }

  /**
   * A handover's time came without its keyframe: the active source stops
   * (its time is over), the handover's source becomes the active one and
   * joins when it sends a keyframe, and the slate fills meanwhile. True
   * when the slate fills; `onSlate` as for standIn().
   */
  handOff(onSlate?: (atMs: number) => void): boolean {
    if (this.#closed) return false;
    if (this.#candidate !== null) {
      this.#active?.relay.stop();
      this.#active = this.#candidate;
      this.#candidate = null;
    } else if (this.#active?.handover == null) {
      this.#active?.relay.stop();
      this.#active = null;
    }
    return this.#out.startSlate(onSlate);
  }

  /** Source watchdogs, and frames the sink has passed (`positionMs`, its running time). */
  sample(nowMs: number, positionMs: number | null): void {
    this.#out.sample(nowMs, positionMs);
    this.#active?.relay.sample(nowMs);
    this.#candidate?.relay.sample(nowMs);
  }

  close(): void {
    this.#closed = true;
    this.#out.close();
    this.#active?.relay.stop();
    this.#candidate?.relay.stop();
    this.#active = null;
    this.#candidate = null;
  }

  #join(source: LiveSource, nowMs: number, transcode = source.transcode === 'always', handover: Handover | null = null): Joining {
    // The callbacks close over `j`; the relay calls them only after start(), when `j` exists.
    const relay = new RelaySource({
      channelId: this.#opts.channelId,
      source,
      transcode,
      templates: this.#opts.templates,
      stallTimeoutMs: this.#opts.stallTimeoutMs,
      log: this.#opts.log,
      onTag: (tag) => this.#onTag(j, tag),
      onFail: (reason, stalled) => {
        if (stalled) this.#stalls += 1;
        this.#onFail(j, reason);
      },
    });
    const j: Joining = { relay, offset: null, sawVideoConfig: false, hasVideo: false, hasAudio: false, metadata: false, config: { video: null, audio: null }, firstMediaMs: null, handover };
    relay.start(nowMs);
    // Read in batches from Play.Start (read-pacer.ts), except a channel's first source,
    // which its start waits on: a batch's wait would only delay its keyframe, and it
    // batches once joined. Anything later joins on the batch ticks of what it follows:
    // taking over between two of their reads would join after a stale last tag, a gap
    // (a switch back's largest step was 115–123 ms so, 50 ms with the ticks shared).
    const outputWaits = !this.#everUp && this.#opts.continues === undefined && this.#opts.notBeforeMs === undefined;
    if (!outputWaits) relay.batchReads();
    return j;
  }

  #onFail(j: Joining, reason: string): void {
    if (this.#closed) return;
    // Copy first; a source whose codecs FLV cannot carry as they are fails to
    // link before its first tag. With transcode AUTO it is pulled again, decoded.
    if (j.relay.source.transcode === 'auto' && !j.relay.transcode && j.firstMediaMs === null && j.offset === null && codecMismatch.test(reason)) {
      const again = this.#join(j.relay.source, performance.now(), true, j.handover);
      if (j === this.#active) this.#active = again;
      else if (j === this.#candidate) this.#candidate = again;
      else return again.relay.stop();
      this.#opts.log.info('source codecs need a transcode; pulling it again, decoded', { channel: this.#opts.channelId, source: j.relay.source.label, reason });
      return;
    }
    if (j === this.#candidate) {
      this.#candidate = null;
      this.#opts.onEvent({ kind: 'candidate-failed', label: j.relay.source.label, error: reason });
    } else if (j === this.#active) {
      this.#active = null;
      if (!this.#everUp) this.#opts.onFatal(reason);
      else this.#opts.onEvent({ kind: 'down', label: j.relay.source.label, error: reason, slate: this.#out.startSlate() });
    }
  }

  #onTag(j: Joining, tag: FlvTag): void {
    if (this.#closed || (j !== this.#active && j !== this.#candidate)) return;
    const kind = tagKind(tag);
    if (j.offset !== null) {
      this.#forward(j, tag, kind);
      return;
    }
    switch (kind) {
      case 'script':
        j.metadata = true;
        if (metadataHas(tag.body, 'videocodecid', 'width')) j.hasVideo = true;
        if (metadataHas(tag.body, 'audiocodecid', 'audiosamplerate')) j.hasAudio = true;
        // Players take onMetaData from the first source only; a later one mid-stream confuses some.
        if (!this.#metadataSent && j === this.#active) {
          this.#metadataSent = true;
          this.#out.metadata(tag);
        }
        return;
      case 'video-config':
        j.sawVideoConfig = true;
        j.config.video = tag;
        return;
      case 'audio-config':
        j.hasAudio = true;
        j.config.audio = tag;
        return;
      default:
        break;
    }
    if (tag.type === TAG_VIDEO) j.hasVideo = true;
    else j.hasAudio = true;
    j.firstMediaMs ??= tag.timeMs;
    // Audio-only is decided by the metadata, or by audioOnlyAfterMs of audio with no video at all.
    const audioOnly = !j.hasVideo && !j.sawVideoConfig && tag.timeMs - j.firstMediaMs >= (j.metadata ? 0 : audioOnlyAfterMs);
    const joinsHere = kind === 'video-key' || (kind === 'audio' && audioOnly);
    if (!joinsHere) return;
    const gate = this.#opts.notBeforeMs;
    if (!this.#everUp && gate !== undefined && this.#opts.clockMs() + playoutDelayMs < gate) return;
    if (j.handover !== null) {
      if (this.#opts.clockMs() + playoutDelayMs < j.handover.notBeforeMs) return;
    } else if (j === this.#candidate && tag.timeMs - j.firstMediaMs < this.#healthyMs) return;
    this.#takeOver(j, tag, kind);
  }

  /** `j` joins the output at `tag` (a keyframe, or audio for audio-only sources). */
  #takeOver(j: Joining, tag: FlvTag, kind: ReturnType<typeof tagKind>): void {
    const handover = j.handover;
    // The first source's tracks must fit the output's, and so must each handover's.
    if (handover !== null || !this.#admitted) {
      const refused = this.#opts.admit?.({ video: j.hasVideo || j.sawVideoConfig, audio: j.hasAudio });
      if (refused != null) {
        j.relay.stop();
        if (j === this.#candidate) this.#candidate = null;
        if (j === this.#active) this.#active = null;
        if (handover !== null) handover.onRefused(refused);
        else this.#opts.onFatal(refused);
        return;
      }
      j.handover = null;
      if (!this.#admitted) {
        this.#admitted = true;
        this.#continue();
      }
    }
    if (j === this.#candidate) {
      this.#active?.relay.stop();
      this.#active = j;
      this.#candidate = null;
    }
    this.#out.stopSlate();
    j.relay.batchReads();
    const lastOutMs = this.#out.lastOutMs;
    const base = this.#out.joinTime(playoutDelayMs);
    j.offset = base - tag.timeMs;
    if (j.config.video !== null) this.#out.emit(j.config.video, 'video-config', base);
    if (j.config.audio !== null) this.#out.emit(j.config.audio, 'audio-config', base);
    this.#forward(j, tag, kind);
    handover?.onJoined(base);
    const label = j.relay.source.label;
    if (this.#everUp) this.#opts.onEvent({ kind: 'up', label });
    else this.#opts.onReady();
    this.#everUp = true;
    this.#opts.log.info('live source joined the output', { channel: this.#opts.channelId, source: label, atMs: base, clockMs: Math.round(this.#opts.clockMs()), lastOutMs });
  }

  /** Takes the output's earlier media into account, once: new media goes after it. */
  #continue(): void {
    if (this.#continued) return;
    this.#continued = true;
    const before = this.#opts.continues?.();
    if (before !== undefined) this.#out.after(before);
  }

  #forward(j: Joining, tag: FlvTag, kind: ReturnType<typeof tagKind>): void {
    if (j !== this.#active || j.offset === null) return;
    this.#out.emit(tag, kind, tag.timeMs + j.offset);
  }
}

/**
 * onMetaData (AMF0: the name, then an object or ECMA array) gives one of
 * `keys` (a codec, a picture size, a sample rate) a value. nginx-rtmp
 * rewrites a publisher's metadata with every field, 0 for a track it does
 * not have, so 0 (or '') says "none".
 */
function metadataHas(body: Buffer, ...keys: string[]): boolean {
  try {
    const [name, meta] = decode(body);
    if (name !== 'onMetaData' || meta === null || typeof meta !== 'object' || Array.isArray(meta)) return false;
    return keys.some((k) => meta[k] !== undefined && meta[k] !== 0 && meta[k] !== '' && meta[k] !== null);
  } catch {
    return false; // unreadable metadata says nothing either way
  }
}

