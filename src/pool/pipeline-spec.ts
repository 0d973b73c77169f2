/**
 * What a channel's pipeline is, as the supervisor asks for it and the
 * worker runs it: the spec (sources, targets, tap), the states a pipeline
 * reports, its numbers and its events, with the validators that check them
 * at the IPC boundary (src/pool/ipc.ts). The channel layer builds specs
 * (src/channels/spec.ts), the pool carries them, the worker executes them.
 *
 * Imports only media/urls.ts (the live protocols); everything above the
 * pool may import this, and the worker process shares it with the
 * supervisor.
 */
import { liveProtocols, type LiveProtocol } from '../media/urls.js';

export type { LiveProtocol };

/** One playlist item: a registered VOD resource. */
export interface VodItem {
  /** The VOD resource id. */
  id: string;
  /** Absolute path inside the media root, MP4/MOV with H.264 and/or AAC/MP3; '' when missing. */
  path: string;
  /** The file is gone: the channel's slate plays in its place (PipelineSpec.slate). */
  missing?: boolean;
  /** Ad breaks declared in the item, by offset (item time); each gets an onCuePoint (worker/cue-points.ts). */
  breaks?: AdBreak[];
}

/**
 * An ad break of an item: a point in item time where the worker sends an
 * onCuePoint, and how long the break is meant to last (the playout does not
 * stop: a downstream splicer puts its ad there). Any kind of item may carry
 * them; the worker only needs the item's own timeline.
 */
export interface AdBreak {
  id: string;
  /** From the item's first frame, ms. */
  offsetMs: number;
  durationMs: number;
}

function isAdBreak(v: unknown): v is AdBreak {
  return isRecord(v) && typeof v['id'] === 'string' && isTimeMs(v['offsetMs']) && isTimeMs(v['durationMs']);
}

const isTimeMs = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** What a pipeline reads. Paths and URLs arrive already validated and confined. */
export type SourceSpec =
  | {
      kind: 'vod';
      /** The playlist, in order; one item for a plain VOD channel. */
      items: VodItem[];
      /** Wrap round at the end of the list. */
      loop: boolean;
      /**
       * Live items among `items` (issue #21 item 3), at their positions in
       * the whole list; the VOD items fill the other positions in order.
       */
      live?: LiveItemSpec[];
    }
  | ({ kind: 'live' } & LiveSource);

/**
 * A channel's wall-clock programme (issue #22 item 1) as its worker plays it,
 * sent with the channel's list ('playlist' in ipc.ts) once it is LIVING: the
 * entries' occurrences around now (the service sends a fresh window before
 * this one runs out). Items are VOD resource ids of the channel's list; times
 * are wall-clock ms since the epoch.
 */
export interface ProgrammeSpec {
  /** Played in turn, round and round, wherever no entry's content plays. */
  filler: string[];
  /** In time order; each ends at the next one's start. */
  slots: ProgrammeSlot[];
}

export interface ProgrammeSlot {
  startMs: number;
  /** The content plays until this at the latest (its duration, or the next slot's start); the filler after it. */
  endMs: number;
  /** VOD resource ids; empty for a live-source slot. */
  items: string[];
  /** Ad breaks of its first item, by offset from the slot's start (a single-file entry's); each gets an onCuePoint. */
  breaks?: AdBreak[];
  /** A live-source entry (no items): `id` names it to the playout, the cues and the played log (its stored entry's id). */
  live?: { id: string; source: LiveSource };
}

const isIds = (v: unknown): v is string[] => Array.isArray(v) && v.length > 0 && v.every((i) => typeof i === 'string');
const isMs = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

const isLiveSlot = (v: unknown): boolean => isRecord(v) && typeof v['id'] === 'string' && isLiveSource(v['source']);

export function isProgrammeSpec(v: unknown): v is ProgrammeSpec {
  return (
    isRecord(v) &&
    isIds(v['filler']) &&
    Array.isArray(v['slots']) &&
    v['slots'].every(
      (s) =>
        isRecord(s) &&
        isMs(s['startMs']) &&
        isMs(s['endMs']) &&
        s['endMs'] >= s['startMs'] &&
        ((isIds(s['items']) && s['live'] === undefined) || (Array.isArray(s['items']) && s['items'].length === 0 && isLiveSlot(s['live']))) &&
        (s['breaks'] === undefined || (Array.isArray(s['breaks']) && s['breaks'].every(isAdBreak))),
    )
  );
}

/** A live item of a playlist: an online source played for `durationMs` at position `index` of the whole list. */
export interface LiveItemSpec {
  /** The item's id (its stored row), reported as nowPlaying's item id. */
  id: string;
  index: number;
  source: LiveSource;
  durationMs: number;
}

/**
 * The positions in the whole list of `vodCount` VOD items, given the live
 * items' positions: the VOD items fill the free ones in order. One rule for
 * the channels (storage, the API's list) and the worker (its timeline's
 * positions), so that both number a list alike.
 */
export function vodPositions(vodCount: number, livePositions: readonly number[]): number[] {
  const taken = new Set(livePositions);
  const out: number[] = [];
  for (let p = 0; out.length < vodCount; p++) if (!taken.has(p)) out.push(p);
  return out;
}

/** Which of a channel's live sources: its URL, or the backup URL it fails over to. */
export type SourceLabel = 'primary' | 'backup';

/** One live URL and how to pull it. */
export interface LiveSource {
  label: SourceLabel;
  protocol: LiveProtocol;
  url: string;
  connectTimeoutMs: number;
  /** RTSP only: RTP interleaved over the RTSP connection, or over UDP. */
  rtspTransport: 'tcp' | 'udp';
  /** Copy (never), decode and encode to H.264 + AAC (always), or copy and transcode when the codecs need it (auto). */
  transcode: 'auto' | 'never' | 'always';
}

/**
 * What a relaying channel's live source did, after the channel first played
 * (before that, a failed source fails the pipeline). The output keeps its
 * publish session through all of these.
 * - up: the source's media reaches the output (after a reconnect or a switch).
 * - down: the active source failed or stalled; the output waits for the next one.
 * - candidate-failed: a source tried beside the active one (switch-back to
 *   the primary) failed; the active one plays on.
 */
export type SourceEvent =
  | { kind: 'up'; label: SourceLabel }
  /** `slate`: the fallback slate now fills the output. */
  | { kind: 'down'; label: SourceLabel; error: string; slate: boolean }
  | { kind: 'candidate-failed'; label: SourceLabel; error: string };

/**
 * Recording and snapshots of a channel: its output read back from the
 * origin by a second pipeline, started once the channel plays.
 */
export interface TapSpec {
  /** The channel's stream at the origin, rtmp://. */
  url: string;
  hasVideo: boolean;
  hasAudio: boolean;
  /** Segments go to `<dir>/<tap start ms>/seg-NNNNN.mp4`. */
  recording: { dir: string; segmentSeconds: number } | null;
  /** The latest JPEG replaces `file`. */
  snapshot: { file: string; intervalSeconds: number } | null;
}

/** Everything a worker needs to run one channel's pull/push pipeline. */
export interface PipelineSpec {
  channelId: string;
  source: SourceSpec;
  /** rtmp:// or rtmps:// URLs. Index 0 is the origin. */
  targets: string[];
  /** Recording and snapshots, when the channel has either on. */
  tap?: TapSpec;
  /** The fallback slate: a relay publishes it, looped, while its source is away; a playlist plays it in place of a missing item. */
  slate?: VodItem;
}

/** What a channel's tap reports. */
export type TapEvent =
  | { kind: 'segment'; path: string; startedAtMs: number; durationSeconds: number; sizeBytes: number }
  | { kind: 'snapshot'; takenAtMs: number }
  /**
   * A recording or snapshot fault, or a playlist's live item whose source is
   * not on air (the slate fills its time); null message: it is over. The
   * live output is not affected.
   */
  | { kind: 'warning'; part: 'recording' | 'snapshot' | 'live-item'; message: string | null };

/**
 * Observed state of one pipeline inside a worker.
 * - starting: built and started; media has not reached target 0 yet.
 * - playing: bytes flow to target 0 and the position advances.
 * - error: failed, with a person-readable reason; GStreamer resources are already freed.
 *   A live source that fails before the channel first played is an error too;
 *   after that, its failures are SourceEvents and the pipeline plays on.
 * - eos: a non-looping file played to its end; resources freed.
 * - stopped: stopped on request; files, sockets and its bus thread are released.
 */
export type PipelineState = 'starting' | 'playing' | 'error' | 'eos' | 'stopped';

/** The states after which a pipeline is gone from its worker and its slot is free: the one terminal test. */
export function isTerminal(state: PipelineState): state is 'error' | 'eos' | 'stopped' {
  return state === 'error' || state === 'eos' || state === 'stopped';
}

/** Bytes, bitrate and errors of one push target; index 0 is the origin. */
export interface TargetStats {
  index: number;
  /** Every byte handed to the target's socket, RTMP framing included. */
  bytesSent: number;
  /** Failures of this target's sessions (refused, closed, not keeping up). */
  errors: number;
  /** Bits per second handed to the target over the last 5 s (src/worker/bitrate-window.ts); 0 while nothing flows. */
  bitrateBps: number;
  /** The last of them, URLs masked. */
  lastError?: string;
  /** Targets 1..: up (bytes flow), connecting, or retrying after a failure. */
  state?: 'connecting' | 'up' | 'retrying';
}

/**
 * One pipeline's numbers, measured inside the worker from the pipeline's own
 * timing (sink position against the wall clock), without decoding. Counters
 * start at 0 with each pipeline; the pool adds them up across restarts (see
 * WorkerPool.channelCounters).
 */
export interface PipelineStats {
  channelId: string;
  state: PipelineState;
  /** Stream position in seconds, -1 while unknown. Rises across loops. */
  positionSeconds: number;
  /** Output running time behind wall time since the pipeline started playing, seconds, >= 0. */
  outputLagSeconds: number;
  /** Cumulative seconds during which the channel stuttered: output behind real time by more than two frame durations, or no media delivered for longer than that. */
  stutterSeconds: number;
  /** Times the stall watchdog fired for this pipeline. */
  stallEvents: number;
  /** Loop (or playlist item) boundaries crossed so far. */
  loopBoundaries: number;
  /** Gap measured at each boundary crossed since the previous heartbeat, seconds (for a histogram). */
  boundaryGapsSeconds: number[];
  /** Video frames (audio frames for audio-only media) the sink has sent; null before the worker knows. */
  framesOut: number | null;
  /** Per push target (index 0 = origin): bytes sent and errors seen. */
  targets: TargetStats[];
}

// The validators ipc.ts's parsers use at the boundary; each checks one shape above.

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const pipelineStates: ReadonlySet<string> = new Set<PipelineState>([
  'starting',
  'playing',
  'error',
  'eos',
  'stopped',
]);

export function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

export function isPipelineState(v: unknown): v is PipelineState {
  return typeof v === 'string' && pipelineStates.has(v);
}

function isSourceSpec(v: unknown): v is SourceSpec {
  if (!isRecord(v)) return false;
  if (v['kind'] === 'vod') {
    return isVodItems(v['items']) && typeof v['loop'] === 'boolean' && (v['live'] === undefined || (Array.isArray(v['live']) && v['live'].every(isLiveItem)));
  }
  if (v['kind'] === 'live') return isLiveSource(v);
  return false;
}

function isLabel(v: unknown): v is SourceLabel {
  return v === 'primary' || v === 'backup';
}

export function isLiveSource(v: unknown): v is LiveSource {
  return (
    isRecord(v) &&
    isLabel(v['label']) &&
    typeof v['protocol'] === 'string' &&
      liveProtocols.has(v['protocol']) &&
      typeof v['url'] === 'string' &&
      typeof v['connectTimeoutMs'] === 'number' &&
    (v['rtspTransport'] === 'tcp' || v['rtspTransport'] === 'udp') &&
    (v['transcode'] === 'auto' || v['transcode'] === 'never' || v['transcode'] === 'always')
  );
}

export function isSourceEvent(v: unknown): v is SourceEvent {
  if (!isRecord(v) || !isLabel(v['label'])) return false;
  if (v['kind'] === 'up') return true;
  if (v['kind'] === 'down') return typeof v['error'] === 'string' && typeof v['slate'] === 'boolean';
  return v['kind'] === 'candidate-failed' && typeof v['error'] === 'string';
}

function isLiveItem(v: unknown): v is LiveItemSpec {
  const n = (x: unknown): boolean => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  return isRecord(v) && typeof v['id'] === 'string' && n(v['index']) && n(v['durationMs']) && isLiveSource(v['source']);
}

export function isVodItems(v: unknown): v is VodItem[] {
  return (
    Array.isArray(v) &&
    v.length > 0 &&
    v.every(
      (i) =>
        isRecord(i) &&
        typeof i['id'] === 'string' &&
        typeof i['path'] === 'string' &&
        (i['missing'] === undefined || typeof i['missing'] === 'boolean') &&
        (i['breaks'] === undefined || (Array.isArray(i['breaks']) && i['breaks'].every(isAdBreak))),
    )
  );
}

function isTapSpec(v: unknown): v is TapSpec {
  if (!isRecord(v)) return false;
  const rec = v['recording'];
  const snap = v['snapshot'];
  return (
    typeof v['url'] === 'string' &&
    typeof v['hasVideo'] === 'boolean' &&
    typeof v['hasAudio'] === 'boolean' &&
    (rec === null || (isRecord(rec) && typeof rec['dir'] === 'string' && isPositiveInt(rec['segmentSeconds']))) &&
    (snap === null || (isRecord(snap) && typeof snap['file'] === 'string' && isPositiveInt(snap['intervalSeconds'])))
  );
}

export function isTapEvent(v: unknown): v is TapEvent {
  if (!isRecord(v)) return false;
  switch (v['kind']) {
    case 'segment':
      return typeof v['path'] === 'string' && isCount(v['startedAtMs']) && isSeconds(v['durationSeconds']) && isCount(v['sizeBytes']);
    case 'snapshot':
      return isCount(v['takenAtMs']);
    case 'warning':
      return (v['part'] === 'recording' || v['part'] === 'snapshot' || v['part'] === 'live-item') && (v['message'] === null || typeof v['message'] === 'string');
    default:
      return false;
  }
}

export function isPipelineSpec(v: unknown): v is PipelineSpec {
  return (
    isRecord(v) &&
    typeof v['channelId'] === 'string' &&
    isSourceSpec(v['source']) &&
    (v['tap'] === undefined || isTapSpec(v['tap'])) &&
    (v['slate'] === undefined || isVodItems([v['slate']])) &&
    Array.isArray(v['targets']) &&
    v['targets'].length > 0 &&
    v['targets'].every((t) => typeof t === 'string')
  );
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isSeconds = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

function isTargetStats(v: unknown): v is TargetStats {
  return isRecord(v) && isCount(v['index']) && isCount(v['bytesSent']) && isCount(v['errors']) && isCount(v['bitrateBps']);
}

export function isPipelineStats(v: unknown): v is PipelineStats {
  return (
    isRecord(v) &&
    typeof v['channelId'] === 'string' &&
    isPipelineState(v['state']) &&
    typeof v['positionSeconds'] === 'number' &&
    Number.isFinite(v['positionSeconds']) &&
    isSeconds(v['outputLagSeconds']) &&
    isSeconds(v['stutterSeconds']) &&
    isCount(v['stallEvents']) &&
    isCount(v['loopBoundaries']) &&
    (v['framesOut'] === null || isCount(v['framesOut'])) &&
    Array.isArray(v['boundaryGapsSeconds']) &&
    v['boundaryGapsSeconds'].every(isSeconds) &&
    Array.isArray(v['targets']) &&
    v['targets'].every(isTargetStats)
  );
}
