/**
 * The benchmark's settings: defaults, then the environment. Read once,
 * validated (messages name the variable), then frozen.
 */
import { resolve } from 'node:path';
import { repoPath, repoRoot } from '../src/paths.js';

export type SideName = 'vlive' | 'ffmpeg';

/**
 * What the channels do: `vod` loops the clip from a file; `relay` republishes
 * a live RTMP stream that one ffmpeg publishes to the side's origin from the
 * clip (the upstream).
 */
export type Kind = 'vod' | 'relay';

/** BENCH_HLS: the origin with HLS, without, or each step both ways. */
export type HlsSetting = 'on' | 'off' | 'both';

export interface ClipSpec {
  /** Length of the looped file, seconds. Default 10. */
  readonly seconds: number;
  readonly width: number;
  readonly height: number;
  /** Frames per second; the GOP is one second. Default 25. */
  readonly fps: number;
  /** Video bit rate, kbit/s. Default 2000. */
  readonly videoKbps: number;
  /** Audio bit rate, kbit/s (AAC, 48 kHz stereo). Default 128. */
  readonly audioKbps: number;
}

export interface BenchOptions {
  /** Kinds of channel to measure, in this order (BENCH_KINDS). Default vod,relay. */
  readonly kinds: readonly Kind[];
  /** VOD channel counts, ascending (BENCH_STEPS). Default 10,50,100,200,400. */
  readonly steps: readonly number[];
  /** Relay channel counts, ascending (BENCH_RELAY_STEPS). Default 10,50,100,200. */
  readonly relaySteps: readonly number[];
  /**
   * Measurements of each side at each step, each from a fresh start
   * (BENCH_RUNS). Default 3: the report gives their median and spread, since
   * one figure on a shared 2-core machine can be off by a lot.
   */
  readonly runs: number;
  /**
   * The origin's HLS (BENCH_HLS=on|off|both). Unset: on, and at one VOD step
   * (hlsBothAtVodStep) off as well, so the report shows what HLS costs the
   * origin without doubling the run.
   */
  readonly hls: HlsSetting;
  /** The VOD step also measured with HLS off when BENCH_HLS is unset: the middle one of the steps; null otherwise. */
  readonly hlsBothAtVodStep: number | null;
  /** Sides to run, in this order at each step (BENCH_SIDES). Default vlive,ffmpeg. */
  readonly sides: readonly SideName[];
  /** Steady window over which CPU is counted and receivers listen, seconds (BENCH_WINDOW_SECONDS). Default 30. */
  readonly windowSeconds: number;
  /** Pause between the last start and the window, so start-up cost stays out of it, seconds (BENCH_SETTLE_SECONDS). Default 10. */
  readonly settleSeconds: number;
  /** Channels sampled by independent receivers per step (BENCH_RECEIVERS). Default 10. */
  readonly receivers: number;
  /** Starts in flight at once, both sides alike (BENCH_START_CONCURRENCY). Default 10. */
  readonly startConcurrency: number;
  /**
   * At most this many starts in any 10 s, both sides alike
   * (BENCH_STARTS_PER_10S). Default 50, under vlive's API limit of starts
   * and stops per token (apiLimits.startStopPerWindow in src/api/limits.ts);
   * the baseline is paced the same so that both sides start under the same load.
   */
  readonly startsPer10s: number;
  /** One start may take this long before it counts as failed, ms (BENCH_START_TIMEOUT_MS). Default 30000. */
  readonly startTimeoutMs: number;
  /** How often the origin's /stat is read while channels start, ms (BENCH_STAT_INTERVAL_MS). Default 50, the service's own poll. */
  readonly statIntervalMs: number;
  /** Workers in vlive's pool (BENCH_VLIVE_WORKERS). Default: the service's own default (CPU cores). */
  readonly vliveWorkers: number | null;
  /**
   * A side stops stepping up once its receivers saw stutter for more than
   * this share of their listening time (BENCH_STOP_STUTTER_PERMILLE, in ‰).
   * Default 5 ‰. Not zero: ffmpeg's -stream_loop is some 10-20 ms late at
   * every loop boundary even when idle, which is not the load this steps up.
   */
  readonly stopStutterShare: number;
  /**
   * Before each measurement, wait at most this long for other work on the
   * machine to calm down (BENCH_QUIET_WAIT_SECONDS). Default 90; the smoke
   * test sets 0, as it measures nothing.
   */
  readonly quietWaitSeconds: number;
  /** Do not start a step when less memory than this would be left, bytes. Default 1 GiB. */
  readonly minFreeMemoryBytes: number;
  /** Seed of the receivers' channel sampling (BENCH_SEED). Default: from the clock. */
  readonly seed: number;
  /** Scratch space for media, databases and logs (BENCH_WORK_DIR). Default bench/work. */
  readonly workDir: string;
  /**
   * The vlive tree whose built service (`dist/src/main.js`) is measured
   * (BENCH_VLIVE_DIR), e.g. a frozen copy while others keep editing this one.
   * Default: this repository.
   */
  readonly vliveDir: string;
  /** Where reports go (BENCH_RESULTS_DIR). Default bench/results. */
  readonly resultsDir: string;
  /** Keep the scratch dir after the run, for its logs (BENCH_KEEP_WORK=1). Default false. */
  readonly keepWork: boolean;
  readonly clip: ClipSpec;
}

export class BenchOptionError extends Error {}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min) throw new BenchOptionError(`${name} must be a whole number >= ${min}, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

function counts(env: NodeJS.ProcessEnv, name: string, fallback: string): number[] {
  const raw = env[name] ?? fallback;
  const list = raw.split(',').map((s) => s.trim());
  if (list.some((s) => !/^\d+$/.test(s) || Number(s) < 1)) {
    throw new BenchOptionError(`${name} must be a comma-separated list of channel counts >= 1, got ${JSON.stringify(raw)}`);
  }
  return [...new Set(list.map(Number))].sort((a, b) => a - b);
}

/** A comma-separated subset of `allowed`, in the order given, without repeats. */
function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[], fallback: string): T[] {
  const raw = env[name] ?? fallback;
  const list = raw.split(',').map((s) => s.trim());
  for (const s of list) {
    if (!(allowed as readonly string[]).includes(s)) throw new BenchOptionError(`${name} takes ${allowed.join(', ')}, got ${JSON.stringify(s)}`);
  }
  return [...new Set(list as T[])];
}

function hls(env: NodeJS.ProcessEnv): HlsSetting {
  const raw = env['BENCH_HLS'] ?? 'on';
  if (raw !== 'on' && raw !== 'off' && raw !== 'both') throw new BenchOptionError(`BENCH_HLS must be on, off or both, got ${JSON.stringify(raw)}`);
  return raw;
}

/** Whether the origin writes HLS in each measurement of this step: [true], [false] or [true, false]. */
export function hlsVariants(o: Readonly<BenchOptions>, kind: Kind, channels: number): boolean[] {
  if (o.hls === 'off') return [false];
  if (o.hls === 'both' || (kind === 'vod' && channels === o.hlsBothAtVodStep)) return [true, false];
  return [true];
}

export function loadOptions(env: NodeJS.ProcessEnv = process.env): Readonly<BenchOptions> {
  const workers = int(env, 'BENCH_VLIVE_WORKERS', 0, 0);
  const steps = counts(env, 'BENCH_STEPS', '10,50,100,200,400');
  const hlsUnset = env['BENCH_HLS'] === undefined || env['BENCH_HLS'] === '';
  return Object.freeze({
    kinds: Object.freeze(oneOf<Kind>(env, 'BENCH_KINDS', ['vod', 'relay'], 'vod,relay')),
    steps: Object.freeze(steps),
    relaySteps: Object.freeze(counts(env, 'BENCH_RELAY_STEPS', '10,50,100,200')),
    runs: int(env, 'BENCH_RUNS', 3, 1),
    hls: hlsUnset ? 'on' : hls(env),
    hlsBothAtVodStep: hlsUnset ? (steps[Math.floor((steps.length - 1) / 2)] ?? null) : null,
    sides: Object.freeze(oneOf<SideName>(env, 'BENCH_SIDES', ['vlive', 'ffmpeg'], 'vlive,ffmpeg')),
    windowSeconds: int(env, 'BENCH_WINDOW_SECONDS', 30, 2),
    settleSeconds: int(env, 'BENCH_SETTLE_SECONDS', 10, 0),
    receivers: int(env, 'BENCH_RECEIVERS', 10, 1),
    startConcurrency: int(env, 'BENCH_START_CONCURRENCY', 10, 1),
    startsPer10s: int(env, 'BENCH_STARTS_PER_10S', 50, 1),
    startTimeoutMs: int(env, 'BENCH_START_TIMEOUT_MS', 30_000, 1000),
    statIntervalMs: int(env, 'BENCH_STAT_INTERVAL_MS', 50, 20),
    vliveWorkers: workers === 0 ? null : workers,
    stopStutterShare: int(env, 'BENCH_STOP_STUTTER_PERMILLE', 5, 0) / 1000,
    quietWaitSeconds: int(env, 'BENCH_QUIET_WAIT_SECONDS', 90, 0),
    minFreeMemoryBytes: 1024 ** 3,
    seed: int(env, 'BENCH_SEED', Date.now() % 2 ** 31, 0),
    workDir: env['BENCH_WORK_DIR'] ?? repoPath('bench', 'work'),
    resultsDir: env['BENCH_RESULTS_DIR'] ?? repoPath('bench', 'results'),
    vliveDir: resolve(env['BENCH_VLIVE_DIR'] ?? repoRoot),
    keepWork: env['BENCH_KEEP_WORK'] === '1',
    clip: Object.freeze({ seconds: 10, width: 1280, height: 720, fps: 25, videoKbps: 2000, audioKbps: 128 }),
  });
}
