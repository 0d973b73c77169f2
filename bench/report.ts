/**
 * The committed report: one JSON document (the figures, machine and
 * settings) and a markdown rendering of it with medians and ratios, since a
 * 2-core machine is noisy and single figures mislead.
 */
import { repoRoot } from '../src/paths.js';
import type { MachineInfo } from './machine.js';
import type { BenchOptions, SideName } from './options.js';
import { linearFit, median } from './stats.js';
import type { StepResult } from './step.js';

export interface FailedStep {
  readonly side: SideName;
  readonly channels: number;
  readonly error: string;
}

export interface Summary {
  /** Largest N at which every sampled receiver saw zero stutter, every start succeeded and every channel was still up. */
  readonly largestZeroStutterChannels: Partial<Record<SideName, number | null>>;
  /** The same, with stutter up to the stepping threshold (settings.stopStutterShare) allowed. */
  readonly largestUnderThresholdChannels: Partial<Record<SideName, number | null>>;
  /** Total PSS against N, least squares: what one more channel costs, and what is there with none. */
  readonly pssFit: Partial<Record<SideName, { marginalBytesPerChannel: number; fixedBytes: number } | null>>;
  /** ffmpeg / vlive at each N both sides ran. */
  readonly ratios: readonly { channels: number; pssPerChannel: number | null; cpuPerChannelMinute: number | null }[];
  readonly medianRatios: { pssPerChannel: number | null; cpuPerChannelMinute: number | null };
  readonly medianStartLatencyP50Ms: Partial<Record<SideName, number | null>>;
  readonly medianFirstPacketLatencyP50Ms: Partial<Record<SideName, number | null>>;
  /** Regressions per loop boundary the receivers saw, over all steps. */
  readonly dtsRegressionsPerLoop: Partial<Record<SideName, number | null>>;
}

export interface Report {
  readonly machine: MachineInfo;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  /** False while the run is going or when it was interrupted. */
  readonly complete: boolean;
  readonly settings: Readonly<BenchOptions> & { readonly defaultSteps: boolean };
  readonly runs: readonly StepResult[];
  readonly failedSteps: readonly FailedStep[];
  /** Why a side stopped stepping up, when it did. */
  readonly stoppedSides: Partial<Record<SideName, string>>;
  readonly summary: Summary;
}

/** Every channel started and was still up at the end, and receivers judged it. */
export function allUp(r: StepResult): boolean {
  return r.startFailures === 0 && r.publishingAtEnd === r.channels && r.receivers.length > 0;
}

/** A step counts as clean when nothing was wrong with it at all. */
export function isClean(r: StepResult): boolean {
  return allUp(r) && r.stutteringReceivers === 0;
}

const largest = (rs: readonly StepResult[]): number | null => rs.reduce<number | null>((m, r) => Math.max(m ?? 0, r.channels), null);

const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined || b === 0 ? null : a / b;

export function summarize(runs: readonly StepResult[], sides: readonly SideName[], stopStutterShare: number): Summary {
  const of = (side: SideName) => runs.filter((r) => r.side === side);
  const per = <T>(fn: (rs: StepResult[]) => T): Partial<Record<SideName, T>> =>
    Object.fromEntries(sides.map((s) => [s, fn(of(s))])) as Partial<Record<SideName, T>>;
  const both = [...new Set(runs.map((r) => r.channels))].flatMap((n) => {
    const v = runs.find((r) => r.side === 'vlive' && r.channels === n);
    const f = runs.find((r) => r.side === 'ffmpeg' && r.channels === n);
    return v !== undefined && f !== undefined ? [{ n, v, f }] : [];
  });
  const ratios = both.map(({ n, v, f }) => ({
    channels: n,
    pssPerChannel: ratio(f.pssBytesPerChannel, v.pssBytesPerChannel),
    cpuPerChannelMinute: ratio(f.cpuSecondsPerChannelMinute, v.cpuSecondsPerChannelMinute),
  }));
  const nonNull = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);
  return {
    largestZeroStutterChannels: per((rs) => largest(rs.filter(isClean))),
    largestUnderThresholdChannels: per((rs) => largest(rs.filter((r) => allUp(r) && r.stutterShare <= stopStutterShare))),
    pssFit: per((rs) => {
      const fit = linearFit(rs.filter((r) => r.pssBytesTotal !== null && r.started > 0).map((r) => ({ x: r.started, y: r.pssBytesTotal ?? 0 })));
      return fit === null ? null : { marginalBytesPerChannel: Math.round(fit.slope), fixedBytes: Math.round(fit.intercept) };
    }),
    ratios,
    medianRatios: {
      pssPerChannel: median(nonNull(ratios.map((r) => r.pssPerChannel))),
      cpuPerChannelMinute: median(nonNull(ratios.map((r) => r.cpuPerChannelMinute))),
    },
    medianStartLatencyP50Ms: per((rs) => median(nonNull(rs.map((r) => r.startLatencyMs.p50)))),
    medianFirstPacketLatencyP50Ms: per((rs) => median(nonNull(rs.map((r) => r.firstPacketLatencyMs.p50)))),
    dtsRegressionsPerLoop: per((rs) => {
      const loops = rs.reduce((a, r) => a + r.loopBoundariesObserved, 0);
      return loops === 0 ? null : rs.reduce((a, r) => a + r.dtsRegressions, 0) / loops;
    }),
  };
}

/** Stutter of one track summed over the receivers (the stream's figure takes the worse track of each). */
const trackStutter = (r: StepResult, track: 'video' | 'audio'): number =>
  r.receivers.reduce((a, v) => a + (v[track]?.stutter.stutterSeconds ?? 0), 0);

const MiB = 1024 * 1024;
const mib = (b: number | null | undefined, digits = 1) => (b === null || b === undefined ? '–' : (b / MiB).toFixed(digits));
const fixed = (v: number | null | undefined, digits: number) => (v === null || v === undefined ? '–' : v.toFixed(digits));
const ms = (v: number | null | undefined) => (v === null || v === undefined ? '–' : String(Math.round(v)));
const times = (v: number | null | undefined) => (v === null || v === undefined ? '–' : `${v.toFixed(1)}×`);

export function renderMarkdown(report: Report, plotFile: string): string {
  const m = report.machine;
  const s = report.settings;
  const sum = report.summary;
  const L: string[] = [];
  L.push(`# vlive against one FFmpeg process per channel`);
  L.push('');
  L.push(
    `Run ${report.startedAt}${report.complete ? '' : ' (**incomplete**: interrupted or still running)'}; vlive ${m.commit ?? '?'}` +
      `${m.vliveDir !== repoRoot ? ` (built in ${m.vliveDir})` : ''}. ` +
      `Machine: ${m.cores} cores (${m.cpuModel}), ${mib(m.memoryBytes, 0)} MiB, Linux ${m.kernel.split(' ')[0] ?? ''}, ` +
      `Node ${m.node}, GStreamer ${m.gstreamer ?? '?'}, ffmpeg ${m.ffmpeg ?? '?'}, nginx ${m.nginx ?? '?'}.`,
  );
  L.push('');
  L.push(
    `Media: ${s.clip.width}×${s.clip.height} ${s.clip.fps} fps H.264 at ${s.clip.videoKbps} kbit/s + AAC ${s.clip.audioKbps} kbit/s, ` +
      `${s.clip.seconds} s MP4 looped, copied (no transcoding). Steps ${s.steps.join(', ')}${s.defaultSteps ? ' (default)' : ' (BENCH_STEPS)'}; ` +
      `${s.startConcurrency} starts in flight, at most ${s.startsPer10s} per 10 s (vlive's API limit is 60), on both sides; ${s.settleSeconds} s settle; ${s.windowSeconds} s steady window; ` +
      `${s.receivers} receivers per step (seed ${s.seed}).`,
  );
  L.push('');
  L.push('## Summary');
  L.push('');
  const sides = s.sides;
  for (const side of sides) {
    const n = sum.largestZeroStutterChannels[side];
    const why = report.stoppedSides[side];
    const t = sum.largestUnderThresholdChannels[side];
    L.push(
      `- **${side}**: largest N with zero stutter: **${n ?? 'none'}**; with stutter under ${(s.stopStutterShare * 1000).toFixed(0)} ‰ of listening time: **${t ?? 'none'}**` +
        `${why !== undefined ? ` (stopped stepping: ${why})` : ''}.`,
    );
  }
  if (sum.ratios.length > 0) {
    L.push(
      `- PSS per channel, ffmpeg / vlive: median **${times(sum.medianRatios.pssPerChannel)}** ` +
        `(${sum.ratios.map((r) => `${times(r.pssPerChannel)} at ${r.channels}`).join(', ')}).`,
    );
    L.push(
      `- CPU per channel-minute, ffmpeg / vlive: median **${times(sum.medianRatios.cpuPerChannelMinute)}** ` +
        `(${sum.ratios.map((r) => `${times(r.cpuPerChannelMinute)} at ${r.channels}`).join(', ')}).`,
    );
  }
  for (const side of sides) {
    const fit = sum.pssFit[side];
    if (fit !== null && fit !== undefined) {
      L.push(
        `- ${side}: total PSS ≈ ${mib(fit.fixedBytes)} MiB + ${mib(fit.marginalBytesPerChannel, 2)} MiB × N ` +
          `(least squares over the steps; the per-channel figure at small N carries the fixed part).`,
      );
    }
  }
  L.push(
    `- Start latency p50 (median over steps): ` +
      sides.map((side) => `${side} ${ms(sum.medianStartLatencyP50Ms[side])} ms`).join(', ') +
      `; first packet at the origin p50: ` +
      sides.map((side) => `${side} ${ms(sum.medianFirstPacketLatencyP50Ms[side])} ms`).join(', ') +
      '.',
  );
  L.push(
    `- DTS regressions per loop boundary seen by the receivers: ` +
      sides.map((side) => `${side} ${fixed(sum.dtsRegressionsPerLoop[side], 2)}`).join(', ') +
      '.',
  );
  const other = report.runs.map((r) => r.otherCpuCores);
  if (other.length > 0) {
    L.push(
      `- Other work on the machine during the windows (not ours): median ${fixed(median(other), 2)} cores, at most ${fixed(Math.max(...other), 2)} ` +
        `of ${m.cores}; steps with much of it are noisier, stutter and latency first.`,
    );
  }
  L.push('');
  L.push(`![PSS per channel and stutter against N](${plotFile})`);
  L.push('');
  L.push('## Figures');
  L.push('');
  L.push(
    '| side | N | up at end | PSS/ch MiB | PSS total MiB | origin PSS MiB | CPU s/ch·min | side CPU cores | machine busy (other work, cores) | stutter s (share, receivers stuttering; by track) | DTS regr. / gaps / loops | start p50 / p99 ms | first packet p50 / p99 ms | start all s |',
  );
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const rows = [...report.runs].sort((a, b) => a.channels - b.channels || a.side.localeCompare(b.side));
  for (const r of rows) {
    L.push(
      `| ${r.side} | ${r.channels} | ${r.publishingAtEnd}/${r.channels} | ${mib(r.pssBytesPerChannel, 2)} | ${mib(r.pssBytesTotal)} | ${mib(r.originPssBytes)} | ` +
        `${fixed(r.cpuSecondsPerChannelMinute, 3)} | ${fixed(r.cpuCores, 2)} | ${(r.machineCpuBusy * 100).toFixed(0)} % (${r.otherCpuCores.toFixed(2)}) | ` +
        `${r.stutterSeconds.toFixed(2)} (${(r.stutterShare * 1000).toFixed(1)} ‰, ${r.stutteringReceivers}/${r.receivers.length}; ` +
        `video ${trackStutter(r, 'video').toFixed(2)}, audio ${trackStutter(r, 'audio').toFixed(2)}) | ${r.dtsRegressions} / ${r.dtsGaps} / ${r.loopBoundariesObserved} | ` +
        `${ms(r.startLatencyMs.p50)} / ${ms(r.startLatencyMs.p99)} | ${ms(r.firstPacketLatencyMs.p50)} / ${ms(r.firstPacketLatencyMs.p99)} | ${r.startAllSeconds} |`,
    );
  }
  L.push('');
  const vlive = rows.filter((r) => r.side === 'vlive');
  if (vlive.length > 0) {
    L.push('### Where vlive\'s memory and CPU go');
    L.push('');
    L.push('| N | service PSS MiB | workers PSS MiB | service CPU cores | workers CPU cores | busiest worker threads (cores) |');
    L.push('|---:|---:|---:|---:|---:|---|');
    for (const r of vlive) {
      const threads = Object.entries(r.workerThreadCpuCores)
        .slice(0, 5)
        .map(([name, cores]) => `${name} ${cores.toFixed(2)}`)
        .join(', ');
      L.push(
        `| ${r.channels} | ${mib(r.pssBytesByRole['service'])} | ${mib(r.pssBytesByRole['workers'])} | ${fixed(r.cpuCoresByRole['service'], 2)} | ${fixed(r.cpuCoresByRole['workers'], 2)} | ${threads} |`,
      );
    }
    L.push('');
  }
  if (report.failedSteps.length > 0) {
    L.push('Steps that could not run:');
    for (const f of report.failedSteps) L.push(`- ${f.side} at ${f.channels}: ${f.error}`);
    L.push('');
  }
  L.push('## How it was measured');
  L.push('');
  L.push(
    [
      '- Both sides run one after the other at each N, never together, each from a fresh start: the vlive service (`node dist/src/main.js`, scratch data dir, free ports, its own managed nginx-rtmp) driven through GraphQL; or N `ffmpeg -re -stream_loop -1 -i clip.mp4 -c copy -f flv` processes publishing to an nginx-rtmp started by the same ManagedOrigin code with the same generated config.',
      '- **PSS**: sum of `Pss` in `/proc/PID/smaps_rollup` over the service and its workers, or over the ffmpeg processes, divided by the channels started; the origin is reported apart. Median of three samples in the window.',
      '- **CPU**: utime + stime deltas from `/proc/PID/stat` over the steady window, per channel per minute; the origin apart. "machine busy" is the whole machine (`/proc/stat`) over the window; "other work" is what is left of it after the side, its origin, the receivers and the benchmark itself: other jobs on the machine, which make that step noisier. Before each step the benchmark waits (up to 90 s) for the machine to be under 15 % busy.',
      '- **Worker threads**: vlive\'s worker CPU by thread name (`/proc/PID/task/*/stat`; GStreamer names streaming threads after their element), to show where it goes.',
      '- **Stutter**: `src/metrics/stutter.ts` (the one definition): the stall time of a player holding at most two frame durations of buffer, judged on the packet arrival times and DTS seen by independent receivers (`ffprobe` playing from the origin) on randomly sampled channels; summed over the receivers; a stream counts its worse track.',
      '- **DTS regressions**: packets whose DTS did not move forward from the previous packet of the same track, summed over both tracks and the receivers; **gaps**: forward DTS steps longer than two frame durations (holes in the timeline); "loops" is how many loop boundaries their listening time spanned.',
      '- **Start latency**: vlive from sending `startVirtualLive` to its answer, which comes once the channel is LIVING; ffmpeg from spawn to the origin reporting the publisher (the same condition vlive waits for). **First packet**: from the same instant to the origin\'s `/stat` first showing media bytes for the stream (read every ' +
        `${s.statIntervalMs} ms, so up to that much late).`,
    ].join('\n'),
  );
  L.push('');
  return `${L.join('\n')}\n`;
}
