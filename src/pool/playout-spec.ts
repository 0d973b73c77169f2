/**
 * Playout control as the supervisor and a worker speak it (src/pool/ipc.ts
 * carries these): the commands that move a VOD or playlist channel to
 * another item, and what the worker says back: each item as it goes on air,
 * and the answer to each command. Times are wall-clock ms since the epoch:
 * supervisor and worker share the host's clock.
 *
 * Imports only pipeline-spec.ts (its record test, live sources and VOD items).
 */
import { isLiveSource, isRecord, isVodItems, type LiveSource, type VodItem } from './pipeline-spec.js';

/** How a cut-in returns to the playlist: where it was left, or where it would be now had it kept playing. */
export type ReturnMode = 'resume' | 'wallclock';

/**
 * Skip: the item after the one playing. Jump: item `index` of the list (0-based).
 * Take-live: a live source replaces the playlist at its first keyframe (the
 * slate, when given, fills while it is away). Return: back to the playlist.
 */
export type PlayoutCommand =
  | { kind: 'skip' }
  | { kind: 'jump'; index: number }
  | { kind: 'take-live'; source: LiveSource; slate: VodItem | null }
  | { kind: 'return'; mode: ReturnMode };

/** What feeds a cut-in channel: its live source, the slate while the source is away, or nothing (no slate). */
export type CutInSource = 'on-air' | 'slate' | 'waiting';

/** Why a command was refused, when it is not INVALID_STATE: the client sees this code. */
export type RefusalCode = 'SOURCE_UNREACHABLE' | 'INCOMPATIBLE_MEDIA';

/** A playlist item by position and VOD resource id. */
export interface PlayoutItemRef {
  index: number;
  itemId: string;
}

export type PlayoutEvent =
  /**
   * An item went on air (its first tag reached the origin's socket), or what
   * follows it changed (a skip or jump was asked for): `next` is what plays
   * after it as things stand, null at the end of a list that does not loop.
   */
  | ({
      kind: 'item';
      startedAtMs: number;
      /** How long it plays if nothing cuts it, ms. */
      durationMs: number;
      /** Times the list wrapped round since the channel started. */
      loop: number;
      next: PlayoutItemRef | null;
    } & PlayoutItemRef)
  /** Command `requestId` took effect: item `index` starts at `atMs`, the next clean cut. */
  | ({ kind: 'switched'; requestId: number; atMs: number } & PlayoutItemRef)
  /**
   * Command `requestId` was not carried out (the channel ended, the index
   * left the list, a cut-in source that never joined); `code` when it is
   * not INVALID_STATE.
   */
  | { kind: 'refused'; requestId: number; error: string; code?: RefusalCode }
  /**
   * A cut-in changed: its live source joined at `atMs` (the answer to
   * take-live `requestId`), went away (slate or waiting), came back, or
   * ended (a return, or the channel's end).
   */
  | { kind: 'cut-in'; requestId: number | null; state: CutInSource | 'ended'; atMs: number }
  /** A cue point's tag reached the origin's socket (`atMs`, wall clock): an item start or an ad break. */
  | { kind: 'cue'; atMs: number; cue: CuePoint };

/** A cue point the worker sent (worker/cue-points.ts), as the supervisor records it. */
export interface CuePoint extends PlayoutItemRef {
  kind: 'ITEM' | 'BREAK';
  /** The break's id; for ITEM, the item's id. */
  id: string;
  /** Its FLV timestamp on the output's timeline (the origin's), ms. */
  mediaMs: number;
  /** Item time, ms: the break's offset (0 for an item's start). */
  offsetMs: number;
  /** The break's length; for ITEM, how long the item plays if nothing cuts it. ms. */
  durationMs: number;
  /** FLV timestamp of the first video keyframe at or after it (where a copy-mode splice can start); null without video. */
  keyframeMs: number | null;
  loop: number;
}

function isCuePoint(v: unknown): v is CuePoint {
  return (
    isRecord(v) &&
    isItemRef(v) &&
    (v['kind'] === 'ITEM' || v['kind'] === 'BREAK') &&
    typeof v['id'] === 'string' &&
    isIndex(v['mediaMs']) &&
    isIndex(v['offsetMs']) &&
    isIndex(v['durationMs']) &&
    (v['keyframeMs'] === null || isIndex(v['keyframeMs'])) &&
    isIndex(v['loop'])
  );
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function isItemRef(v: unknown): v is PlayoutItemRef {
  return isRecord(v) && isIndex(v['index']) && typeof v['itemId'] === 'string';
}

export function isPlayoutCommand(v: unknown): v is PlayoutCommand {
  if (!isRecord(v)) return false;
  switch (v['kind']) {
    case 'skip':
      return true;
    case 'jump':
      return isIndex(v['index']);
    case 'take-live':
      return isLiveSource(v['source']) && (v['slate'] === null || isVodItems([v['slate']]));
    case 'return':
      return v['mode'] === 'resume' || v['mode'] === 'wallclock';
    default:
      return false;
  }
}

const cutInStates: readonly unknown[] = ['on-air', 'slate', 'waiting', 'ended'];

export function isPlayoutEvent(v: unknown): v is PlayoutEvent {
  if (!isRecord(v)) return false;
  switch (v['kind']) {
    case 'item':
      return isItemRef(v) && isTime(v['startedAtMs']) && isTime(v['durationMs']) && isIndex(v['loop']) && (v['next'] === null || isItemRef(v['next']));
    case 'switched':
      return isItemRef(v) && isIndex(v['requestId']) && isTime(v['atMs']);
    case 'refused':
      return isIndex(v['requestId']) && typeof v['error'] === 'string' && (v['code'] === undefined || v['code'] === 'SOURCE_UNREACHABLE' || v['code'] === 'INCOMPATIBLE_MEDIA');
    case 'cut-in':
      return (v['requestId'] === null || isIndex(v['requestId'])) && cutInStates.includes(v['state']) && isTime(v['atMs']);
    case 'cue':
      return isTime(v['atMs']) && isCuePoint(v['cue']);
    default:
      return false;
  }
}
