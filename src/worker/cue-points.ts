/**
 * Cue points of a VOD channel's output (issue #22 item 3): an AMF0
 * `onCuePoint` script tag at every item start (each loop of a single file
 * too) and at every ad break an item declares, stamped with the output time
 * of the media it marks, so a downstream splicer or player finds it at that
 * frame. Pure: which cues an item gets, and their tags.
 *
 * Times: an item starts at its boundary's startMs (its first tag on the
 * output timeline); a break at item offset o is at startMs + o, minus where a
 * resumed item starts inside itself (`fromMs`). Breaks the item never
 * reaches (it is cut short, or resumed past them) get no cue.
 *
 * Copy mode cannot make a keyframe at a break: the cue marks the intended
 * time, and the feeder notes the first video keyframe at or after it
 * (`keyframeMs`), which the API reports beside it.
 *
 * The tag is the Flash cue point shape: `onCuePoint` then an object
 * { name, time, type: "event", parameters: { … } }, `time` in seconds on the
 * output timeline (the origin's FLV timestamps; an extra push target's
 * session starts at 0, so there the tag's timestamp is rebased and `time`
 * is not).
 */
import { scriptTag } from '../media/flv.js';
import { encode } from '../rtmp/amf0.js';
import type { AdBreak } from '../pool/pipeline-spec.js';
import type { ItemMedia } from './item-plan.js';

export type CueKind = 'ITEM' | 'BREAK';

/** A cue of the worker's output. */
export interface Cue {
  readonly kind: CueKind;
  /** The break's id; for ITEM, the item's id. */
  readonly id: string;
  /** The item's index in the whole list (live items included). */
  readonly index: number;
  readonly itemId: string;
  /** Output time, ms: the tag's timestamp at the origin. */
  readonly atMs: number;
  /** Item time, ms (0 for ITEM, or where a resumed item starts). */
  readonly offsetMs: number;
  /** The break's length; for ITEM, how long the item plays if nothing cuts it. ms. */
  readonly durationMs: number;
  /** Times the list wrapped round. */
  readonly loop: number;
}

/** Where an item starts on the output, as its boundary says (vod-timeline.ts). */
export interface ItemStart {
  readonly item: ItemMedia;
  readonly index: number;
  readonly startMs: number;
  readonly fromMs: number;
  readonly periodMs: number;
  readonly loop: number;
  /** Breaks that stand for the item's own (a programme entry's, programme-clock.ts); default: the item's. */
  readonly breaks?: readonly AdBreak[];
}

/** The item's cues in time order: its start, then each break it will reach. */
export function itemCues(s: ItemStart): Cue[] {
  const base = { index: s.index, itemId: s.item.id, loop: s.loop };
  const out: Cue[] = [{ ...base, kind: 'ITEM', id: s.item.id, atMs: s.startMs, offsetMs: s.fromMs, durationMs: s.periodMs }];
  const breaks = [...(s.breaks ?? s.item.breaks ?? [])].sort((a, b) => a.offsetMs - b.offsetMs);
  for (const b of breaks) {
    // The first frame is the item cue's; a break there would need a keyframe before the item's own.
    if (b.offsetMs <= s.fromMs || b.offsetMs - s.fromMs >= s.periodMs) continue;
    out.push({ ...base, kind: 'BREAK', id: b.id, atMs: s.startMs + b.offsetMs - s.fromMs, offsetMs: b.offsetMs, durationMs: b.durationMs });
  }
  return out;
}

/** The onCuePoint script tag of `cue`, at its output time. */
export function cuePointTag(cue: Cue): Buffer {
  const parameters = {
    id: cue.id,
    kind: cue.kind,
    itemId: cue.itemId,
    itemIndex: cue.index,
    offsetSeconds: cue.offsetMs / 1000,
    durationSeconds: cue.durationMs / 1000,
    loop: cue.loop,
  };
  const body = encode('onCuePoint', { name: cue.id, time: cue.atMs / 1000, type: 'event', parameters });
  return scriptTag(cue.atMs, body);
}

/**
 * The cues of the item being read, handed out as the feeder reaches their
 * times, and the ones waiting for the next video keyframe.
 */
export class CueSchedule {
  #due: Cue[] = [];
  #awaitingKey: Cue[] = [];
  readonly #video: boolean;

  /** `video`: the channel has video, so a cue's keyframe is worth waiting for. */
  constructor(video: boolean) {
    this.#video = video;
  }

  /** An item starts: cues of the one before that it never reached are dropped. */
  item(start: ItemStart): void {
    this.#due = itemCues(start);
  }

  /** Cues at or before output time `dtsMs`, in order: their tags go out before the sample at `dtsMs`. */
  due(dtsMs: number): Cue[] {
    let n = 0;
    while (n < this.#due.length && (this.#due[n]?.atMs ?? Infinity) <= dtsMs) n += 1;
    if (n === 0) return [];
    const out = this.#due.splice(0, n);
    if (this.#video) this.#awaitingKey.push(...out);
    return out;
  }

  /**
   * Cues sent and their keyframe now known: the first video keyframe at or
   * after them (FLV timestamp `dtsMs`), or none for a channel without video.
   */
  resolved(keyframeDtsMs: number | null): { cue: Cue; keyframeMs: number | null }[] {
    if (this.#awaitingKey.length === 0) return [];
    const out = this.#awaitingKey.map((cue) => ({ cue, keyframeMs: keyframeDtsMs }));
    this.#awaitingKey = [];
    return out;
  }
}
