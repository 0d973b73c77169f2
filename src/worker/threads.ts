/**
 * The worker's libuv threads, reserved per channel. Every GStreamer bus
 * poller and appsink pull pins one threadpool thread for the life of its
 * pipeline (src/gst/native.ts), and libuv's pool is at most 1024 threads, while the
 * worker's own RTMP (a VOD channel's output, an rtmp:// relay's source) pins
 * none. So channels are counted by what they may pin, not by number: a
 * start that would need more threads than are left is refused, and a VOD
 * channel can always start.
 *
 * Pure bookkeeping; host.ts reserves at start and releases at the end.
 */
import type { PipelineSpec } from '../pool/pipeline-spec.js';

/** A GStreamer source pipeline: its bus and its appsink pull. */
const sourceThreads = 2;
/** A tap (recording, snapshots): its bus and the snapshot pull. */
const tapThreads = 2;
/** An srt:// push target's pipeline (srt-session.ts): its bus. */
const srtTargetThreads = 1;

/**
 * What a channel may pin at most. A relay keeps room for a second source
 * beside the first (a backup, a switch back), which may be of any scheme,
 * so even an rtmp:// relay, which pins none itself, keeps one source's worth.
 */
export function threadsFor(spec: PipelineSpec): number {
  let n = 0;
  if (spec.source.kind === 'live') n += spec.source.protocol === 'rtmp' && spec.source.transcode !== 'always' ? sourceThreads : 2 * sourceThreads;
  if (spec.tap !== undefined) n += tapThreads;
  n += spec.targets.filter((t) => t.startsWith('srt://')).length * srtTargetThreads;
  return n;
}

export class ThreadBook {
  readonly #budget: number;
  readonly #held = new Map<string, number>();
  #used = 0;

  /** @param budget threads GStreamer pipelines may pin in all (the pool less the margin for fs and dns) */
  constructor(budget: number) {
    this.#budget = budget;
  }

  get used(): number {
    return this.#used;
  }

  get budget(): number {
    return this.#budget;
  }

  /** Reserves `n` threads for a channel; false (and nothing held) when they are not left. */
  reserve(channelId: string, n: number): boolean {
    this.release(channelId);
    if (this.#used + n > this.#budget) return false;
    this.#held.set(channelId, n);
    this.#used += n;
    return true;
  }

  release(channelId: string): void {
    const n = this.#held.get(channelId);
    if (n === undefined) return;
    this.#held.delete(channelId);
    this.#used -= n;
  }
}
