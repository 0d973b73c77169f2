/**
 * Each side is measured several times at each step (BENCH_RUNS), each time
 * from a fresh start; one figure from a shared 2-core machine can be far off.
 * This folds those measurements into one row per step: the median of each
 * figure and its spread (min–max). The summary, the ratios and the plot use
 * the medians.
 */
import { busiestOf, CPU_GROUPS, SATURATED_BUSY_SHARE, type CpuGroup } from './saturation.js';
import { median } from './stats.js';
import type { StepResult } from './step.js';

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** Null when no run gave a value. */
export function spreadOf(values: readonly (number | null)[]): Spread | null {
  const xs = values.filter((v): v is number => v !== null);
  const m = median(xs);
  return m === null ? null : { median: m, min: Math.min(...xs), max: Math.max(...xs) };
}

/** Stutter of one track summed over one run's receivers (the stream's figure takes the worse track of each). */
const trackStutter = (r: StepResult, track: 'video' | 'audio'): number =>
  r.receivers.reduce((a, v) => a + (v[track]?.stutter.stutterSeconds ?? 0), 0);

/** The figures folded per step, by name, and how each is read from one run. */
const FIGURES = {
  started: (r) => r.started,
  publishingAtEnd: (r) => r.publishingAtEnd,
  pssBytesPerChannel: (r) => r.pssBytesPerChannel,
  pssBytesTotal: (r) => r.pssBytesTotal,
  originPssBytes: (r) => r.originPssBytes,
  cpuSecondsPerChannelMinute: (r) => r.cpuSecondsPerChannelMinute,
  cpuCores: (r) => r.cpuCores,
  originCpuCores: (r) => r.originCpuCores,
  originCpuCoresPerChannel: (r) => r.originCpuCoresPerChannel,
  machineCpuBusy: (r) => r.machineCpuBusy,
  stutterSeconds: (r) => r.stutterSeconds,
  stutterShare: (r) => r.stutterShare,
  videoStutterSeconds: (r) => trackStutter(r, 'video'),
  audioStutterSeconds: (r) => trackStutter(r, 'audio'),
  startLatencyP50Ms: (r) => r.startLatencyMs.p50,
  startLatencyP99Ms: (r) => r.startLatencyMs.p99,
  firstPacketLatencyP50Ms: (r) => r.firstPacketLatencyMs.p50,
  firstPacketLatencyP99Ms: (r) => r.firstPacketLatencyMs.p99,
  sourceKeyframeWaitP50Ms: (r) => r.sourceKeyframeWaitMs?.p50 ?? null,
  afterKeyframeLatencyP50Ms: (r) => r.afterKeyframeLatencyMs?.p50 ?? null,
  afterKeyframeLatencyP99Ms: (r) => r.afterKeyframeLatencyMs?.p99 ?? null,
  startAllSeconds: (r) => r.startAllSeconds,
  benchGcMaxPauseMs: (r) => r.benchGcMaxPauseMs,
} satisfies Record<string, (r: StepResult) => number | null>;

export type Figure = keyof typeof FIGURES;

/** Counts summed over the runs. */
type Summed = 'stutteringReceivers' | 'dtsRegressions' | 'dtsGaps' | 'loopBoundariesObserved' | 'startFailures' | 'processesLostInWindow';
/** Medians over the runs, by role (service, workers, ffmpeg) and by worker thread name, the busiest first. */
type ByKeyMedians = 'pssBytesByRole' | 'cpuCoresByRole' | 'workerThreadCpuCores';

export interface StepSummary extends Pick<StepResult, 'kind' | 'side' | 'channels' | 'hls' | 'startErrors' | Summed | ByKeyMedians> {
  /** Measurements folded here: BENCH_RUNS, or fewer when a run failed or the side stopped. */
  readonly runs: number;
  readonly figures: Readonly<Record<Figure, Spread | null>>;
  /** Cores each process group kept busy (saturation.ts). */
  readonly cpuCoresByGroup: Readonly<Record<CpuGroup, Spread | null>>;
  /** The group with the most cores, by median. */
  readonly busiestGroup: CpuGroup;
  /** The machine's median busy share reached SATURATED_BUSY_SHARE. */
  readonly saturated: boolean;
  /** Runs whose own window was saturated. */
  readonly saturatedRuns: number;
  /** In every run, every channel started and was still up at the end, and receivers judged it. */
  readonly allUp: boolean;
  /** allUp, and no receiver of any run saw stutter. */
  readonly clean: boolean;
  /** Receivers over all the runs. */
  readonly receivers: number;
}

/** Every channel started and was still up at the end, and receivers judged it. */
export function allUp(r: StepResult): boolean {
  return r.startFailures === 0 && r.publishingAtEnd === r.channels && r.receivers.length > 0;
}

/** A measurement counts as clean when nothing was wrong with it at all. */
export function isClean(r: StepResult): boolean {
  return allUp(r) && r.stutteringReceivers === 0;
}

/** The median of each key over the records, a key missing from a record counting 0; largest first. */
function medianByKey(records: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const keys = [...new Set(records.flatMap((r) => Object.keys(r)))];
  return Object.fromEntries(
    keys.map((k) => [k, median(records.map((r) => r[k] ?? 0)) ?? 0] as const).sort((a, b) => b[1] - a[1]),
  );
}

const sum = (rs: readonly StepResult[], f: (r: StepResult) => number): number => rs.reduce((a, r) => a + f(r), 0);

function fold(rs: readonly StepResult[]): StepSummary {
  const first = rs[0] as StepResult;
  const figures = Object.fromEntries(
    Object.entries(FIGURES).map(([name, read]) => [name, spreadOf(rs.map(read))]),
  ) as Record<Figure, Spread | null>;
  const cpuCoresByGroup = Object.fromEntries(CPU_GROUPS.map((g) => [g, spreadOf(rs.map((r) => r.cpuCoresByGroup[g]))])) as Record<
    CpuGroup,
    Spread | null
  >;
  return {
    kind: first.kind,
    side: first.side,
    channels: first.channels,
    hls: first.hls,
    runs: rs.length,
    figures,
    cpuCoresByGroup,
    busiestGroup: busiestOf(Object.fromEntries(CPU_GROUPS.map((g) => [g, cpuCoresByGroup[g]?.median ?? 0])) as Record<CpuGroup, number>),
    saturated: (figures.machineCpuBusy?.median ?? 0) >= SATURATED_BUSY_SHARE,
    saturatedRuns: rs.filter((r) => r.saturated).length,
    allUp: rs.every(allUp),
    clean: rs.every(isClean),
    receivers: sum(rs, (r) => r.receivers.length),
    stutteringReceivers: sum(rs, (r) => r.stutteringReceivers),
    dtsRegressions: sum(rs, (r) => r.dtsRegressions),
    dtsGaps: sum(rs, (r) => r.dtsGaps),
    loopBoundariesObserved: sum(rs, (r) => r.loopBoundariesObserved),
    startFailures: sum(rs, (r) => r.startFailures),
    processesLostInWindow: sum(rs, (r) => r.processesLostInWindow),
    startErrors: [...new Set(rs.flatMap((r) => r.startErrors))].slice(0, 3),
    pssBytesByRole: medianByKey(rs.map((r) => r.pssBytesByRole)),
    cpuCoresByRole: medianByKey(rs.map((r) => r.cpuCoresByRole)),
    workerThreadCpuCores: medianByKey(rs.map((r) => r.workerThreadCpuCores)),
  };
}

/** One summary per kind, side, N and HLS setting, in the order the measurements were taken. */
export function aggregate(results: readonly StepResult[]): StepSummary[] {
  const groups = new Map<string, StepResult[]>();
  for (const r of results) {
    const key = `${r.kind} ${r.side} ${r.channels} ${r.hls}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map(fold);
}
