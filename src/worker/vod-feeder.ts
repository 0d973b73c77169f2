/**
 * Feeds a VOD channel's FLV into its pipeline's appsrc, paced by the wall
 * clock: each call to fill() pushes every tag due within `leadMs`, read
 * straight from the file into the tag buffer. rtmp2sink (sync=true) then
 * holds each buffer until its running time, so the output is real-time while
 * this side only has to stay ahead, at the host's sampling rate.
 *
 * Why JavaScript muxes here instead of qtdemux ! flvmux: only then is every
 * timestamp ours (see vod-timeline.ts), and the pipeline shrinks to appsrc !
 * rtmp2sink, two threads instead of five. Reads are synchronous preads of
 * one sample each (a few KB, from the page cache in steady state).
 *
 * With `cues`, an onCuePoint tag goes out at each item start and ad break
 * (cue-points.ts), just before the first sample at or after its time.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import {
  aacSequenceHeader,
  audioFlags,
  audioTag,
  avcSequenceHeader,
  bodyOffset,
  mp3PrefixBytes,
  aacPrefixBytes,
  metadataTag,
  videoPrefixBytes,
  videoTag,
} from '../media/flv.js';
import { frameSeconds, type Mp4Track } from '../media/mp4.js';
import type { AdBreak } from '../pool/pipeline-spec.js';
import { CueSchedule, cuePointTag, type Cue } from './cue-points.js';
import { FrameCounter } from './frame-counter.js';
import type { ItemMedia, Step, TrackKind, VodTimeline } from './vod-timeline.js';

/** How far ahead of the wall clock tags are pushed. Covers a late sampler tick with room to spare. */
export const defaultLeadMs = 600;

export interface FeederOptions {
  readonly timeline: VodTimeline;
  /** Hands one FLV tag to the pipeline with its presentation time. */
  readonly push: (tag: Buffer, timeMs: number) => void;
  readonly leadMs?: number;
  /** Each item boundary as the timeline decides it (playout.ts follows what plays). */
  readonly onBoundary?: (step: Extract<Step, { kind: 'boundary' }>) => void;
  /** Send cue points (cue-points.ts); without this, none (a relay's slate). */
  readonly cues?: CueOptions;
}

export interface CueOptions {
  /** The timeline's position → its index in the whole list (live items take places too). */
  readonly indexOf: (position: number) => number;
  /** A cue's tag went out, and the first video keyframe at or after it is known (null without video). */
  readonly onCue: (cue: Cue, keyframeMs: number | null) => void;
  /** Breaks that replace the item's own at an item start (a programme's entry); undefined: the item's. */
  readonly breaksFor?: () => readonly AdBreak[] | undefined;
}

export class VodFeeder {
  readonly #timeline: VodTimeline;
  readonly #push: FeederOptions['push'];
  readonly #leadMs: number;
  readonly #onBoundary: FeederOptions['onBoundary'];
  #startedAt: number | null = null;
  /** A step taken from the timeline but not yet due. */
  #held: Step | null = null;
  #ended = false;
  /** Closed, maybe from inside its own fill (a push that ends a slate): the loop stops there. */
  #closed = false;
  #lastTimeMs = 0;
  readonly #fds = new Map<string, number>();
  readonly #frames = new FrameCounter();
  #boundaries = 0;
  #gaps: number[] = [];
  /** Which track's frames count as "frames out": video when there is one. */
  readonly #frameTrack: TrackKind;
  readonly #cueOpts: CueOptions | null;
  readonly #cues: CueSchedule | null;

  constructor(opts: FeederOptions) {
    this.#timeline = opts.timeline;
    this.#push = opts.push;
    this.#leadMs = opts.leadMs ?? defaultLeadMs;
    this.#onBoundary = opts.onBoundary;
    this.#frameTrack = opts.timeline.item.video !== null ? 'video' : 'audio';
    this.#cueOpts = opts.cues ?? null;
    this.#cues = opts.cues === undefined ? null : new CueSchedule(this.#frameTrack === 'video');
  }

  get started(): boolean {
    return this.#startedAt !== null;
  }

  /** performance.now() at output time 0; null before begin(). */
  get startedAtMs(): number | null {
    return this.#startedAt;
  }

  /** The timeline is exhausted (non-looping list) and every tag has been pushed. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Output time of the last tag pushed, ms. */
  get lastTimeMs(): number {
    return this.#lastTimeMs;
  }

  get boundaries(): number {
    return this.#boundaries;
  }

  /** Frames (video, or audio frames for audio-only) that the sink has passed. */
  get framesOut(): number {
    return this.#frames.passed;
  }

  /** Gaps measured at boundaries since the last call; each is handed out once. */
  takeGaps(): number[] {
    const g = this.#gaps;
    this.#gaps = [];
    return g;
  }

  setItems(items: readonly ItemMedia[], loop: boolean): void {
    this.#timeline.setItems(items, loop);
  }

  /**
   * Pushes the stream's headers and the first `leadMs` of media. Time 0 is
   * `nowMs`; `fillNowMs` (default the same) is "now" for that first fill:
   * a slate that starts behind other media uses it to lead the wall clock
   * by no more than `leadMs` (live-feeder.ts).
   */
  begin(nowMs: number, fillNowMs = nowMs): void {
    if (this.#startedAt !== null) return;
    this.#startedAt = nowMs;
    const item = this.#timeline.item;
    this.#push(metadataTag(metadata(item)), 0);
    const avcC = this.#timeline.initialConfig('video');
    if (item.video !== null && avcC !== null) this.#push(avcSequenceHeader(0, avcC), 0);
    const asc = this.#timeline.initialConfig('audio');
    if (item.audio?.codec === 'aac' && asc !== null) this.#push(aacSequenceHeader(0, asc), 0);
    const t = this.#timeline;
    this.#itemCues({ item, position: t.position, startMs: 0, fromMs: 0, periodMs: t.periodMs });
    this.fill(fillNowMs);
  }

  /** Pushes everything due by now + lead. */
  fill(nowMs: number): void {
    if (this.#startedAt === null || this.#ended) return;
    const dueMs = nowMs - this.#startedAt + this.#leadMs;
    for (;;) {
      if (this.#closed) return;
      const step = this.#held ?? this.#timeline.next();
      this.#held = null;
      if (step.kind === 'end') {
        this.#ended = true;
        this.#closeAll();
        return;
      }
      if (step.kind === 'boundary') {
        this.#boundaries += 1;
        this.#gaps.push(step.gapSeconds);
        this.#closeUnused(step.nextItem);
        this.#onBoundary?.(step);
        // A programme (programme-clock.ts) may have cut the item in the boundary's hooks just now;
        // otherwise the timeline's period says the same as the step's, rounding aside.
        const cutMs = this.#timeline.periodMs - step.fromMs;
        const periodMs = cutMs < step.periodMs - 1 ? cutMs : step.periodMs;
        this.#itemCues({ item: step.nextItem, position: step.index, startMs: step.startMs, fromMs: step.fromMs, periodMs });
        continue;
      }
      if (step.dtsMs > dueMs) {
        this.#held = step;
        return;
      }
      this.#sendCues(step.dtsMs);
      this.#emit(step);
    }
  }

  /**
   * A cut-in ends (cut-in.ts): the step read before it and held back is
   * dropped, and the timeline (VodTimeline.resumeAt) goes on from where the
   * return says.
   */
  dropHeld(): void {
    this.#held = null;
    this.#ended = false;
  }

  /** Pushes every tag up to output time `outputMs` now, however far ahead of the clock (a cut-in joins after it). */
  fillUntil(outputMs: number): void {
    if (this.#startedAt !== null) this.fill(this.#startedAt + outputMs - this.#leadMs);
  }

  /** Counts frames the sink has passed; `positionMs` is the sink's running time. */
  observe(positionMs: number): void {
    this.#frames.observe(positionMs);
  }

  close(): void {
    this.#closed = true;
    this.#closeAll();
  }

  #emit(step: Exclude<Step, { kind: 'end' } | { kind: 'boundary' }>): void {
    if (step.kind === 'config') {
      const tag = step.track === 'video' ? avcSequenceHeader(step.dtsMs, step.config) : aacSequenceHeader(step.dtsMs, step.config);
      this.#push(tag, step.dtsMs);
      return;
    }
    const track = step.track === 'video' ? step.item.video : step.item.audio;
    if (track === null) throw new Error(`item ${step.item.id} lost its ${step.track} track`);
    const s = track.samples;
    const size = s.size[step.index] ?? 0;
    let tag: Buffer;
    let at: number;
    if (step.track === 'video') {
      tag = videoTag(step.dtsMs, step.ctsMs, step.keyframe, size);
      at = bodyOffset + videoPrefixBytes;
    } else {
      const aac = track.codec === 'aac';
      tag = audioTag(step.dtsMs, audioFlags(aac ? 'aac' : 'mp3', track.sampleRate, track.channels), aac, size);
      at = bodyOffset + (aac ? aacPrefixBytes : mp3PrefixBytes);
    }
    const fd = this.#fd(step.item.path);
    const got = readSync(fd, tag, at, size, s.offset[step.index] ?? 0);
    if (got !== size) throw new Error(`${step.item.path}: short read of sample ${step.index} (${got} of ${size} bytes): the file changed`);
    this.#push(tag, step.dtsMs);
    this.#lastTimeMs = step.dtsMs;
    if (step.track === this.#frameTrack) this.#frames.pushed(step.dtsMs);
    if (step.track === 'video' && step.keyframe && this.#cues !== null) {
      for (const r of this.#cues.resolved(step.dtsMs)) this.#cueOpts?.onCue(r.cue, r.keyframeMs);
    }
  }

  #itemCues(start: { item: ItemMedia; position: number; startMs: number; fromMs: number; periodMs: number }): void {
    if (this.#cueOpts === null || this.#cues === null) return;
    const breaks = this.#cueOpts.breaksFor?.();
    this.#cues.item({ ...start, index: this.#cueOpts.indexOf(start.position), loop: this.#timeline.loops, ...(breaks !== undefined ? { breaks } : {}) });
  }

  /** Cue tags due before the sample at `dtsMs` go out first, so the output's order stays by time. */
  #sendCues(dtsMs: number): void {
    if (this.#cues === null) return;
    for (const cue of this.#cues.due(dtsMs)) {
      this.#push(cuePointTag(cue), cue.atMs);
      if (this.#frameTrack !== 'video') this.#cueOpts?.onCue(cue, null);
    }
  }

  #fd(path: string): number {
    let fd = this.#fds.get(path);
    if (fd === undefined) {
      fd = openSync(path, 'r');
      this.#fds.set(path, fd);
    }
    return fd;
  }

  #closeUnused(keep: ItemMedia): void {
    for (const [path, fd] of this.#fds) {
      if (path === keep.path) continue;
      closeSync(fd);
      this.#fds.delete(path);
    }
  }

  #closeAll(): void {
    for (const fd of this.#fds.values()) closeSync(fd);
    this.#fds.clear();
  }
}

function frameRate(t: Mp4Track): number {
  const seconds = frameSeconds(t);
  return seconds === null ? 0 : Math.round((1 / seconds) * 1000) / 1000;
}

/** onMetaData for the first item: what players show before the first frame. */
function metadata(item: ItemMedia): Record<string, number | boolean | string> {
  const meta: Record<string, number | boolean | string> = { duration: 0, encoder: 'vlive' };
  if (item.video !== null) {
    meta['width'] = item.video.width;
    meta['height'] = item.video.height;
    meta['framerate'] = frameRate(item.video);
    meta['videocodecid'] = 7;
  }
  if (item.audio !== null) {
    meta['audiocodecid'] = item.audio.codec === 'aac' ? 10 : 2;
    meta['audiosamplerate'] = item.audio.sampleRate;
    meta['audiosamplesize'] = 16;
    meta['stereo'] = item.audio.channels > 1;
  }
  return meta;
}
