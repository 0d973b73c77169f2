/**
 * One online source played for a set time between two VOD items of a VOD
 * channel, in the same publish session: a playlist's live item (issue #21,
 * live-items.ts) or a programme's live-source entry (issue #22,
 * programme-live.ts). Both were planned by the time this starts: the
 * timeline stops after the item before (at output time `fromMs`), and the
 * VOD item at `nextPosition` comes back at `untilMs`.
 *
 * - Pre-roll: the source is pulled `prerollMs` before `fromMs`, while the
 *   item before plays on, so that its connect and codec set-up are done in
 *   time. It joins at its first keyframe after `fromMs` (vod-cut-in.ts).
 * - A source that has sent nothing by `fromMs`, or no keyframe by
 *   `fromMs + keyframeGraceMs`, is stood in for: the slate fills (or the
 *   output waits, the session kept) and the source joins when it comes.
 * - It ends when the output's clock reaches `untilMs` less the playout
 *   delay: the source's last tags then reach about `untilMs`, and the next
 *   VOD item comes back on its own keyframe just after them.
 * - Its start is an item start like any other: the playout hears of it
 *   (nowPlaying, the played log) and an ITEM onCuePoint goes out with the
 *   first tag that fills it (the source's keyframe, or the slate's).
 *
 * Owns: the run's progress. Imports the cut-in, the playout and the cues.
 */
import type { Logger } from '../log.js';
import { viewTag } from '../media/flv-reader.js';
import type { LiveSource } from '../pool/pipeline-spec.js';
import type { PlayoutItemRef } from '../pool/playout-spec.js';
import { cuePointTag, type Cue } from './cue-points.js';
import { playoutDelayMs } from './live-feeder.js';
import type { Playout } from './playout.js';
import type { VodCutIn } from './vod-cut-in.js';
import type { ItemMedia, VodTimeline } from './vod-timeline.js';

/** The source is pulled this long before its time, ms. */
export const prerollMs = 3000;

/** A source that delivers media but sent no keyframe this long into its time is stood in for, ms. */
export const keyframeGraceMs = 2000;

/** What a run plays, and when (output time, ms). */
export interface LiveRunPlan {
  /** How the playout and the cue name it. */
  readonly ref: PlayoutItemRef;
  readonly source: LiveSource;
  /** How warnings and logs name it ("live item 3"). */
  readonly what: string;
  readonly fromMs: number;
  readonly untilMs: number;
  /** The timeline's position of the VOD item after it. */
  readonly nextPosition: number;
  /** That item as the playout names it (null: none). */
  readonly nextRef: PlayoutItemRef | null;
}

export interface LiveRunDeps {
  readonly channelId: string;
  readonly timeline: VodTimeline;
  readonly cutIn: VodCutIn;
  readonly playout: () => Playout | null;
  readonly slate: readonly ItemMedia[] | null;
  /** The output's running time now, ms. */
  readonly clockMs: () => number;
  readonly log: Logger;
  /** The channel's warning about its live source (null: none now). */
  readonly warn: (message: string | null) => void;
}

export class LiveRun {
  readonly plan: LiveRunPlan;
  readonly #deps: LiveRunDeps;
  #pulled = false;
  #started = false;
  #stoodIn = false;
  #warned = false;

  constructor(deps: LiveRunDeps, plan: LiveRunPlan) {
    this.#deps = deps;
    this.plan = plan;
  }

  /**
   * The pace tick: pre-roll and stand-in, by the output's clock. True once
   * its end is due: the owner then forgets it and calls end(), in that
   * order, since the item that comes back may plan the next run at once.
   */
  tick(): boolean {
    const { cutIn, clockMs, log, channelId } = this.#deps;
    const p = this.plan;
    const now = clockMs();
    if (!this.#pulled && now >= p.fromMs - prerollMs) {
      this.#pulled = true;
      log.info('live source pre-roll', { channel: channelId, what: p.what, fromMs: p.fromMs });
      cutIn.startItem(p.source, this.#deps.slate, p.fromMs, (atMs) => this.#onStart(atMs), (reason) => this.#warn(`${p.what}: ${reason}; ${this.#fills()}`));
    }
    if (!this.#stoodIn && !this.#started && now + playoutDelayMs >= p.fromMs && (!cutIn.receiving || now + playoutDelayMs >= p.fromMs + keyframeGraceMs)) {
      this.#stoodIn = true;
      log.warn('live source not on air at its time; the slate fills', { channel: channelId, what: p.what });
      this.#warn(`${p.what}: its source ${cutIn.receiving ? 'sent no keyframe' : 'could not be played'} by its time; ${this.#fills()}`);
      cutIn.standIn();
    }
    return now + playoutDelayMs >= p.untilMs;
  }

  /** Back to the VOD item after it, just after the source's last tags. */
  end(): void {
    if (this.#warned) this.#deps.warn(null);
    this.#deps.cutIn.endItem(this.plan.nextPosition);
  }

  #warn(message: string): void {
    this.#warned = true;
    this.#deps.warn(message);
  }

  #fills(): string {
    return this.#deps.slate !== null ? 'the slate fills its time' : 'nothing is output until it comes or its time ends';
  }

  /** Its first tag (source or slate) went out at output time `atMs`: it is on air from there. */
  #onStart(atMs: number): void {
    this.#started = true;
    const { timeline, cutIn } = this.#deps;
    const p = this.plan;
    // Whole ms: a programme's untilMs comes from wall-clock epochs with fractions, and
    // the service takes a cue's times as whole ms (a fraction made it drop the cue).
    const durationMs = Math.max(0, Math.round(p.untilMs - atMs));
    const cue: Cue = { kind: 'ITEM', id: p.ref.itemId, index: p.ref.index, itemId: p.ref.itemId, atMs, offsetMs: 0, durationMs, loop: timeline.loops };
    // Right after the tag it marks, with its timestamp: a player sees both at that frame.
    cutIn.send(viewTag(cuePointTag(cue), atMs));
    const playout = this.#deps.playout();
    playout?.addLive(p.ref, atMs, durationMs, p.nextRef);
    playout?.addCue(cue, atMs);
  }
}
