/**
 * The committed report: one JSON document (every measurement, the steps
 * folded from them with medians and spreads, the machine, the measured
 * commit and the settings) and its summary; markdown.ts renders it.
 */
import { apiLimits } from '../src/api/limits.js';
import type { StepSummary } from './aggregate.js';
import type { MachineInfo, MeasuredTree } from './machine.js';
import type { BenchOptions, Kind, SideName } from './options.js';
import { linearFit, median } from './stats.js';
import type { StepResult } from './step.js';

export interface FailedStep {
  readonly side: SideName;
  readonly kind: Kind;
  readonly channels: number;
  readonly hls: boolean;
  readonly run: number;
  readonly error: string;
}

/** Median ratios at one N both sides ran, from the steps' medians. */
export interface Ratios {
  readonly channels: number;
  readonly pssPerChannelFfmpegOverVlive: number | null;
  readonly cpuPerChannelMinuteFfmpegOverVlive: number | null;
  /** The same CPU ratio the other way up, as issue #16 asks it of relays. */
  readonly cpuPerChannelMinuteVliveOverFfmpeg: number | null;
}

/** One kind's results, over the steps with the principal HLS setting (on, unless BENCH_HLS=off). */
export interface KindSummary {
  /** Largest N at which every run of the step was clean: every start succeeded, every channel was still up, no receiver saw stutter. */
  readonly largestZeroStutterChannels: Partial<Record<SideName, number | null>>;
  /** The same, with the median stutter up to the stepping threshold (settings.stopStutterShare) allowed. */
  readonly largestUnderThresholdChannels: Partial<Record<SideName, number | null>>;
  /** Median total PSS against N, least squares: what one more channel costs, and what is there with none. */
  readonly pssFit: Partial<Record<SideName, { marginalBytesPerChannel: number; fixedBytes: number } | null>>;
  readonly ratios: readonly Ratios[];
  /** The median of each ratio over the steps. */
  readonly medianRatios: Omit<Ratios, 'channels'>;
  readonly medianStartLatencyP50Ms: Partial<Record<SideName, number | null>>;
  readonly medianFirstPacketLatencyP50Ms: Partial<Record<SideName, number | null>>;
  /** Relay steps: the wait for the source's next keyframe, and the start's latency after it (step.ts). */
  readonly medianSourceKeyframeWaitP50Ms: Partial<Record<SideName, number | null>>;
  readonly medianAfterKeyframeLatencyP50Ms: Partial<Record<SideName, number | null>>;
  readonly medianAfterKeyframeLatencyP99Ms: Partial<Record<SideName, number | null>>;
  /** Regressions per loop boundary the receivers saw, over all steps and runs. */
  readonly dtsRegressionsPerLoop: Partial<Record<SideName, number | null>>;
}

export interface Report {
  readonly machine: MachineInfo;
  readonly vlive: MeasuredTree;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  /** False while the run is going or when it was interrupted. */
  readonly complete: boolean;
  readonly settings: Readonly<BenchOptions> & {
    readonly defaultSteps: boolean;
    /** The service's start/stop rate limit, read from src/api/limits.ts. */
    readonly apiStartStopLimit: { readonly perWindow: number; readonly windowMs: number };
  };
  /** Every measurement, in the order taken. */
  readonly measurements: readonly StepResult[];
  /** The measurements folded per kind, side, N and HLS setting. */
  readonly steps: readonly StepSummary[];
  readonly failedSteps: readonly FailedStep[];
  /** Why a side stopped stepping up, when it did. */
  readonly stoppedSides: Partial<Record<Kind, Partial<Record<SideName, string>>>>;
  readonly summary: Partial<Record<Kind, KindSummary>>;
}

export const API_START_STOP_LIMIT = { perWindow: apiLimits.startStopPerWindow, windowMs: apiLimits.startStopWindowMs } as const;

/** The HLS setting the summary and the plot compare sides at. */
export function principalHls(settings: Readonly<BenchOptions>): boolean {
  return settings.hls !== 'off';
}

const largest = (ss: readonly StepSummary[]): number | null => ss.reduce<number | null>((m, s) => Math.max(m ?? 0, s.channels), null);

const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined || b === 0 ? null : a / b;

const nonNull = (xs: readonly (number | null)[]) => xs.filter((x): x is number => x !== null);

function summarizeKind(steps: readonly StepSummary[], sides: readonly SideName[], stopStutterShare: number): KindSummary {
  const of = (side: SideName) => steps.filter((s) => s.side === side);
  const per = <T>(fn: (ss: StepSummary[]) => T): Partial<Record<SideName, T>> =>
    Object.fromEntries(sides.map((side) => [side, fn(of(side))])) as Partial<Record<SideName, T>>;
  const ratios = [...new Set(steps.map((s) => s.channels))].flatMap((n): Ratios[] => {
    const v = steps.find((s) => s.side === 'vlive' && s.channels === n)?.figures;
    const f = steps.find((s) => s.side === 'ffmpeg' && s.channels === n)?.figures;
    if (v === undefined || f === undefined) return [];
    return [
      {
        channels: n,
        pssPerChannelFfmpegOverVlive: ratio(f.pssBytesPerChannel?.median, v.pssBytesPerChannel?.median),
        cpuPerChannelMinuteFfmpegOverVlive: ratio(f.cpuSecondsPerChannelMinute?.median, v.cpuSecondsPerChannelMinute?.median),
        cpuPerChannelMinuteVliveOverFfmpeg: ratio(v.cpuSecondsPerChannelMinute?.median, f.cpuSecondsPerChannelMinute?.median),
      },
    ];
  });
  const medianOf = (k: keyof Omit<Ratios, 'channels'>) => median(nonNull(ratios.map((r) => r[k])));
  return {
    largestZeroStutterChannels: per((ss) => largest(ss.filter((s) => s.clean))),
    largestUnderThresholdChannels: per((ss) => largest(ss.filter((s) => s.allUp && (s.figures.stutterShare?.median ?? 0) <= stopStutterShare))),
    pssFit: per((ss) => {
      const points = ss.flatMap((s) => {
        const x = s.figures.started?.median ?? 0;
        const y = s.figures.pssBytesTotal?.median;
        return x > 0 && y !== undefined ? [{ x, y }] : [];
      });
      const fit = linearFit(points);
      return fit === null ? null : { marginalBytesPerChannel: Math.round(fit.slope), fixedBytes: Math.round(fit.intercept) };
    }),
    ratios,
    medianRatios: {
      pssPerChannelFfmpegOverVlive: medianOf('pssPerChannelFfmpegOverVlive'),
      cpuPerChannelMinuteFfmpegOverVlive: medianOf('cpuPerChannelMinuteFfmpegOverVlive'),
      cpuPerChannelMinuteVliveOverFfmpeg: medianOf('cpuPerChannelMinuteVliveOverFfmpeg'),
    },
    medianStartLatencyP50Ms: per((ss) => median(nonNull(ss.map((s) => s.figures.startLatencyP50Ms?.median ?? null)))),
    medianFirstPacketLatencyP50Ms: per((ss) => median(nonNull(ss.map((s) => s.figures.firstPacketLatencyP50Ms?.median ?? null)))),
    medianSourceKeyframeWaitP50Ms: per((ss) => median(nonNull(ss.map((s) => s.figures.sourceKeyframeWaitP50Ms?.median ?? null)))),
    medianAfterKeyframeLatencyP50Ms: per((ss) => median(nonNull(ss.map((s) => s.figures.afterKeyframeLatencyP50Ms?.median ?? null)))),
    medianAfterKeyframeLatencyP99Ms: per((ss) => median(nonNull(ss.map((s) => s.figures.afterKeyframeLatencyP99Ms?.median ?? null)))),
    dtsRegressionsPerLoop: per((ss) => {
      const loops = ss.reduce((a, s) => a + s.loopBoundariesObserved, 0);
      return loops === 0 ? null : ss.reduce((a, s) => a + s.dtsRegressions, 0) / loops;
    }),
  };
}

export function summarize(steps: readonly StepSummary[], settings: Readonly<BenchOptions>): Partial<Record<Kind, KindSummary>> {
  const hls = principalHls(settings);
  return Object.fromEntries(
    settings.kinds.map((kind) => [kind, summarizeKind(steps.filter((s) => s.kind === kind && s.hls === hls), settings.sides, settings.stopStutterShare)]),
  );
}
