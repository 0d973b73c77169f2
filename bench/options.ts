/**
 * The benchmark's settings: defaults, then the environment. Read once,
 * validated (messages name the variable), then frozen.
 */
import { resolve } from 'node:path';
import { repoPath, repoRoot } from '../src/paths.js';

export type SideName = 'vlive' | 'ffmpeg';

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
  /** Channel counts, ascending (BENCH_STEPS). Default 10,50,100,200,400. */
  readonly steps: readonly number[];
  /** Sides to run, in this order at each step (BENCH_SIDES). Default vlive,ffmpeg. */
  readonly sides: readonly SideName[];
  /** Steady window over which CPU is counted and receivers listen, seconds (BENCH_WINDOW_SECONDS). Default 30. */
  readonly windowSeconds: number;
  /** Pause between the last start and the window, so start-up cost stays out of it, seconds (BENCH_SETTLE_SECONDS). Default 10. */
  readonly settleSeconds: number;
  /** Channels sampled by independent receivers per step (BENCH_RECEIVERS). Default 5. */
  readonly receivers: number;
  /** Starts in flight at once, both sides alike (BENCH_START_CONCURRENCY). Default 10. */
  readonly startConcurrency: number;
  /**
   * At most this many starts in any 10 s, both sides alike
   * (BENCH_STARTS_PER_10S). Default 50, under vlive's API limit of 120
   * starts and stops per 10 s per token; the baseline is paced the same so
   * that both sides start under the same load.
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

function steps(env: NodeJS.ProcessEnv): number[] {
  const raw = env['BENCH_STEPS'] ?? '10,50,100,200,400';
  const list = raw.split(',').map((s) => s.trim());
  if (list.some((s) => !/^\d+$/.test(s) || Number(s) < 1)) {
    throw new BenchOptionError(`BENCH_STEPS must be a comma-separated list of channel counts >= 1, got ${JSON.stringify(raw)}`);
  }
  return [...new Set(list.map(Number))].sort((a, b) => a - b);
}

function sides(env: NodeJS.ProcessEnv): SideName[] {
  const raw = env['BENCH_SIDES'] ?? 'vlive,ffmpeg';
  const list = raw.split(',').map((s) => s.trim());
  for (const s of list) {
    if (s !== 'vlive' && s !== 'ffmpeg') throw new BenchOptionError(`BENCH_SIDES takes vlive and/or ffmpeg, got ${JSON.stringify(s)}`);
  }
  return [...new Set(list as SideName[])];
}

export function loadOptions(env: NodeJS.ProcessEnv = process.env): Readonly<BenchOptions> {
  const workers = int(env, 'BENCH_VLIVE_WORKERS', 0, 0);
  return Object.freeze({
    steps: Object.freeze(steps(env)),
    sides: Object.freeze(sides(env)),
    windowSeconds: int(env, 'BENCH_WINDOW_SECONDS', 30, 5),
    settleSeconds: int(env, 'BENCH_SETTLE_SECONDS', 10, 0),
    receivers: int(env, 'BENCH_RECEIVERS', 5, 1),
    startConcurrency: int(env, 'BENCH_START_CONCURRENCY', 10, 1),
    startsPer10s: int(env, 'BENCH_STARTS_PER_10S', 50, 1),
    startTimeoutMs: int(env, 'BENCH_START_TIMEOUT_MS', 30_000, 1000),
    statIntervalMs: int(env, 'BENCH_STAT_INTERVAL_MS', 50, 20),
    vliveWorkers: workers === 0 ? null : workers,
    stopStutterShare: int(env, 'BENCH_STOP_STUTTER_PERMILLE', 5, 0) / 1000,
    minFreeMemoryBytes: 1024 ** 3,
    seed: int(env, 'BENCH_SEED', Date.now() % 2 ** 31, 0),
    workDir: env['BENCH_WORK_DIR'] ?? repoPath('bench', 'work'),
    resultsDir: env['BENCH_RESULTS_DIR'] ?? repoPath('bench', 'results'),
    vliveDir: resolve(env['BENCH_VLIVE_DIR'] ?? repoRoot),
    keepWork: env['BENCH_KEEP_WORK'] === '1',
    clip: Object.freeze({ seconds: 10, width: 1280, height: 720, fps: 25, videoKbps: 2000, audioKbps: 128 }),
  });
}
