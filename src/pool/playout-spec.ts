/**
 * Playout control as the supervisor and a worker speak it (src/pool/ipc.ts
 * carries these): the commands that move a VOD or playlist channel to
 * another item, and what the worker says back: each item as it goes on air,
 * and the answer to each command. Times are wall-clock ms since the epoch:
 * supervisor and worker share the host's clock.
 *
 * Imports only pipeline-spec.ts's record test.
 */
import { isRecord } from './pipeline-spec.js';

/** Skip: the item after the one playing. Jump: item `index` of the list (0-based). */
export type PlayoutCommand = { kind: 'skip' } | { kind: 'jump'; index: number };

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
  /** Command `requestId` was not carried out (the channel ended, the index left the list). */
  | { kind: 'refused'; requestId: number; error: string };

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function isItemRef(v: unknown): v is PlayoutItemRef {
  return isRecord(v) && isIndex(v['index']) && typeof v['itemId'] === 'string';
}

export function isPlayoutCommand(v: unknown): v is PlayoutCommand {
  return isRecord(v) && (v['kind'] === 'skip' || (v['kind'] === 'jump' && isIndex(v['index'])));
}

export function isPlayoutEvent(v: unknown): v is PlayoutEvent {
  if (!isRecord(v)) return false;
  switch (v['kind']) {
    case 'item':
      return isItemRef(v) && isTime(v['startedAtMs']) && isTime(v['durationMs']) && isIndex(v['loop']) && (v['next'] === null || isItemRef(v['next']));
    case 'switched':
      return isItemRef(v) && isIndex(v['requestId']) && isTime(v['atMs']);
    case 'refused':
      return isIndex(v['requestId']) && typeof v['error'] === 'string';
    default:
      return false;
  }
}
