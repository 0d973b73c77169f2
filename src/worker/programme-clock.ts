/**
 * A VOD channel on a wall-clock programme (issue #22 item 1), inside its
 * worker: which item plays next and where the item playing is cut, decided
 * against the wall clock at every item boundary.
 *
 * - Each slot plays its items once, in order, from its start; its content
 *   ends at the slot's `endMs` (a duration) or when its items are done.
 *   The filler plays in turn, round and round, from there (or from the
 *   channel's start) to the next slot's start.
 * - An item that would run past its slot's end or the next slot's start is
 *   cut at its last clean cut at or before that time (programme-cut.ts), and
 *   the next slot's first item opens on its own keyframe right after it (the
 *   cut leaves room for that item's reorder delay, its first DTS before its
 *   zero): an entry starts at most a mini-GOP before its time, never after it. A filler item that would leave less
 *   than `marginMs` before the next slot gives way to it at once.
 * - Every decision converts the wall-clock time to output time afresh, with
 *   the worker's pacing clock read against the wall clock at that moment
 *   (`epochZeroMs`), so no error carries from one entry to the next: the
 *   channel stays within a GOP of the programme however many days it runs.
 * - A channel that takes its programme (or restarts) during a slot joins it
 *   where it would be by then (the item and the keyframe at or before that
 *   point), when that is over `joinLateMs` into it: the item playing is cut at
 *   its next clean cut.
 * - A new programme (an edit) is taken at once for what follows the item
 *   playing: the slot playing keeps its content, the next slot is the new
 *   programme's first one after the slot playing began; the item playing is
 *   cut again against it (never before what was already sent).
 *
 * - A live-source slot (`live`, no items) takes the air at its start like
 *   any entry: the item before is cut for it and the timeline stops after
 *   that item; a LiveRun (live-run.ts, the playlist live items' machinery)
 *   pulls the source ahead and plays it, with the slate for a source that is
 *   down, until the slot's end or the next slot's start, whichever is first.
 *   The timeline then resumes with what the programme has next (the next
 *   slot's first item, or the filler), as after a VOD entry. Live slots
 *   that follow each other with no time between are one run: each next
 *   source takes over from the one before (live-run.ts `then`), with no
 *   filler between; the run asks for it at its pre-roll, from the
 *   programme as it is then. Otherwise an edit that comes while a live slot
 *   is due or on air is taken when the run is over.
 *
 * Owns: the slot or filler turn of the item playing and of the next one.
 * Imports the timeline, the programme's spec and live-run.ts's plan.
 */
import type { Logger } from '../log.js';
import type { AdBreak, ProgrammeSlot, ProgrammeSpec } from '../pool/pipeline-spec.js';
import type { LiveRunPlan } from './live-run.js';
import { openingDtsMs, periodMsOf } from './programme-cut.js';
import type { Step, VodTimeline } from './vod-timeline.js';

/** A filler item that would play less than this before the next slot is left out, ms. */
export const marginMs = 100;

/** A slot found under way by more than this (a late join) plays from where it would be, not from its beginning, ms. */
export const joinLateMs = 1000;

/** What an item of the timeline is in the programme. */
export interface Turn {
  /** The slot whose content it is; null: the filler. */
  readonly slot: ProgrammeSlot | null;
  /** Its place in the slot's items, or in the filler. */
  readonly k: number;
  /** Wall start of the slot it belongs to or follows; -Infinity before the first. */
  readonly sinceMs: number;
}

/** The turn on at wall time `nowMs`: a slot's first item inside its content window, else the filler. */
export function turnAt(spec: ProgrammeSpec, nowMs: number): Turn {
  let on: ProgrammeSlot | null = null;
  for (const s of spec.slots) if (s.startMs <= nowMs) on = s;
  if (on === null) return { slot: null, k: 0, sinceMs: -Infinity };
  return nowMs < on.endMs ? { slot: on, k: 0, sinceMs: on.startMs } : { slot: null, k: 0, sinceMs: on.startMs };
}

/**
 * The turn of an item that is not the programme's (a channel put on a
 * programme while it plays): the filler's, ended by the entry on now at its
 * next clean cut (that entry then plays from its beginning), else by the next
 * entry.
 */
export function joinTurn(spec: ProgrammeSpec, nowMs: number): Turn {
  const on = turnAt(spec, nowMs);
  return { slot: null, k: -1, sinceMs: on.slot !== null ? on.sinceMs - 1 : on.sinceMs };
}

/**
 * A programme sent with the channel's list (or its removal, null) applied to
 * the clock in charge, if any: the clock in charge afterwards. Removed, the
 * item playing plays to its own end and the list's order follows.
 */
export function applyProgramme(current: ProgrammeClock | null, spec: ProgrammeSpec | null, deps: ProgrammeClockDeps, nowMs = Date.now()): ProgrammeClock | null {
  if (spec === null) {
    if (current !== null) deps.timeline.limitCurrent(null, null);
    current?.retire();
    return null;
  }
  const clock = current ?? new ProgrammeClock(deps, spec, joinTurn(spec, nowMs));
  clock.replace(spec);
  return clock;
}

export const itemOf = (spec: ProgrammeSpec, turn: Turn): string | undefined => (turn.slot === null ? spec.filler[turn.k % spec.filler.length] : turn.slot.items[turn.k]);

export interface ProgrammeClockDeps {
  readonly channelId: string;
  readonly timeline: VodTimeline;
  /** Wall clock (ms since the epoch) of output time 0, read now. */
  readonly epochZeroMs: () => number;
  readonly log: Logger;
  /** Plays a live-source slot (live-run.ts) once the item playing has ended; absent: such a slot is passed over for the filler. */
  readonly startLive?: (plan: LiveRunPlan) => void;
}

export class ProgrammeClock {
  readonly #deps: ProgrammeClockDeps;
  #spec: ProgrammeSpec;
  #turn: Turn;
  #next: Turn | null = null;
  /** A live-source slot is due after the item playing, or on air: decided until the timeline resumes. */
  #live = false;
  /** The channel's programme was taken off: a live run on air hands over to nothing more. */
  #retired = false;

  /** `turn`: what the timeline's item playing is in the programme (joinTurn for an item that is not the programme's). */
  constructor(deps: ProgrammeClockDeps, spec: ProgrammeSpec, turn: Turn) {
    this.#deps = deps;
    this.#spec = spec;
    this.#turn = turn;
  }

  /** The feeder read a boundary: the item it opens is the turn decided, unless something else moved the list. */
  onBoundary(step: Extract<Step, { kind: 'boundary' }>): void {
    const expected = this.#next;
    this.#live = false;
    this.#turn = expected !== null && itemOf(this.#spec, expected) === step.nextItem.id ? expected : turnAt(this.#spec, this.#deps.epochZeroMs() + step.startMs);
    this.#decide();
  }

  /**
   * The ad breaks of the item playing: its slot's, when it is a single-file
   * entry's item (the slot's first); none for the filler. The feeder asks at
   * each item start, after onBoundary() has named the turn.
   */
  breaksNow(): readonly AdBreak[] {
    const t = this.#turn;
    return t.slot !== null && t.k === 0 ? (t.slot.breaks ?? []) : [];
  }

  /** The programme was taken off the channel (applyProgramme with none). */
  retire(): void {
    this.#retired = true;
  }

  /** A new programme (the first one too): from the next slot on (see the module comment). */
  replace(spec: ProgrammeSpec): void {
    this.#spec = spec;
    // The live run's end and what follows it are set; the next boundary decides afresh.
    if (!this.#live) this.#decide();
  }

  /** Decides the cut of the timeline's item playing and what follows it. */
  #decide(): void {
    const { timeline: t, epochZeroMs } = this.#deps;
    t.limitCurrent(null, null);
    // Output time of the item's own zero: the next item's base is this plus its period.
    const startMs = -t.itemTimeMs(0);
    const zero = epochZeroMs();
    const turn = this.#turn;
    const nextSlot = this.#spec.slots.find((s) => s.startMs > turn.sinceMs) ?? null;
    const untilMs = nextSlot === null ? Infinity : nextSlot.startMs - zero;
    const toSlot: Turn | null = nextSlot === null ? null : { slot: nextSlot, k: 0, sinceMs: nextSlot.startMs };
    const filler = (k: number): Turn => ({ slot: null, k: k % this.#spec.filler.length, sinceMs: turn.sinceMs });
    let endMs = startMs + t.periodMs;
    let limitMs: number | null = null;
    let next: Turn;
    if (turn.slot !== null) {
      const contentEndMs = Math.min(turn.slot.endMs - zero, untilMs);
      if (endMs > contentEndMs) endMs = limitMs = contentEndMs;
      if (turn.k + 1 < turn.slot.items.length && endMs < contentEndMs - marginMs) next = { ...turn, k: turn.k + 1 };
      else next = toSlot !== null && endMs >= untilMs - marginMs ? toSlot : filler(0);
    } else {
      if (endMs > untilMs) endMs = limitMs = untilMs;
      next = toSlot !== null && endMs >= untilMs - marginMs ? toSlot : filler(turn.k + 1);
    }
    // The cut, then where the next item really starts: a limit already passed cuts at the next clean cut.
    const limitAt = (turn: Turn): number | null => {
      if (limitMs === null) return null;
      // The next item's first tag (its reorder delay before its zero) is due by the limit too.
      // A live-source slot has no item of its own: its source joins on a keyframe.
      const id = itemOf(this.#spec, turn);
      const position = id === undefined ? null : this.#positionOf(id);
      const item = position === null ? undefined : t.itemAt(position);
      return t.itemTimeMs(limitMs) - (item === undefined ? 0 : openingDtsMs(item));
    };
    t.limitCurrent(limitAt(next), null);
    const nextAtMs = zero + startMs + t.periodMs;
    const live = next.slot?.live !== undefined ? next.slot : null;
    if (live !== null) {
      if (this.#toLive(live, nextAtMs, startMs + t.periodMs)) return;
      // Over before the item playing ends (a late join): the filler after it.
      next = { slot: null, k: 0, sinceMs: live.startMs };
      t.limitCurrent(limitAt(next), null);
    }
    // A slot well under way (a channel that joins its programme late): where it would be by then.
    let fromMs: number | null = null;
    if (next === toSlot && toSlot.slot !== null && nextAtMs > toSlot.sinceMs + joinLateMs) {
      const at = this.#inside(toSlot.slot, nextAtMs - toSlot.sinceMs);
      next = at === null ? { slot: null, k: 0, sinceMs: toSlot.sinceMs } : { ...toSlot, k: at.k };
      fromMs = at?.fromMs ?? null;
    }
    t.limitCurrent(limitAt(next), this.#positionOf(itemOf(this.#spec, next)), fromMs);
    this.#next = next;
  }

  /**
   * Plays live-source slot `slot` from output time `fromMs` (wall `atMs`),
   * where the item playing ends, to its content's end; false when that is
   * already over.
   */
  #toLive(slot: ProgrammeSlot, atMs: number, fromMs: number): boolean {
    const startLive = this.#deps.startLive;
    if (slot.live === undefined || startLive === undefined || atMs >= this.#liveEnd(slot).endMs - marginMs) return false;
    const plan = this.#livePlan(slot, fromMs);
    this.#deps.timeline.stopAfterCurrent();
    this.#live = true;
    startLive(plan);
    return true;
  }

  /** A live slot's content end (its own, or the next slot's start), and the next slot when it starts there. */
  #liveEnd(slot: ProgrammeSlot): { endMs: number; touching: ProgrammeSlot | null } {
    const nextSlot = this.#spec.slots.find((x) => x.startMs > slot.startMs) ?? null;
    const endMs = Math.min(slot.endMs, nextSlot?.startMs ?? Infinity);
    return { endMs, touching: nextSlot !== null && endMs >= nextSlot.startMs - marginMs ? nextSlot : null };
  }

  /**
   * Where the timeline resumes after live slot `slot` when no live slot
   * follows it, as after a VOD entry: the next entry when it starts there
   * (`touching`), else the filler. Noted as the turn expected next; the
   * timeline's position of its item.
   */
  #resumeAfter(slot: ProgrammeSlot, touching: ProgrammeSlot | null): number {
    const after: Turn = touching !== null && touching.live === undefined ? { slot: touching, k: 0, sinceMs: touching.startMs } : { slot: null, k: 0, sinceMs: slot.startMs };
    this.#next = after;
    return this.#positionOf(itemOf(this.#spec, after)) ?? 0;
  }

  /**
   * The run of live slot `slot` from output time `fromMs`, and what follows
   * it (#resumeAfter), unless another live slot follows with no time
   * between: that one is asked for by the run at its pre-roll (`then`),
   * from the programme as it is then, so that an edit made meanwhile counts.
   */
  #livePlan(slot: ProgrammeSlot, fromMs: number): LiveRunPlan {
    const t = this.#deps.timeline;
    const live = slot.live as NonNullable<ProgrammeSlot['live']>;
    const { endMs, touching } = this.#liveEnd(slot);
    const nextPosition = this.#resumeAfter(slot, touching);
    const nextItem = t.itemAt(nextPosition);
    // Not an item of the list: a live entry's index is the first past the list's, so that none is taken for it.
    const refOf = (id: string): LiveRunPlan['ref'] => ({ index: t.itemCount, itemId: id });
    // Whole ms, as every time that goes into a tag (the next entry's start may be the slate's, at this time).
    const untilMs = Math.round(endMs - this.#deps.epochZeroMs());
    return {
      ref: refOf(live.id),
      source: live.source,
      what: `live entry at ${new Date(slot.startMs).toISOString()}`,
      fromMs,
      untilMs,
      nextPosition,
      nextRef: touching?.live !== undefined ? refOf(touching.live.id) : nextItem === undefined ? null : { index: nextPosition, itemId: nextItem.id },
      then: () => {
        if (this.#retired) return { nextPosition };
        // The programme now: the slot that follows this one, if it is live and starts where this one ends.
        const now = this.#liveEnd(slot).touching;
        if (now?.live !== undefined) return { live: this.#livePlan(now, untilMs) };
        return { nextPosition: this.#resumeAfter(slot, now) };
      },
    };
  }

  /** The timeline's position of item `id`; null (and a warning) when its list lacks it. */
  #positionOf(id: string | undefined): number | null {
    const t = this.#deps.timeline;
    for (let i = 0; i < t.itemCount; i++) if (t.itemAt(i)?.id === id) return i;
    this.#deps.log.warn('programme item not in the list; the list order follows', { channel: this.#deps.channelId, item: id });
    return null;
  }

  /** Which item of `slot` plays `lateMs` into it, and where in it (ms); null once its content is over. */
  #inside(slot: ProgrammeSlot, lateMs: number): { k: number; fromMs: number } | null {
    if (lateMs >= slot.endMs - slot.startMs) return null;
    let at = lateMs;
    for (let k = 0; k < slot.items.length; k++) {
      const position = this.#positionOf(slot.items[k]);
      const item = position === null ? undefined : this.#deps.timeline.itemAt(position);
      const periodMs = item === undefined ? 0 : periodMsOf(item);
      if (at < periodMs) return { k, fromMs: at };
      at -= periodMs;
    }
    return null;
  }
}
