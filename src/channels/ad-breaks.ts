/**
 * Ad breaks of playlist items (issue #22 item 3): points in an item, by
 * offset from its first frame, where the worker sends an onCuePoint
 * (worker/cue-points.ts) with the break's id and length. The channel does
 * not stop there: a downstream splicer puts its ad in.
 *
 * Rules, and why:
 * - Only VOD items take breaks: a live item has no item time of its own
 *   that the worker controls.
 * - 0 < offset < the item's length (its shortest track, as the probe gave
 *   it): offset 0 is the item's own cue, and a break past the end would
 *   never go out.
 * - 0 < duration <= 1 hour; at most 32 breaks an item; no two at the same
 *   offset. They are stored sorted by offset, whatever order they came in.
 * - An id is the caller's (1-64 of A-Z a-z 0-9 . _ : -, unique in the
 *   item), or made here (`brk_` and 12 hex digits), so that a cue can be
 *   matched to the ad decision that asked for it.
 *
 * Stored as JSON on the PlaylistItem row (one column, no table), in the
 * shape the API returns; a programme's single-file entries store theirs the
 * same way on ProgrammeEntry, and the worker gets the same AdBreak list.
 *
 * Owns: validation and the stored shape. Imports errors and the pool's AdBreak.
 */
import { randomBytes } from 'node:crypto';
import { badInput } from '../errors.js';
import type { VodResource } from '../generated/prisma-sqlite/client.js';
import type { AdBreak } from '../pool/pipeline-spec.js';

/** One break as the API takes it. */
export interface AdBreakInput {
  offsetSeconds: number;
  durationSeconds: number;
  id?: string | null;
}

/** One break as stored and returned. */
export interface StoredBreak {
  id: string;
  offsetSeconds: number;
  durationSeconds: number;
}

export const adBreakLimits = { perItemMax: 32, durationSecondsMax: 3600 } as const;

const idPattern = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * The breaks of the item at `at` (a phrase for messages, e.g. "item 0"),
 * checked against its length, sorted by offset, each with an id.
 * @throws BAD_USER_INPUT (`field`, default items) naming the item and the rule.
 */
export function checkBreaks(breaks: readonly AdBreakInput[], at: string, itemSeconds: number, field = 'items'): StoredBreak[] {
  if (breaks.length > adBreakLimits.perItemMax) throw badInput(field, `${at}: at most ${adBreakLimits.perItemMax} breaks`);
  const out: StoredBreak[] = [];
  const ids = new Set<string>();
  for (const b of breaks) {
    const o = b.offsetSeconds;
    const d = b.durationSeconds;
    if (!Number.isFinite(o) || o <= 0 || o >= itemSeconds) {
      throw badInput(field, `${at}: a break's offsetSeconds must be more than 0 and less than the item's length (${itemSeconds} s); got ${o}`);
    }
    if (!Number.isFinite(d) || d <= 0 || d > adBreakLimits.durationSecondsMax) {
      throw badInput(field, `${at}: a break's durationSeconds must be more than 0 and at most ${adBreakLimits.durationSecondsMax}; got ${d}`);
    }
    const id = b.id ?? `brk_${randomBytes(6).toString('hex')}`;
    if (!idPattern.test(id)) throw badInput(field, `${at}: a break's id must be 1-64 of A-Z a-z 0-9 . _ : -`);
    if (ids.has(id)) throw badInput(field, `${at}: two breaks with the id ${JSON.stringify(id)}`);
    ids.add(id);
    out.push({ id, offsetSeconds: o, durationSeconds: d });
  }
  out.sort((a, b) => a.offsetSeconds - b.offsetSeconds);
  for (let i = 1; i < out.length; i++) {
    if (Math.round((out[i]?.offsetSeconds ?? 0) * 1000) === Math.round((out[i - 1]?.offsetSeconds ?? 0) * 1000)) throw badInput(field, `${at}: two breaks at the same offset`);
  }
  return out;
}

/** An item's length as the probe gave it: its shortest track (the worker plays no more), else the file's duration. Seconds. */
export function shortestTrackSeconds(vod: Pick<VodResource, 'videoDurationSeconds' | 'audioDurationSeconds' | 'durationSeconds'>): number {
  const tracks = [vod.videoDurationSeconds, vod.audioDurationSeconds].filter((s): s is number => s !== null && s > 0);
  return tracks.length > 0 ? Math.min(...tracks) : vod.durationSeconds;
}

/** A stored column back into breaks; a row that is not what this module wrote throws (a corrupt row, not an empty list). */
export function parseBreaks(json: string): StoredBreak[] {
  const v: unknown = JSON.parse(json);
  const ok = (b: unknown): b is StoredBreak =>
    typeof b === 'object' && b !== null && typeof (b as StoredBreak).id === 'string' && typeof (b as StoredBreak).offsetSeconds === 'number' && typeof (b as StoredBreak).durationSeconds === 'number';
  if (!Array.isArray(v) || !v.every(ok)) throw new Error(`corrupt ad breaks: ${json.slice(0, 100)}`);
  return v;
}

/** Breaks as the worker takes them (ms). */
export const breaksSpec = (breaks: readonly StoredBreak[]): AdBreak[] =>
  breaks.map((b) => ({ id: b.id, offsetMs: Math.round(b.offsetSeconds * 1000), durationMs: Math.round(b.durationSeconds * 1000) }));
