/**
 * When the relay steps' upstream stream brings its keyframes, seen by one
 * more player of it at the origin. A relay can go live no sooner than the
 * source's next keyframe after its start (nginx-rtmp keeps no GOP for a new
 * player), so each start's latency splits into the wait for that keyframe,
 * which no relay can shorten, and what the side spent after it.
 */
import { tagKind } from '../src/media/flv-reader.js';
import { RtmpPlayer } from '../src/rtmp/player.js';

export class KeyframeWatch {
  /** Arrival times, performance.now() ms, ascending. */
  readonly #arrivals: number[] = [];
  readonly #player: RtmpPlayer;

  private constructor(url: string) {
    this.#player = new RtmpPlayer({
      url,
      timeoutMs: 10_000,
      onTag: (tag) => {
        if (tagKind(tag) === 'video-key') this.#arrivals.push(performance.now());
      },
      onEnd: () => undefined,
    });
  }

  /** Plays `url` until stop(). */
  static async start(url: string): Promise<KeyframeWatch> {
    const w = new KeyframeWatch(url);
    await w.#player.play();
    return w;
  }

  /** The first keyframe to arrive at or after `atMs`, or null when none came before the watch stopped. */
  nextAfter(atMs: number): number | null {
    return this.#arrivals.find((t) => t >= atMs) ?? null;
  }

  stop(): Promise<void> {
    return this.#player.close();
  }
}
