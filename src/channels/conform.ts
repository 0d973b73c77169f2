/**
 * How a VOD channel with an output profile plays each of its items (issue
 * #21 item 5): as it is when the file fits the profile, else from its
 * rendition, which must be READY. What the API shows per item (`conform`),
 * the one refusal, MEDIA_NOT_READY, that names every item still conforming
 * (or failed) when a start or a running channel's edit needs them, and when
 * the service asks src/vods/ for renditions (ConformDesk, through ConformPort).
 */
import { join } from 'node:path';
import { VliveError } from '../errors.js';
import { fitsProfile, parseProfileKey, profileKey, type OutputProfile } from '../media/output-profile.js';
import type { ConformPort } from './ports.js';
import { playlistOf, type ChannelFields, type ChannelRecord, type ChannelRepository, type ChannelVod } from './repository.js';
import { isActive } from './status.js';

export type ConformState = 'AS_IS' | 'WAITING' | 'CONFORMING' | 'READY' | 'FAILED';

export interface ConformView {
  readonly state: ConformState;
  /** 0..1; 1 for AS_IS and READY. */
  readonly progress: number;
  readonly error: string | null;
  /** The rendition's file, relative to the data dir, once READY. */
  readonly path: string | null;
  readonly renditionId: string | null;
}

/** WAITING: no rendition asked for yet (the channel's next edit or start asks). */
export function conformOf(v: ChannelVod, profile: OutputProfile): ConformView {
  if (fitsProfile(v, profile)) return { state: 'AS_IS', progress: 1, error: null, path: null, renditionId: null };
  const key = profileKey(profile);
  const r = v.renditions.find((x) => x.profileKey === key);
  if (r === undefined) return { state: 'WAITING', progress: 0, error: null, path: null, renditionId: null };
  const state = r.state === 'READY' && r.path !== null ? 'READY' : r.state === 'FAILED' ? 'FAILED' : 'CONFORMING';
  return { state, progress: state === 'READY' ? 1 : r.progress, error: r.error, path: state === 'READY' ? r.path : null, renditionId: r.id };
}

/** @throws MEDIA_NOT_READY naming every item that can play neither as it is nor from a READY rendition. */
export function checkConformed(items: readonly ChannelVod[], profile: OutputProfile, context: string): void {
  const waiting = new Map<string, string>();
  for (const v of items) {
    const c = conformOf(v, profile);
    if (c.state === 'AS_IS' || c.state === 'READY') continue;
    const how = c.state === 'FAILED' ? `failed: ${c.error ?? 'unknown error'}` : `${Math.round(c.progress * 100)} %`;
    waiting.set(v.id, `"${v.name}" (${how})`);
  }
  if (waiting.size === 0) return;
  throw new VliveError('MEDIA_NOT_READY', `${context}: still conforming to the output profile: ${[...waiting.values()].join(', ')}; try again once every item's conform is READY`);
}

/** The file a conformed item plays from, or null when it plays as it is. */
export function renditionPath(v: ChannelVod, profile: OutputProfile, dataDir: string): string | null {
  const c = conformOf(v, profile);
  return c.path === null ? null : join(dataDir, c.path);
}

/** When the service asks for renditions, and the running channel's edit rule. */
export class ConformDesk {
  /** @param port absent: nothing is ever conformed, and items that need it stay WAITING. */
  constructor(
    private readonly port: ConformPort | undefined,
    private readonly repo: ChannelRepository,
  ) {}

  /**
   * Asks for the renditions a VOD channel with an output profile lacks (its
   * items and slate): at its creation, at edits of its profile, playlist or
   * slate, and at each start. True when it has a profile (the record is then
   * worth reading again: it holds the new rows).
   */
  async ask(rec: ChannelRecord): Promise<boolean> {
    const profile = parseProfileKey(rec.outputProfile);
    if (profile === null || rec.sourceType !== 'VOD' || this.port === undefined) return false;
    const items = playlistOf(rec);
    await this.port.ensure(rec.slateVodResource === null ? items : [...items, rec.slateVodResource], profile);
    return true;
  }

  /**
   * A running channel under an output profile takes a new playlist only when
   * every item plays as it is or from a READY rendition: it switches at its
   * next boundary, with no time to wait for a transcode. The renditions it
   * lacks are asked for all the same, so the same edit succeeds once they
   * are READY; the refusal (MEDIA_NOT_READY) names them, and nothing of the
   * channel changes.
   */
  async checkRunningEdit(rec: ChannelRecord, fields: Partial<ChannelFields>): Promise<void> {
    const profile = parseProfileKey(rec.outputProfile);
    if (profile === null || fields.playlist === undefined || !isActive(rec.status)) return;
    const vods = await this.repo.getVods(fields.playlist);
    // The rows ensure() adds are CONFORMING at 0 %, which the refusal names as it would a WAITING item: no second read.
    if (this.port !== undefined) await this.port.ensure(vods, profile);
    checkConformed(vods, profile, 'the running channel');
  }
}
