/**
 * Live items of a VOD channel's playlist (issue #21 item 3), inside its
 * worker: an online source that plays for its duration between two VOD
 * items, in the same publish session (live-run.ts: pre-roll, stand-in, the
 * end and the ITEM cue).
 *
 * - The timeline (VOD items only) is told to stop after the item before a
 *   live item; the live item's run starts where that item ends (`fromMs`,
 *   output time) and lasts its duration.
 *
 * Owns: the layout of the whole list (VOD positions and live indices) and
 * the live item under way. Imports the timeline and live-run.ts.
 */
import { vodPositions, type LiveItemSpec } from '../pool/pipeline-spec.js';
import { LiveRun, type LiveRunDeps } from './live-run.js';
import type { Step } from './vod-timeline.js';


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

export interface LiveItemsDeps extends LiveRunDeps {
  readonly layout: ListLayout;
}

export class LiveItems {
  readonly #deps: LiveItemsDeps;
  #run: LiveRun | null = null;

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

  /** The pace tick: the live item under way, if any. */
  tick(): void {
    const run = this.#run;
    if (run === null || !run.tick()) return;
    this.#run = null;
    run.end();
  }

  #plan(startMs: number, periodMs: number): void {
    const { timeline, layout } = this.#deps;
    const spec = layout.liveAfter(timeline.position);
    if (spec === null || this.#run !== null) return;
    const next = timeline.upNext;
    if (next === null) return;
    const fromMs = startMs + periodMs;
    timeline.stopAfterCurrent();
    this.#run = new LiveRun(this.#deps, {
      ref: { index: spec.index, itemId: spec.id },
      source: spec.source,
      what: `live item ${spec.index}`,
      fromMs,
      untilMs: fromMs + spec.durationMs,
      nextPosition: next.index,
      nextRef: { index: layout.indexOf(next.index), itemId: next.item.id },
    });
  }
}
