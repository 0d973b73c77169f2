/**
 * A channel's output to target 0, the origin: media tags queued by the feeders
 * with their times on the output's timeline, sent by an RtmpPublisher in
 * batches as their time comes. The worker's pace tick calls pace() for every
 * channel; each channel sends at most once per period, everything due by
 * then plus a lead of one period, in one writev.
 *
 * Why batches, and how large: every send wakes the event loop and makes a
 * syscall, so its cost is per batch, not per tag (bench/README.md). The
 * receivers' stutter rule (src/media/stutter.ts) lets a player hold two
 * frames beyond the last one it got, so arrivals may be up to three frame
 * durations apart before a player stalls: 120 ms at 25 fps. The period is
 * kept to 1.5 frames at most, which leaves room for a late tick under load.
 *
 * The output's clock is the wall clock since the publish started: media at
 * time t leaves at about t - lead, so the origin receives it in real time,
 * as rtmp2sink's clock sync did, without a thread per channel to wait.
 */
import type { MediaTag } from '../rtmp/chunks.js';
import { RtmpError, RtmpPublisher } from '../rtmp/publisher.js';
import { tagKind } from '../media/flv-reader.js';

export interface RtmpOutputOptions {
  readonly url: string;
  /** The publish (connect, handshake, publish) must finish within this. */
  readonly timeoutMs: number;
  /** At most one send per this many ms. */
  readonly periodMs: number;
  /**
   * Called when a batch is in the kernel: wall time, the output time of its
   * last tag, and whether it held an audio or video frame (not only
   * onMetaData and sequence headers).
   */
  readonly onFlushed: (wallMs: number, mediaMs: number, frames: boolean) => void;
  /** The session ended by itself (the origin closed it, a socket error) after it published. */
  readonly onClosed: (err: RtmpError) => void;
  /** Each batch as it leaves, for the channel's other push targets (push-target.ts). */
  readonly onBatch?: (batch: readonly MediaTag[]) => void;
}

export class RtmpOutput {
  readonly #opts: RtmpOutputOptions;
  readonly #publisher: RtmpPublisher;
  #queue: MediaTag[] = [];
  /** performance.now() at output time 0; null until the publish started. */
  #startedAt: number | null = null;
  #lastSendAt = -Infinity;
  #positionMs = -1;

  constructor(opts: RtmpOutputOptions) {
    this.#opts = opts;
    this.#publisher = new RtmpPublisher({ url: opts.url, timeoutMs: opts.timeoutMs });
  }

  /** Publishes; the output's clock starts when the origin has accepted it. */
  async start(): Promise<void> {
    this.#publisher.onClose((err) => this.#opts.onClosed(err));
    await this.#publisher.publish();
    this.#startedAt = performance.now();
  }

  get started(): boolean {
    return this.#startedAt !== null;
  }

  /** Output time now, ms (0 until the publish started). */
  clockMs(nowMs: number = performance.now()): number {
    return this.#startedAt === null ? 0 : nowMs - this.#startedAt;
  }

  /** Output time of the last tag in the kernel, ms; -1 before the first. */
  get positionMs(): number {
    return this.#positionMs;
  }

  get bytesSent(): number {
    return this.#publisher.bytesFlushed;
  }

  /** Bytes sent but not yet taken by the kernel: an origin that stops reading makes this grow. */
  get bytesPending(): number {
    return this.#publisher.bytesPending;
  }

  /** Queues one tag, stamped with its time on the output's timeline. */
  push(tag: MediaTag): void {
    // FLV and RTMP carry 32 bits of milliseconds (about 49.7 days).
    if (!Number.isInteger(tag.timeMs) || tag.timeMs < 0 || tag.timeMs > 0xffffffff) throw new RangeError(`output timestamp out of range: ${tag.timeMs}`);
    this.#queue.push(tag);
  }

  /** How far ahead of the output's clock tags go out, ms. */
  get leadMs(): number {
    return this.#opts.periodMs;
  }

  /**
   * Sends what is due by the clock plus the lead, if a period has passed
   * since the last send (or `force`). Tags leave in the order they came.
   */
  pace(nowMs: number, force = false): void {
    if (this.#startedAt === null || !this.#publisher.publishing) return;
    // Half a tick of slack, so a period that lands just before a tick does not wait a whole tick.
    if (!force && nowMs - this.#lastSendAt < this.#opts.periodMs * 0.75) return;
    const due = this.clockMs(nowMs) + this.leadMs;
    const q = this.#queue;
    let i = 0;
    while (i < q.length && (q[i]?.timeMs ?? Infinity) <= due) i += 1;
    if (i === 0) return;
    // Out of the queue at once: a sent tag held here (the queue used to keep
    // 256 of them) outlives two scavenges, is promoted and, dead, waits for a
    // full collection; 50 channels held about 55 MiB of such Buffers.
    const batch = q.splice(0, i);
    this.#lastSendAt = nowMs;
    const lastMs = batch[batch.length - 1]?.timeMs ?? 0;
    const frames = batch.some(isFrame);
    this.#publisher.send(
      batch,
      () => {
        if (lastMs > this.#positionMs) this.#positionMs = lastMs;
        this.#opts.onFlushed(performance.now(), lastMs, frames);
      },
    );
    this.#opts.onBatch?.(batch);
  }

  /** Ends the publish: after what was sent has left (`flush`), or at once (a fence, a failure). */
  close(flush: boolean): Promise<void> {
    this.#queue = [];
    return this.#publisher.close(flush);
  }
}

function isFrame(tag: MediaTag): boolean {
  const kind = tagKind(tag);
  return kind === 'video' || kind === 'video-key' || kind === 'audio';
}
