/**
 * What a step needs from either side of the comparison. Each side owns its
 * processes and its origin for one step, from open to tearDown, so every
 * step starts from a fresh, identical machine state.
 */
import type { Disposers } from '../children.js';
import type { OriginWatch } from '../origin-watch.js';
import type { Kind, SideName } from '../options.js';

export interface StartOutcome {
  readonly ok: boolean;
  /** vlive: mutation sent → LIVING returned; ffmpeg: spawn → origin reports the publisher. */
  readonly latencyMs: number;
  /** performance.now() where latencyMs begins (vlive: the try the API accepted). */
  readonly startedAtMs: number;
  readonly error?: string;
}

export interface SideRun {
  readonly side: SideName;
  readonly kind: Kind;
  /** Whether the origin writes HLS. */
  readonly hls: boolean;
  /** The origin's HTTP port (/stat) and RTMP port, for the watch and the receivers. */
  readonly hlsPort: number;
  readonly rtmpPort: number;
  /** Stream names at the origin, one per channel, in start order. */
  readonly streams: readonly string[];
  /** Starts channel `index`; never rejects. */
  start(index: number, watch: OriginWatch): Promise<StartOutcome>;
  /** The processes charged to the side: the service and its workers, or the ffmpeg processes. */
  chargedPids(): Promise<{ role: string; pid: number }[]>;
  /** The origin's nginx, reported apart. */
  originPid(): Promise<number | null>;
  /** The relay steps' upstream ffmpeg (charged to neither side); null in VOD steps. */
  upstreamPid(): number | null;
  /** Where a player gets the relay steps' upstream stream; null in VOD steps. */
  readonly upstreamUrl: string | null;
  /** Channels the side itself reports as running. */
  running(): Promise<number>;
  tearDown(): Promise<void>;
}

export interface SideContext {
  /** The clip to loop, and the scratch dir of this step. */
  readonly clipPath: string;
  readonly dir: string;
  readonly kind: Kind;
  readonly channels: number;
  /** Start the side's origin with HLS on (the default) or off. */
  readonly hls: boolean;
  readonly startTimeoutMs: number;
  /** A log file for the children's stderr. */
  readonly logPath: string;
  /**
   * Where the side registers its tear-down the moment it has something to
   * tear down, so Ctrl-C during set-up stops it too; `SideRun.tearDown` runs
   * that same registered step.
   */
  readonly disposers: Disposers;
}
