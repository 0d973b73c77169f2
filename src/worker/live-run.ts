/**
 * One online source played for a set time between two VOD items of a VOD
 * channel, in the same publish session: a playlist's live item (issue #21,
 * live-items.ts) or a programme's live-source entry (issue #22,
 * programme-clock.ts). Both were planned by the time this starts: the
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
 * - A programme's live entries that follow each other are one run (`then`,
 *   asked for `prerollMs` before each part's end): each next source is
 *   pulled during the one before, and takes over at its first keyframe from
 *   its time (the one before
 *   plays until then, `keyframeGraceMs` at most, and the slate fills after
 *   that); the VOD item comes back after the last of them.
 *
 * Owns: the run's progress. Imports the cut-in, the playout and the cues.
 */
import type { Logger } from '../log.js';
import { viewTag } from '../media/flv-reader.js';
import type { LiveSource } from '../pool/pipeline-spec.js';
import type { CutInSource, PlayoutItemRef } from '../pool/playout-spec.js';
import { cuePointTag, type Cue } from './cue-points.js';
import { playoutDelayMs } from './live-feeder.js';
import type { Playout } from './playout.js';
import type { VodCutIn } from './vod-cut-in.js';
import type { ItemMedia, VodTimeline } from './vod-timeline.js';

/** The source is pulled this long before its time, ms. */
export const prerollMs = 3000;

/** A source that delivers media but sent no keyframe this long into its time is stood in for, ms. */
export const keyframeGraceMs = 2000;

/** What follows a part of a run: a live entry handed over to, or the VOD item the timeline resumes with (its position). */
export type LiveFollower = { readonly live: LiveRunPlan } | { readonly nextPosition: number };

/** What a run plays, and when (output time, ms). */
export interface LiveRunPlan {
  /** How the playout and the cue name it. */
  readonly ref: PlayoutItemRef;
  readonly source: LiveSource;
  /** How warnings and logs name it ("live item 3"). */
  readonly what: string;
  readonly fromMs: number;
  readonly untilMs: number;
  /**
   * A programme's: the live entry that starts where this one ends, if any,
   * asked for `prerollMs` before this one's end (the programme as it is
   * then, edits included). Its source takes over from this one's at its
   * first keyframe from there (cut-in.ts's handover), no VOD item between.
   */
  readonly then?: () => LiveFollower;
  /** The timeline's position of the VOD item after it, when no live entry follows. */
  readonly nextPosition: number;
  /** What comes next as the playout names it, as planned (null: none). */
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

/** One source of a run and its progress. */
interface Part {
  readonly plan: LiveRunPlan;
  /** Its place in the run: the first is started, the next ones are handed over to. */
  readonly k: number;
  pulled: boolean;
  started: boolean;
  stoodIn: boolean;
  /** Its own source is on the output (joined, and not lost since). */
  onAir: boolean;
  /** What follows it was asked for (`then`). */
  asked: boolean;
  /** The VOD item after it when it is the last: as planned, then as `then` says. */
  nextPosition: number;
  /** Its source was passed over for good (its tracks do not fit the channel's), with a warning that says so. */
  passedOver: boolean;
}

const partOf = (plan: LiveRunPlan, k: number): Part => ({ plan, k, pulled: false, started: false, stoodIn: false, onAir: false, asked: false, nextPosition: plan.nextPosition, passedOver: false });

export class LiveRun {
  readonly plan: LiveRunPlan;
  readonly #deps: LiveRunDeps;
  /** The part whose time it is (or, before the first's time, the first), then the next one once asked for. */
  readonly #parts: Part[] = [];
  #warned = false;

  constructor(deps: LiveRunDeps, plan: LiveRunPlan) {
    this.#deps = deps;
    this.plan = plan;
    this.#parts.push(partOf(plan, 0));
  }

  /**
   * The pace tick: pre-roll and stand-in, by the output's clock. True once
   * its end is due: the owner then forgets it and calls end(), in that
   * order, since the item that comes back may plan the next run at once.
   */
  tick(): boolean {
    const now = this.#deps.clockMs();
    const part = this.#parts[0] as Part;
    if (!part.asked && now >= part.plan.untilMs - prerollMs) {
      part.asked = true;
      const then = part.plan.then?.();
      if (then !== undefined && 'live' in then) this.#parts.push(partOf(then.live, part.k + 1));
      else if (then !== undefined) part.nextPosition = then.nextPosition;
    }
    const next = this.#parts[1];
    // The next part's pre-roll overlaps this one's time, once this one is on air: one
    // handover at a time (a new one replaces the one pending).
    for (const p of next !== undefined && (part.started || part.stoodIn) ? [part, next] : [part]) {
      if (!p.pulled && now >= p.plan.fromMs - prerollMs) this.#pull(p);
    }
    const { cutIn } = this.#deps;
    const receiving = part.k === 0 ? cutIn.receiving : cutIn.handoverReceiving;
    if (!part.stoodIn && !part.started && now + playoutDelayMs >= part.plan.fromMs && (!receiving || now + playoutDelayMs >= part.plan.fromMs + keyframeGraceMs)) {
      const { log, channelId } = this.#deps;
      log.warn('live source not on air at its time; the slate fills', { channel: channelId, what: part.plan.what });
      // A source passed over has said why (its tracks): that warning stands.
      if (!part.passedOver) this.#warn(`${part.plan.what}: its source ${receiving ? 'sent no keyframe' : 'could not be played'} by its time; ${this.#fills()}`);
      this.#standIn(part);
    }
    if (now + playoutDelayMs < part.plan.untilMs) return false;
    if (next === undefined) return true;
    // The next part's time: its source takes over at its keyframe, the warning of this one is over.
    // A part whose source never came (too short for its keyframe grace) is stood in for first, as end() does.
    if (!part.started && !part.stoodIn) this.#standIn(part);
    if (!next.pulled) this.#pull(next);
    this.#clearWarning();
    this.#parts.shift();
    return false;
  }

  /** Back to the VOD item after it (after the last of its parts), just after the source's last tags. */
  end(): void {
    this.#clearWarning();
    this.#deps.cutIn.endItem(this.#parts.at(-1)?.nextPosition ?? this.plan.nextPosition);
  }

  /** The slate (or nothing) fills `part`'s time until its source comes: the first part's stand-in, a next one's hand-off. */
  #standIn(part: Part): void {
    part.stoodIn = true;
    if (part.k === 0) this.#deps.cutIn.standIn();
    else this.#deps.cutIn.handOff();
  }

  #pull(part: Part): void {
    const { cutIn, log, channelId } = this.#deps;
    const p = part.plan;
    part.pulled = true;
    log.info('live source pre-roll', { channel: channelId, what: p.what, fromMs: p.fromMs });
    const onStart = (atMs: number): void => this.#onStart(part, atMs);
    const onWarn = (reason: string): void => {
      part.passedOver = true;
      this.#warn(`${p.what}: ${reason}; ${this.#fills()}`);
    };
    if (part.k === 0) cutIn.startItem(p.source, this.#deps.slate, p.fromMs, onStart, onWarn, (state) => this.#onState(state));
    else cutIn.handOver(p.source, p.fromMs, onStart, onWarn);
  }

  /**
   * What feeds the output changed after the run's first start: a source
   * lost on air is a warning until a source is on air again (a stand-in
   * says why itself, in tick()).
   */
  #onState(state: CutInSource): void {
    const part = this.#parts[0];
    if (state === 'on-air') {
      if (part !== undefined) part.onAir = true;
      this.#clearWarning();
      return;
    }
    if (part === undefined || !part.onAir) return;
    part.onAir = false;
    this.#warn(`${part.plan.what}: its source was lost; ${this.#fills()}`);
  }

  #warn(message: string): void {
    this.#warned = true;
    this.#deps.warn(message);
  }

  #clearWarning(): void {
    if (this.#warned) this.#deps.warn(null);
    this.#warned = false;
  }

  #fills(): string {
    return this.#deps.slate !== null ? 'the slate fills its time' : 'nothing is output until it comes or its time ends';
  }

  /** Its first tag (source or slate) went out at output time `atMs`: it is on air from there. */
  #onStart(part: Part, at: number): void {
    part.started = true;
    part.onAir = !part.stoodIn;
    // A tag's time is whole ms (flv.ts throws on a fraction, which would take the worker down).
    const atMs = Math.round(at);
    const { timeline, cutIn } = this.#deps;
    const p = part.plan;
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
