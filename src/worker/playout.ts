/**
 * Playout of one VOD channel inside its worker: which item is on air, and
 * skips and jumps. The timeline (vod-timeline.ts) decides every cut and
 * every timestamp; this follows it and tells the supervisor.
 *
 * - On air means at the origin's socket: an item's boundary is decided when
 *   the feeder reads it (a pace period ahead), and reported once the
 *   output's flushed position reaches the item's first tag (the host's
 *   sampler, every 100 ms).
 * - A skip or jump cuts the item playing at its next clean cut after what the
 *   feeder has already taken (copy mode: the next frame, or the end of the
 *   mini-GOP with B-frames; the next item starts on its own keyframe). It is
 *   answered when the timeline has decided the cut, with the exact time the
 *   next item starts: at most a pace period and a mini-GOP after the command.
 *
 * - A cue point (cue-points.ts) is reported like an item: once the output's
 *   flushed position reaches its tag, with the keyframe the feeder found after it.
 *
 * Owns: the items decided but not yet on air, the cue points sent but not
 * yet reported, and the commands waiting for their cut. Imports vod-timeline.ts, vod-feeder.ts (types) and pool/playout-spec.ts.
 */
import type { CuePoint, PlayoutCommand, PlayoutEvent, PlayoutItemRef } from '../pool/playout-spec.js';
import type { Cue } from './cue-points.js';
import type { Step, VodTimeline } from './vod-timeline.js';

type Boundary = Extract<Step, { kind: 'boundary' }>;

/** An item decided by the timeline, on air once the output reaches `startMs`. */
interface Pending {
  readonly ref: PlayoutItemRef;
  readonly startMs: number;
  readonly durationMs: number;
  readonly loop: number;
  readonly next: PlayoutItemRef | null;
}

/**
 * An item shorter than this never went on air: a skip or jump that came
 * before any of its media was taken ends it where it begins (it still gets
 * a boundary, 1 ms long, to keep DTS strictly increasing).
 */
const unplayedMs = 5;

export interface PlayoutDeps {
  readonly timeline: VodTimeline;
  /** performance.now() at output time 0; null before the publish started. */
  readonly startedAtMs: () => number | null;
  readonly send: (event: PlayoutEvent) => void;
  /** The list has live items (live-items.ts): the timeline's position → its index in the whole list. */
  readonly indexOf?: (position: number) => number;
  /** A live item that follows the timeline's position, if one does. */
  readonly liveAfter?: (position: number) => PlayoutItemRef | null;
}

export class Playout {
  readonly #deps: PlayoutDeps;
  #pending: Pending[];
  /** The last item reported on air; re-sent when what follows it changes. */
  #onAir: Pending | null = null;
  /** Commands waiting for the timeline's next boundary. */
  #waiting: number[] = [];
  /** Cue points sent, reported once the output reaches them. */
  #cues: CuePoint[] = [];
  /** Wall clock (ms since the epoch) at output time 0; read at the first need once the publish started. */
  #epochZero: number | null = null;

  constructor(deps: PlayoutDeps) {
    this.#deps = deps;
    const t = deps.timeline;
    this.#pending = [{ ref: this.#ref(t.position, t.item.id), startMs: 0, durationMs: t.periodMs, loop: t.loops, next: this.#next() }];
  }

  #ref(position: number, itemId: string): PlayoutItemRef {
    return refOf(this.#deps.indexOf?.(position) ?? position, itemId);
  }

  /** What follows the timeline's item: a live item, else the timeline's next. */
  #next(): PlayoutItemRef | null {
    const t = this.#deps.timeline;
    const live = this.#deps.liveAfter?.(t.position) ?? null;
    if (live !== null) return live;
    const n = t.upNext;
    return n === null ? null : this.#ref(n.index, n.item.id);
  }

  /** A live item goes on air at output time `startMs` (live-items.ts); the item after it is `next`. */
  addLive(ref: PlayoutItemRef, startMs: number, durationMs: number, next: PlayoutItemRef | null): void {
    this.#pending = this.#pending.filter((p) => p.startMs < startMs - unplayedMs);
    this.#pending.push({ ref, startMs, durationMs, loop: this.#deps.timeline.loops, next });
  }

  /** The feeder read a boundary: the next item is decided, and so is every waiting command. */
  onBoundary(step: Boundary): void {
    const t = this.#deps.timeline;
    const entry: Pending = { ref: this.#ref(step.index, step.nextItem.id), startMs: step.startMs, durationMs: step.periodMs, loop: t.loops, next: this.#next() };
    this.#pending = this.#pending.filter((p) => p.startMs < step.startMs - unplayedMs);
    this.#pending.push(entry);
    const atMs = this.#epochOf(step.startMs);
    for (const requestId of this.#waiting) this.#deps.send({ kind: 'switched', requestId, atMs, ...entry.ref });
    this.#waiting = [];
  }

  /** The output's flushed position (output ms): items whose first tag it passed are on air. */
  observe(positionMs: number): void {
    let reached: Pending | null = null;
    while (this.#pending.length > 0 && (this.#pending[0]?.startMs ?? Infinity) <= positionMs) reached = this.#pending.shift() ?? null;
    if (reached !== null) this.#announce(reached);
    while (this.#cues.length > 0 && (this.#cues[0]?.mediaMs ?? Infinity) <= positionMs) {
      const cue = this.#cues.shift() as CuePoint;
      this.#deps.send({ kind: 'cue', atMs: this.#epochOf(cue.mediaMs), cue });
    }
  }

  /** A cue's tag went out (vod-feeder.ts): reported when the output reaches it. */
  addCue(cue: Cue, keyframeMs: number | null): void {
    const { kind, id, index, itemId, atMs: mediaMs, offsetMs, durationMs, loop } = cue;
    this.#cues.push({ kind, id, index, itemId, mediaMs, offsetMs, durationMs, keyframeMs, loop });
  }

  /** A skip or jump; answered through `send` with `requestId`. */
  command(requestId: number, command: PlayoutCommand): void {
    const t = this.#deps.timeline;
    let index: number;
    if (command.kind === 'jump') index = command.index;
    else {
      // The item after the one the timeline is reading now (which may be a
      // pace period ahead of what is on air), so a skip never replays it.
      const last = t.position + 1;
      if (last < t.itemCount) index = last;
      else if (t.looping) index = 0;
      else {
        this.#deps.send({ kind: 'refused', requestId, error: 'the last item of a list that does not loop is playing: nothing follows it' });
        return;
      }
    }
    try {
      t.cutTo(index);
    } catch (err) {
      this.#deps.send({ kind: 'refused', requestId, error: (err as Error).message });
      return;
    }
    this.#waiting.push(requestId);
    this.#nextChanged();
  }

  /** Answers `requestId` with the next boundary the timeline decides (a return from a cut-in). */
  awaitBoundary(requestId: number): void {
    this.#waiting.push(requestId);
  }

  /**
   * The playlist was replaced (timeline.setItems): the item playing may have
   * another index, and another item follows it; `periodChanged`: a programme
   * cut it anew (programme-clock.ts), so it ends at another time too.
   */
  listChanged(periodChanged = false): void {
    this.#nextChanged(periodChanged);
  }

  /**
   * What follows the item the timeline reads changed: an item not yet on
   * air carries the news; the one on air says so now, not at its end.
   */
  #nextChanged(periodChanged = false): void {
    const t = this.#deps.timeline;
    // After an edit the item keeps its place by id; one removed from the list keeps its old index.
    const moved = (ref: PlayoutItemRef): PlayoutItemRef => (t.itemAt(t.position)?.id === ref.itemId && ref.itemId === t.item.id ? this.#ref(t.position, ref.itemId) : ref);
    const update = (p: Pending): Pending => ({ ...p, ref: moved(p.ref), next: this.#next(), ...(periodChanged ? { durationMs: t.periodMs } : {}) });
    const last = this.#pending.length - 1;
    const reading = this.#pending[last];
    if (reading !== undefined) this.#pending[last] = update(reading);
    else if (this.#onAir !== null) this.#announce(update(this.#onAir));
  }

  /** The channel ends: commands still waiting are refused. */
  close(reason: string): void {
    for (const requestId of this.#waiting) this.#deps.send({ kind: 'refused', requestId, error: reason });
    this.#waiting = [];
  }

  #announce(p: Pending): void {
    this.#onAir = p;
    this.#deps.send({ kind: 'item', ...p.ref, startedAtMs: this.#epochOf(p.startMs), durationMs: p.durationMs, loop: p.loop, next: p.next });
  }

  /**
   * Output time → wall clock, ms since the epoch. Output time 0 is read
   * once, so that an item announced twice (its upNext changed) keeps its
   * startedAt to the millisecond.
   */
  #epochOf(outputMs: number): number {
    if (this.#epochZero === null) {
      const started = this.#deps.startedAtMs();
      if (started === null) return Math.round(Date.now() + outputMs);
      this.#epochZero = Date.now() - performance.now() + started;
    }
    return Math.round(this.#epochZero + outputMs);
  }
}

const refOf = (index: number, itemId: string): PlayoutItemRef => ({ index, itemId });
