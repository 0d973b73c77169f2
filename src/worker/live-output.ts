/**
 * Where a live feeder's tags land (live-feeder.ts decides which source
 * feeds; this decides how its tags go out):
 *
 * - each tag is stamped onto the output's timeline, strictly rising per
 *   track, after the last tag out (the output's earlier media included, for
 *   a cut-in: `after()`);
 * - a sequence header goes out only when it differs from the last one sent;
 * - tags wait here until the output takes them (`open()`);
 * - the fallback slate (a VOD file, looped) fills between sources, from
 *   where the last one left off.
 *
 * Owns: the last time out and sequence header per track, the held tags,
 * the slate and the frame count. Imports the VOD feeder for the slate.
 */
import { TAG_VIDEO } from '../media/flv.js';
import { tagKind, viewTag, type FlvTag } from '../media/flv-reader.js';
import type { Logger } from '../log.js';
import { FrameCounter } from './frame-counter.js';
import { VodFeeder } from './vod-feeder.js';
import { VodTimeline, type ItemMedia } from './vod-timeline.js';

export type Track = 'video' | 'audio';

export interface LiveOutputOptions {
  readonly channelId: string;
  /** The fallback slate's media (one file, looped); null for none. */
  readonly slate: readonly ItemMedia[] | null;
  readonly log: Logger;
  /** Hands one tag to the output, stamped with its time on the output's timeline, ms. */
  readonly push: (tag: FlvTag) => void;
  /** The output's running time now, ms. */
  readonly clockMs: () => number;
}

export class LiveOutput {
  readonly #opts: LiveOutputOptions;
  #closed = false;
  /** The output takes tags (it is PAUSED or later); until then they wait here. */
  #open = false;
  #held: [FlvTag, number | null][] = [];
  readonly #lastOut: Record<Track, number> = { video: -1, audio: -1 };
  /** The sequence header bodies last sent, per track. */
  readonly #sentConfig: Record<Track, Buffer | null> = { video: null, audio: null };
  /** The slate while it fills the output; its times are shifted by `offset`. */
  #slate: { feeder: VodFeeder; offset: number } | null = null;
  readonly #frames = new FrameCounter();

  constructor(opts: LiveOutputOptions) {
    this.#opts = opts;
  }

  /** The slate fills the output. */
  get slateOn(): boolean {
    return this.#slate !== null;
  }

  get framesOut(): number {
    return this.#frames.passed;
  }

  /** The time of the last tag out, either track, ms (-1 before any). */
  get lastOutMs(): number {
    return Math.max(this.#lastOut.video, this.#lastOut.audio);
  }

  /** The output takes tags now: the ones held go in, then every tag as it comes. */
  open(): void {
    if (this.#open || this.#closed) return;
    this.#open = true;
    for (const [tag, frameAt] of this.#held) this.#push(tag, frameAt);
    this.#held = [];
  }

  /** The output already carries media (a cut-in): new media goes after it, and its headers count as sent. */
  after(before: { lastOut: Readonly<Record<Track, number>>; config: Readonly<Record<Track, Buffer | null>> }): void {
    for (const t of ['video', 'audio'] as const) {
      this.#lastOut[t] = Math.max(this.#lastOut[t], before.lastOut[t]);
      this.#sentConfig[t] ??= before.config[t];
    }
  }

  /** The slate's pace, and frames the sink has passed (`positionMs`, its running time). */
  sample(nowMs: number, positionMs: number | null): void {
    this.#slate?.feeder.fill(nowMs);
    if (positionMs !== null) this.#frames.observe(positionMs);
  }

  close(): void {
    this.#closed = true;
    this.#held = [];
    this.stopSlate();
  }

  /** Where new media joins the output: just after the last tag out, and not before the output's clock plus `delayMs`. */
  joinTime(delayMs: number): number {
    const now = Math.round(this.#opts.clockMs()) + delayMs;
    return Math.max(now, this.#lastOut.video + 1, this.#lastOut.audio + 1);
  }

  /** A source's onMetaData, at the time of the last tag out (it is not stamped like media). */
  metadata(tag: FlvTag): void {
    this.#push({ ...tag, timeMs: Math.max(0, this.lastOutMs) }, null);
  }

  /** One tag into the output at `timeMs` (source or slate alike). */
  emit(tag: FlvTag, kind: ReturnType<typeof tagKind>, timeMs: number): void {
    if (kind === 'script') return;
    const track: Track = tag.type === TAG_VIDEO ? 'video' : 'audio';
    if (kind === 'video-config' || kind === 'audio-config') {
      // Only a real change (new SPS/PPS, new audio format) is worth a new header.
      if (tag.body.equals(this.#sentConfig[track] ?? Buffer.alloc(0))) return;
      this.#sentConfig[track] = Buffer.from(tag.body);
    }
    // Frames strictly rise per track (ffmpeg's FLV reader and many players
    // treat a repeated DTS as out of order): a source's jitter, a reordered
    // tag or two frames rounded to one millisecond (RTSP through
    // h264timestamper does that now and then) move on by 1 ms. A sequence
    // header may share its frame's time and does not move the track on.
    const config = kind === 'video-config' || kind === 'audio-config';
    const t = Math.max(timeMs, config ? this.#lastOut[track] : this.#lastOut[track] + 1, 0);
    this.#push({ ...tag, timeMs: t }, kind === 'video' || kind === 'video-key' ? t : null);
    if (!config) this.#lastOut[track] = t;
  }

  /**
   * Starts the slate, if the channel has one, where the lost source left
   * off. It leads the output's clock by at most the VOD feeder's lead, even
   * when the media before it was ahead, so episodes do not add up. True
   * when the slate now fills the output; `onSlate` gets the output time of
   * its first tag before that tag goes out.
   */
  startSlate(onSlate?: (atMs: number) => void): boolean {
    const items = this.#opts.slate;
    if (items === null || items.length === 0 || this.#closed || this.#slate !== null) return this.#slate !== null;
    // The file is read ahead by the VOD feeder's lead; no playout delay needed.
    const base = this.joinTime(0);
    const wallOut = this.#opts.clockMs();
    const now = performance.now();
    try {
      const feeder = new VodFeeder({
        timeline: new VodTimeline({ items, loop: true }),
        push: (buf, t) => {
          const tag = viewTag(buf, t);
          this.emit(tag, tagKind(tag), t + base);
        },
      });
      this.#slate = { feeder, offset: base };
      // Before its first tag: a cue that marks it goes out ahead of it, with its time.
      onSlate?.(base);
      feeder.begin(now + (base - wallOut), now);
    } catch (err) {
      this.#slate?.feeder.close();
      this.#slate = null;
      this.#opts.log.warn('slate could not start', { channel: this.#opts.channelId, err: (err as Error).message });
      return false;
    }
    this.#opts.log.info('slate fills the output', { channel: this.#opts.channelId, atMs: base });
    return true;
  }

  stopSlate(): void {
    this.#slate?.feeder.close();
    this.#slate = null;
  }

  #push(tag: FlvTag, frameAt: number | null): void {
    // Closed from inside a push (a return from a cut-in or a live item ends
    // it there), the slate's fill loop would go on pushing its tags after the
    // playlist's, with earlier timestamps.
    if (this.#closed) return;
    if (!this.#open) {
      this.#held.push([tag, frameAt]);
      return;
    }
    this.#opts.push(tag);
    if (frameAt !== null) this.#frames.pushed(frameAt);
  }
}
