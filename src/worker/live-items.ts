/**
 * Live items of a VOD channel's playlist (issue #21 item 3), inside its
 * worker: an online source that plays for its duration between two VOD
 * items, in the same publish session, through the cut-in's machinery
 * (vod-cut-in.ts, cut-in.ts, live-feeder.ts).
 *
 * - The timeline (VOD items only) is told to stop after the item before a
 *   live item; the live item's slot starts where that item ends (`fromMs`,
 *   output time) and lasts its duration.
 * - Pre-roll: the source is pulled `prerollMs` before the slot, while the
 *   item before plays on, so that its connect and codec set-up are done in
 *   time. Its keyframes before `fromMs` are passed over; it joins at the first
 *   one after: the switch waits at most one GOP of the source (nothing is
 *   output meanwhile: the keyframe wait).
 * - A source that has sent nothing by `fromMs`, or no keyframe by
 *   `fromMs + keyframeGraceMs`, is stood in for: the slate fills (or the
 *   output waits, the session kept) and the source joins when it comes.
 *   A source lost during the slot is pulled again every second, the slate
 *   filling, as for a cut-in. Either way the next item starts on time.
 * - The slot ends when the output's clock reaches its end less the playout
 *   delay: the source's last tags then reach about the slot's end, and the
 *   next VOD item comes back on its own keyframe just after them (no
 *   keyframe to wait for).
 *
 * Owns: the layout of the whole list (VOD positions and live indices) and
 * the live item under way. Imports the timeline, the cut-in and the playout.
 */
import type { Logger } from '../log.js';
import { vodPositions, type LiveItemSpec } from '../pool/pipeline-spec.js';
import type { PlayoutItemRef } from '../pool/playout-spec.js';
import { playoutDelayMs } from './live-feeder.js';
import type { Playout } from './playout.js';
import type { VodCutIn } from './vod-cut-in.js';
import type { ItemMedia, Step, VodTimeline } from './vod-timeline.js';

/** The source is pulled this long before its slot, ms. */
export const prerollMs = 3000;

/** A source that delivers media but sent no keyframe this long into its slot is stood in for, ms. */
export const keyframeGraceMs = 2000;

/** The whole list's numbering: VOD items at the positions live items leave free. */
export class ListLayout {
  readonly #vodIndex: number[];
  readonly #liveAfter = new Map<number, LiveItemSpec>();

  constructor(vodCount: number, live: readonly LiveItemSpec[]) {
    this.#vodIndex = vodPositions(vodCount, live.map((l) => l.index));
    const total = vodCount + live.length;
    for (const l of live) {
      // The VOD item just before it (the first item is always a VOD item).
      const before = this.#vodIndex.findIndex((i) => i === l.index - 1);
      if (before >= 0 && l.index < total) this.#liveAfter.set(before, l);
    }
  }

  /** Index in the whole list of the timeline's `position`. */
  indexOf(position: number): number {
    return this.#vodIndex[position] ?? position;
  }

  /** The live item after the timeline's `position`, if any. */
  liveAfter(position: number): LiveItemSpec | null {
    return this.#liveAfter.get(position) ?? null;
  }
}

/** A live item planned or playing: its slot in output time. */
interface Slot {
  readonly spec: LiveItemSpec;
  readonly fromMs: number;
  readonly untilMs: number;
  /** The timeline's position of the VOD item after it. */
  readonly nextPosition: number;
  pulled: boolean;
  started: boolean;
  stoodIn: boolean;
}

export interface LiveItemsDeps {
  readonly channelId: string;
  readonly layout: ListLayout;
  readonly timeline: VodTimeline;
  readonly cutIn: VodCutIn;
  readonly playout: () => Playout | null;
  readonly slate: readonly ItemMedia[] | null;
  /** The output's running time now, ms. */
  readonly clockMs: () => number;
  readonly log: Logger;
  /** The channel's warning about its live items (null: none now). */
  readonly warn: (message: string | null) => void;
}

export class LiveItems {
  readonly #deps: LiveItemsDeps;
  #slot: Slot | null = null;
  /** A warning is raised; cleared when the item ends. */
  #warned = false;

  constructor(deps: LiveItemsDeps) {
    this.#deps = deps;
  }

  /** The first item starts at output time 0. */
  begin(): void {
    this.#plan(0, this.#deps.timeline.periodMs);
  }

  /** The feeder read a boundary: the item it opens may be followed by a live item. */
  onBoundary(step: Extract<Step, { kind: 'boundary' }>): void {
    this.#plan(step.startMs, step.periodMs);
  }

  /** The pace tick: pre-roll, stand-in and the slot's end, by the output's clock. */
  tick(): void {
    const slot = this.#slot;
    if (slot === null) return;
    const { cutIn, clockMs } = this.#deps;
    const now = clockMs();
    if (!slot.pulled && now >= slot.fromMs - prerollMs) {
      slot.pulled = true;
      this.#deps.log.info('live item pre-roll', { channel: this.#deps.channelId, index: slot.spec.index, fromMs: slot.fromMs });
      const what = `live item ${slot.spec.index}`;
      cutIn.startItem(slot.spec.source, this.#deps.slate, slot.fromMs, (atMs) => this.#started(slot, atMs), (reason) => this.#warn(`${what}: ${reason}; ${this.#fills()}`));
    }
    if (!slot.stoodIn && !slot.started) {
      const due = now + playoutDelayMs >= slot.fromMs;
      if (due && (!cutIn.receiving || now + playoutDelayMs >= slot.fromMs + keyframeGraceMs)) {
        slot.stoodIn = true;
        this.#deps.log.warn('live item source not on air at its time; the slate fills', { channel: this.#deps.channelId, index: slot.spec.index });
        this.#warn(`live item ${slot.spec.index}: its source ${cutIn.receiving ? 'sent no keyframe' : 'could not be played'} by its time; ${this.#fills()}`);
        cutIn.standIn();
      }
    }
    if (now + playoutDelayMs >= slot.untilMs) {
      this.#slot = null;
      cutIn.endItem(slot.nextPosition);
      if (this.#warned) this.#deps.warn(null);
      this.#warned = false;
    }
  }

  #warn(message: string): void {
    this.#warned = true;
    this.#deps.warn(message);
  }

  #fills(): string {
    return this.#deps.slate !== null ? 'the slate fills its time' : 'nothing is output until it comes or its time ends';
  }

  #plan(startMs: number, periodMs: number): void {
    const { timeline, layout } = this.#deps;
    const spec = layout.liveAfter(timeline.position);
    if (spec === null || this.#slot !== null) return;
    const next = timeline.upNext;
    if (next === null) return;
    const fromMs = startMs + periodMs;
    timeline.stopAfterCurrent();
    this.#slot = { spec, fromMs, untilMs: fromMs + spec.durationMs, nextPosition: next.index, pulled: false, started: false, stoodIn: false };
  }

  #started(slot: Slot, atMs: number): void {
    slot.started = true;
    const { layout } = this.#deps;
    const next = this.#deps.timeline.itemAt(slot.nextPosition);
    const nextRef: PlayoutItemRef | null = next === undefined ? null : { index: layout.indexOf(slot.nextPosition), itemId: next.id };
    this.#deps.playout()?.addLive({ index: slot.spec.index, itemId: slot.spec.id }, atMs, Math.max(0, slot.untilMs - atMs), nextRef);
  }
}
