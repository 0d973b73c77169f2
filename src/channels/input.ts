/**
 * Validation of create and update inputs. Every limit is here, and every
 * message names the field. Nothing is written before this passes.
 */
import { badInput, notFound, VliveError } from '../errors.js';
import { checkCompatible, type MediaShape } from '../media/compat.js';
import { checkConformable, checkOutputProfile, parseProfileKey, profileKey, type OutputProfile, type OutputProfileInput } from '../media/output-profile.js';
import { parsePushTarget, parseSourceUrl } from '../media/urls.js';
import { checkId, checkName } from '../names.js';
import { playlistOf, type ChannelFields, type ChannelRecord, type ChannelRepository } from './repository.js';
import { splitItems, type LiveItemFields, type PlaylistItemInput } from './live-items.js';
import { checkBreaks, shortestTrackSeconds, type AdBreakInput, type StoredBreak } from './ad-breaks.js';
import { vodPositions } from '../pool/pipeline-spec.js';
import { isActive } from './status.js';

export interface CreateInput {
  name: string;
  sourceType: string;
  vodResourceId?: string | null;
  /** VOD resource ids in play order; the alternative to vodResourceId. */
  playlist?: string[] | null;
  /** The richer playlist: VOD items and live items (an online source with a duration); the alternative to playlist. */
  items?: PlaylistItemInput[] | null;
  sourceUrl?: string | null;
  loop?: boolean | null;
  pushTargets?: string[] | null;
  connectTimeoutMs?: number | null;
  recording?: RecordingInput | null;
  snapshot?: SnapshotInput | null;
  rtspTransport?: string | null;
  /** Give up after this many failed reconnect attempts; null (or absent) retries forever. */
  maxReconnectAttempts?: number | null;
  /** ONLINE: AUTO, NEVER or ALWAYS (see schema.graphql). */
  transcode?: string | null;
  /** ONLINE: a second source to fail over to; '' removes it on update. */
  backupUrl?: string | null;
  failoverAfterFailures?: number | null;
  failoverAfterMs?: number | null;
  /** A VOD resource shown while an ONLINE source is away; '' removes it on update. */
  slateVodResourceId?: string | null;
  /** Started by the first viewer or a touch, stopped when idle (default false). */
  onDemand?: boolean | null;
  /** The seed's touchDuration, seconds (default 60). */
  touchDurationSeconds?: number | null;
  /** The seed's delayTimer, seconds (default 10). */
  idleDelaySeconds?: number | null;
  /** Segment into HLS at the managed origin (default true); see schema.graphql. */
  hls?: boolean | null;
  /** VOD: the shape every item goes out in (items that differ are conformed); null on update removes it. */
  outputProfile?: OutputProfileInput | null;
}

export interface RecordingInput {
  enabled?: boolean | null;
  segmentSeconds?: number | null;
  retainHours?: number | null;
}

export interface SnapshotInput {
  enabled?: boolean | null;
  intervalSeconds?: number | null;
}

export type UpdateInput = Partial<Omit<CreateInput, 'sourceType'>>;

export const limits = {
  pushTargetsMax: 8,
  playlistMax: 200,
  connectTimeoutMsMin: 100,
  connectTimeoutMsMax: 120_000,
  segmentSecondsMin: 2,
  segmentSecondsMax: 3600,
  retainHoursMin: 0.01,
  retainHoursMax: 24 * 366,
  snapshotIntervalMin: 1,
  snapshotIntervalMax: 3600,
  maxReconnectAttemptsMax: 1_000_000,
  failoverAfterFailuresMax: 1000,
  failoverAfterMsMin: 1000,
  failoverAfterMsMax: 3_600_000,
  touchDurationSecondsMin: 1,
  touchDurationSecondsMax: 86_400,
  idleDelaySecondsMin: 0,
  idleDelaySecondsMax: 3600,
} as const;

type OnDemandFields = Partial<Pick<ChannelFields, 'onDemand' | 'touchDurationSeconds' | 'idleDelaySeconds'>>;

/** On-demand settings; only the fields given are returned. */
function checkOnDemand(input: UpdateInput): OnDemandFields {
  const out: OnDemandFields = {};
  if (input.onDemand != null) out.onDemand = input.onDemand;
  if (input.touchDurationSeconds != null) {
    out.touchDurationSeconds = wholeIn('touchDurationSeconds', input.touchDurationSeconds, limits.touchDurationSecondsMin, limits.touchDurationSecondsMax);
  }
  if (input.idleDelaySeconds != null) {
    out.idleDelaySeconds = wholeIn('idleDelaySeconds', input.idleDelaySeconds, limits.idleDelaySecondsMin, limits.idleDelaySecondsMax);
  }
  return out;
}

/**
 * hls when given; left out, the database default (true) or the saved value
 * stays. GraphQL has refused anything but a Boolean already (BAD_USER_INPUT).
 */
function checkHls(input: UpdateInput): { hls?: boolean } {
  return input.hls == null ? {} : { hls: input.hls };
}

type LiveFields = Partial<Pick<ChannelFields, 'rtspTransport' | 'maxReconnectAttempts' | 'backupUrl' | 'failoverAfterFailures' | 'failoverAfterMs' | 'liveTranscode'>>;

/** Online-source settings; only the fields given are returned. */
function checkLive(input: UpdateInput): LiveFields {
  const out: LiveFields = {};
  if (input.rtspTransport != null) {
    if (input.rtspTransport !== 'TCP' && input.rtspTransport !== 'UDP') throw badInput('rtspTransport', 'must be TCP or UDP');
    out.rtspTransport = input.rtspTransport;
  }
  if (input.maxReconnectAttempts !== undefined) {
    out.maxReconnectAttempts =
      input.maxReconnectAttempts === null ? null : wholeIn('maxReconnectAttempts', input.maxReconnectAttempts, 1, limits.maxReconnectAttemptsMax);
  }
  if (input.transcode != null) {
    if (input.transcode !== 'AUTO' && input.transcode !== 'NEVER' && input.transcode !== 'ALWAYS') throw badInput('transcode', 'must be AUTO, NEVER or ALWAYS');
    out.liveTranscode = input.transcode;
  }
  if (input.backupUrl != null) {
    if (input.backupUrl !== '') parseSourceUrl(input.backupUrl, 'backupUrl');
    out.backupUrl = input.backupUrl === '' ? null : input.backupUrl;
  }
  if (input.failoverAfterFailures != null) out.failoverAfterFailures = wholeIn('failoverAfterFailures', input.failoverAfterFailures, 1, limits.failoverAfterFailuresMax);
  if (input.failoverAfterMs != null) out.failoverAfterMs = wholeIn('failoverAfterMs', input.failoverAfterMs, limits.failoverAfterMsMin, limits.failoverAfterMsMax);
  return out;
}

/**
 * The slate: a VOD resource that can go into the same FLV session as the
 * channel's media: H.264 video for a relay; for a playlist, the same shape
 * as its items (it plays in place of a missing one). '' removes it.
 */
async function checkSlate(repo: ChannelRepository, input: UpdateInput, playlist: readonly string[] | null, profile: OutputProfile | null = null): Promise<{ slateVodResourceId?: string | null }> {
  if (input.slateVodResourceId == null) return {};
  if (input.slateVodResourceId === '') return { slateVodResourceId: null };
  const id = checkId('slateVodResourceId', input.slateVodResourceId);
  const vod = await repo.getVod(id);
  if (vod === null) throw notFound('VOD resource', id);
  // Under an output profile the slate is conformed like an item.
  if (profile !== null) {
    checkConformable([vod], 'the slate');
    return { slateVodResourceId: id };
  }
  const playable = vod.preparedPath !== null || vod.copyable;
  if (!playable || (vod.preparedPath === null && vod.videoCodec !== 'h264')) throw badInput('slateVodResourceId', 'the slate needs H.264 video');
  if (playlist !== null) checkCompatible([...(await repo.getVods(playlist.slice(0, 1))), vod], 'the slate');
  return { slateVodResourceId: id };
}

function wholeIn(field: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw badInput(field, `must be a whole number from ${min} to ${max}`);
  return v;
}

type TapFields = Partial<Pick<ChannelFields, 'recordingEnabled' | 'recordingSegmentSeconds' | 'recordingRetainHours' | 'snapshotEnabled' | 'snapshotIntervalSeconds'>>;

/** Recording and snapshot settings; only the fields given are returned. */
function checkTap(input: UpdateInput): TapFields {
  const out: TapFields = {};
  const r = input.recording;
  if (r != null) {
    if (r.enabled != null) out.recordingEnabled = r.enabled;
    if (r.segmentSeconds != null) out.recordingSegmentSeconds = wholeIn('recording.segmentSeconds', r.segmentSeconds, limits.segmentSecondsMin, limits.segmentSecondsMax);
    if (r.retainHours != null) {
      if (!Number.isFinite(r.retainHours) || r.retainHours < limits.retainHoursMin || r.retainHours > limits.retainHoursMax) {
        throw badInput('recording.retainHours', `must be from ${limits.retainHoursMin} to ${limits.retainHoursMax}`);
      }
      out.recordingRetainHours = r.retainHours;
    }
  }
  const s = input.snapshot;
  if (s != null) {
    if (s.enabled != null) out.snapshotEnabled = s.enabled;
    if (s.intervalSeconds != null) out.snapshotIntervalSeconds = wholeIn('snapshot.intervalSeconds', s.intervalSeconds, limits.snapshotIntervalMin, limits.snapshotIntervalMax);
  }
  return out;
}

function checkTargets(targets: string[]): string[] {
  if (targets.length > limits.pushTargetsMax) throw badInput('pushTargets', `at most ${limits.pushTargetsMax} targets`);
  for (const t of targets) parsePushTarget(t);
  return targets;
}

function checkTimeout(ms: number): number {
  if (!Number.isInteger(ms) || ms < limits.connectTimeoutMsMin || ms > limits.connectTimeoutMsMax) {
    throw badInput('connectTimeoutMs', `must be a whole number from ${limits.connectTimeoutMsMin} to ${limits.connectTimeoutMsMax}`);
  }
  return ms;
}

/**
 * Items that will share one publish session: without a profile they must
 * match each other (INCOMPATIBLE_MEDIA); with one, any file with video and
 * audio will do, since those that differ are conformed.
 */
export function checkSession(items: readonly MediaShape[], profile: OutputProfile | null, context?: string): void {
  if (profile === null) checkCompatible(items, context);
  else checkConformable(items, context);
}

/** The output profile an input gives: undefined when absent, null when it removes it. */
function givenProfile(input: UpdateInput): OutputProfile | null | undefined {
  if (input.outputProfile === undefined) return undefined;
  return input.outputProfile === null ? null : checkOutputProfile(input.outputProfile);
}

/**
 * The VOD items an input names (vodResourceId or playlist, not both), checked
 * to exist and to fit one publish session. Null when the input names none.
 */
async function checkItems(repo: ChannelRepository, input: UpdateInput, profile: OutputProfile | null, loop: boolean): Promise<{ ids: string[]; live: LiveItemFields[]; breaks: StoredBreak[][] } | null> {
  if (input.vodResourceId != null && input.playlist != null) throw badInput('playlist', 'give either vodResourceId or playlist, not both');
  if (input.items != null && (input.vodResourceId != null || input.playlist != null)) throw badInput('items', 'give either items, playlist or vodResourceId');
  let ids: string[];
  let live: LiveItemFields[] = [];
  let vodBreaks: AdBreakInput[][] = [];
  if (input.items != null) {
    ({ vodIds: ids, live, vodBreaks } = splitItems(input.items, loop, limits.playlistMax));
    ids = ids.map((id) => checkId('items', id));
  } else if (input.playlist != null) {
    if (input.playlist.length === 0) throw badInput('playlist', 'must name at least one VOD resource');
    if (input.playlist.length > limits.playlistMax) throw badInput('playlist', `at most ${limits.playlistMax} items`);
    ids = input.playlist.map((id) => checkId('playlist', id));
  } else if (input.vodResourceId != null) {
    ids = [checkId('vodResourceId', input.vodResourceId)];
  } else {
    return null;
  }
  const found = await repo.getVods(ids);
  const missing = ids.find((id) => !found.some((v) => v.id === id));
  if (missing !== undefined) throw notFound('VOD resource', missing);
  checkSession(found, profile);
  const positions = vodPositions(ids.length, live.map((l) => l.position));
  const breaks = ids.map((id, i) => {
    const vod = found.find((v) => v.id === id);
    const given = vodBreaks[i] ?? [];
    return vod === undefined || given.length === 0 ? [] : checkBreaks(given, `item ${positions[i] ?? i}`, shortestTrackSeconds(vod));
  });
  return { ids, live, breaks };
}

export async function validateCreate(input: CreateInput, repo: ChannelRepository): Promise<ChannelFields> {
  const name = checkName(input.name);
  const pushTargets = checkTargets(input.pushTargets ?? []);
  const connectTimeoutMs = checkTimeout(input.connectTimeoutMs ?? 10_000);
  const loop = input.loop ?? true;
  if (input.sourceType === 'VOD') {
    if (input.sourceUrl != null) throw badInput('sourceUrl', 'must be empty for a VOD channel');
    if (input.backupUrl != null) throw badInput('backupUrl', 'only an ONLINE channel has a backup URL');
    const profile = givenProfile(input) ?? null;
    const items = await checkItems(repo, input, profile, loop);
    if (items === null) throw badInput('vodResourceId', 'is required for a VOD channel (or a playlist)');
    const playlist = items.ids;
    const slate = await checkSlate(repo, input, playlist, profile);
    const outputProfile = profile === null ? null : profileKey(profile);
    return { name, sourceType: 'VOD', vodResourceId: playlist[0] ?? null, sourceUrl: null, loop, connectTimeoutMs, pushTargets, playlist, liveItems: items.live, breaks: items.breaks, ...checkTap(input), ...checkLive(input), ...slate, ...checkOnDemand(input), ...checkHls(input), outputProfile };
  }
  if (input.sourceType === 'ONLINE') {
    if (input.vodResourceId != null) throw badInput('vodResourceId', 'must be empty for an ONLINE channel');
    if (input.playlist != null) throw badInput('playlist', 'must be empty for an ONLINE channel');
    if (input.items != null) throw badInput('items', 'must be empty for an ONLINE channel');
    if (input.sourceUrl == null) throw badInput('sourceUrl', 'is required for an ONLINE channel');
    if (input.outputProfile != null) throw badInput('outputProfile', 'only a VOD channel has an output profile');
    parseSourceUrl(input.sourceUrl);
    const slate = await checkSlate(repo, input, null);
    return { name, sourceType: 'ONLINE', vodResourceId: null, sourceUrl: input.sourceUrl, loop, connectTimeoutMs, pushTargets, playlist: [], ...checkTap(input), ...checkLive(input), ...slate, ...checkOnDemand(input), ...checkHls(input) };
  }
  throw badInput('sourceType', 'must be VOD or ONLINE');
}

export async function validateUpdate(rec: ChannelRecord, input: UpdateInput, repo: ChannelRepository): Promise<Partial<ChannelFields>> {
  const out: Partial<ChannelFields> = { ...checkTap(input), ...checkLive(input), ...checkOnDemand(input), ...checkHls(input) };
  if (input.name != null) out.name = checkName(input.name);
  if (input.loop != null) out.loop = input.loop;
  if (input.pushTargets != null) out.pushTargets = checkTargets(input.pushTargets);
  if (input.connectTimeoutMs != null) out.connectTimeoutMs = checkTimeout(input.connectTimeoutMs);
  const given = givenProfile(input);
  const saved = parseProfileKey(rec.outputProfile);
  const profile = given === undefined ? saved : given;
  if (given !== undefined) {
    if (rec.sourceType !== 'VOD') throw badInput('outputProfile', 'only a VOD channel has an output profile');
    const key = given === null ? null : profileKey(given);
    if (key !== rec.outputProfile && isActive(rec.status)) {
      // Its session carries the old shape: items of the new one could not follow.
      throw new VliveError('INVALID_STATE', `virtual live ${rec.id} is ${rec.status}; stop it before changing its output profile`);
    }
    out.outputProfile = key;
  }
  if (input.vodResourceId != null || input.playlist != null || input.items != null) {
    if (rec.sourceType !== 'VOD') throw badInput(input.items != null ? 'items' : input.playlist != null ? 'playlist' : 'vodResourceId', 'only a VOD channel has VOD resources');
    const items = await checkItems(repo, input, profile, out.loop ?? rec.loop);
    if (items !== null) {
      const playlist = items.ids;
      // The worker's timeline follows an edit at its next boundary; a live
      // item's pre-roll and return are planned when the channel starts.
      if (isActive(rec.status) && (items.live.length > 0 || rec.liveItems.length > 0)) {
        throw new VliveError('INVALID_STATE', `virtual live ${rec.id} is running: stop it to change a playlist with live items`);
      }
      // A running channel switches at its next item boundary, inside the
      // publish session it has: the new items must fit what is on the wire
      // (under a profile, they must be conformed: the service checks that).
      if (isActive(rec.status) && profile === null) {
        checkCompatible([...playlistOf(rec).slice(0, 1), ...(await repo.getVods(playlist))], 'the running channel');
      }
      out.playlist = playlist;
      out.liveItems = items.live;
      out.breaks = items.breaks;
      out.vodResourceId = playlist[0] ?? null;
    }
  } else if (given !== undefined && rec.sourceType === 'VOD') {
    // The saved items must fit the new rule: each other without a profile, or have both tracks with one.
    checkSession(playlistOf(rec), profile);
  }
  if (rec.sourceType !== 'ONLINE' && input.backupUrl != null) throw badInput('backupUrl', 'only an ONLINE channel has a backup URL');

  if (input.sourceUrl != null) {
    if (rec.sourceType !== 'ONLINE') throw badInput('sourceUrl', 'only an ONLINE channel has a source URL');
    parseSourceUrl(input.sourceUrl);
    out.sourceUrl = input.sourceUrl;
  }
  // A playlist's slate must fit its items (the new ones when they change too).
  const items = rec.sourceType === 'VOD' ? (out.playlist ?? playlistOf(rec).map((v) => v.id)) : null;
  Object.assign(out, await checkSlate(repo, input, items, rec.sourceType === 'VOD' ? profile : null));
  return out;
}
