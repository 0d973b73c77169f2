/**
 * Status changes leave the channel domain through this emitter; the API
 * subscribes to it, so nothing in channels/ imports from api/.
 */
import { EventEmitter } from 'node:events';
import type { PlayoutItemRef } from '../pool/playout-spec.js';
import type { LiveStatus } from './status.js';

/** What a VOD channel has on air (playout.ts). */
export interface NowPlaying extends PlayoutItemRef {
  startedAt: Date;
  /** When it ends if nothing cuts it. */
  endsAt: Date;
  /** Times the list wrapped round since the pipeline started. */
  loop: number;
  /** What plays after it as things stand; null at the end of a list that does not loop. */
  next: PlayoutItemRef | null;
}

/** A live cut-in of a VOD channel (playout.ts): what feeds its output instead of the playlist. */
export interface CutInView {
  /** The live URL, credentials and stream key masked. */
  url: string;
  /** When its first keyframe went out (wall clock). */
  startedAt: Date;
  /** ON_AIR: the live source; SLATE: it is away and the slate fills; WAITING: away, no slate. */
  source: 'ON_AIR' | 'SLATE' | 'WAITING';
}

/**
 * A cue point a VOD channel's worker sent (worker/cue-points.ts), once it
 * reached the origin's socket: an item's start or an ad break.
 */
export interface CuePointView extends PlayoutItemRef {
  kind: 'ITEM' | 'BREAK';
  /** The break's id; for ITEM, the item's (its VOD resource's) id. */
  id: string;
  /** When its tag reached the origin (wall clock). */
  at: Date;
  /** Its FLV timestamp at the origin, seconds. */
  mediaTimeSeconds: number;
  /** The break's offset in its item, seconds (0 for ITEM). */
  offsetSeconds: number;
  /** The break's length; for ITEM, how long the item plays if nothing cuts it. */
  durationSeconds: number;
  /** FLV timestamp of the first video keyframe at or after it, seconds; null without video. */
  keyframeTimeSeconds: number | null;
  loop: number;
}

export interface StatusChange {
  id: string;
  status: LiveStatus;
  previous: LiveStatus | null;
  errorString: string | null;
  at: Date;
  /**
   * The channel's current warnings (recording or snapshot faults; the live
   * output is unaffected). An event whose status equals previous only says
   * that the warnings changed.
   */
  warnings: string[];
  /** Reconnect attempts since the channel was last LIVING. */
  reconnectAttempts: number;
  /** When the next reconnect attempt is due, while RECONNECTING. */
  nextAttemptAt: Date | null;
  /** What feeds the output: PRIMARY, BACKUP or SLATE. */
  activeSource: string;
  /** Players the origin reports on the channel (on-demand bookkeeping; HLS viewers are not seen). */
  viewers: number;
  /** Set on a detail event that only reports a new viewer count. */
  viewersOnly?: boolean;
  /** Set on the detail event of an item boundary of a VOD channel: what went on air. */
  playout?: NowPlaying;
  /** Set on the detail event of a cut-in's start or change (the cut-in), or its end (null). */
  cutIn?: CutInView | null;
  /** Set on the detail event of a cue point (an item start or an ad break at the origin). */
  cuePoint?: CuePointView;
}

export class StatusEvents {
  readonly #emitter = new EventEmitter();

  constructor() {
    // Every subscription adds a listener; hundreds are normal, not a leak.
    this.#emitter.setMaxListeners(0);
  }

  publish(change: StatusChange): void {
    this.#emitter.emit('change', change);
  }

  subscribe(listener: (change: StatusChange) => void): () => void {
    this.#emitter.on('change', listener);
    return () => this.#emitter.off('change', listener);
  }
}
