/**
 * One measurement: one side, N channels of one kind, measured the same way
 * for both sides.
 *
 *   open → start N (a fixed number in flight) → settle → steady window
 *   (window.ts: CPU deltas, PSS samples, receivers on a random sample)
 *   → tear down
 *
 * Start-up cost stays out of the window on purpose: the window is what the
 * channels cost while they merely run.
 */
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Disposers } from './children.js';
import type { BenchOptions, Kind, SideName } from './options.js';
import { KeyframeWatch } from './keyframes.js';
import type { LoopStall } from './loop-lag.js';
import { OriginWatch } from './origin-watch.js';
import type { ReceiverVerdict, TrackVerdict } from './receiver.js';
import { breakdown, type CpuBreakdown } from './saturation.js';
import type { SideRun, StartOutcome } from './sides/side.js';
import { percentile } from './stats.js';
import { measureWindow } from './window.js';

export interface LatencySummary {
  readonly p50: number | null;
  readonly p99: number | null;
  readonly max: number | null;
  /** How many values the percentiles are over. */
  readonly count: number;
}

/** One measurement: one side, one kind, N channels, HLS on or off, the `run`-th time. */
export interface StepResult extends CpuBreakdown {
  readonly side: SideName;
  readonly kind: Kind;
  readonly channels: number;
  /** Whether the origin wrote HLS. */
  readonly hls: boolean;
  /** 1 for the first measurement of this side at this step, 2 for the second… */
  readonly run: number;
  readonly started: number;
  readonly startFailures: number;
  readonly startErrors: readonly string[];
  /** Wall seconds to start all N (`startConcurrency` in flight, `startsPer10s` at most). */
  readonly startAllSeconds: number;
  /** Mutation → LIVING (vlive), spawn → publisher at the origin (ffmpeg). */
  readonly startLatencyMs: LatencySummary;
  /** Mutation or spawn → first media bytes at the origin (its /stat). */
  readonly firstPacketLatencyMs: LatencySummary;
  /**
   * Relay steps (null in VOD steps): start → the upstream's next keyframe
   * (keyframes.ts), a wait no relay can shorten, and the start's latency
   * after it, the side's own part.
   */
  readonly sourceKeyframeWaitMs: LatencySummary | null;
  readonly afterKeyframeLatencyMs: LatencySummary | null;
  /** Channels the side reports running at the end of the window. */
  readonly runningAtEnd: number;
  /** Streams the origin shows with a publisher at the end of the window. */
  readonly publishingAtEnd: number;
  /** PSS of the side's own processes (service and workers, or every ffmpeg) / N. */
  readonly pssBytesPerChannel: number | null;
  readonly pssBytesTotal: number | null;
  /** The same total by role: service, workers, ffmpeg. */
  readonly pssBytesByRole: Readonly<Record<string, number>>;
  readonly processes: number;
  readonly originPssBytes: number | null;
  /** CPU seconds of the side's processes per channel per minute of the window. */
  readonly cpuSecondsPerChannelMinute: number | null;
  /** The side's CPU over the window, in cores. */
  readonly cpuCores: number | null;
  /** The same by role: service, workers, ffmpeg. */
  readonly cpuCoresByRole: Readonly<Record<string, number>>;
  readonly originCpuCores: number | null;
  /** The origin's cores per channel started (× 100: % of one core per channel). */
  readonly originCpuCoresPerChannel: number | null;
  /** Share of all the machine's cores busy over the window (receivers and the bench included). */
  readonly machineCpuBusy: number;
  /** Machine busy share measured just before the step started (nothing of ours running). */
  readonly machineBusyBefore: number;
  readonly windowSeconds: number;
  /** Stutter summed over the sampled receivers, seconds. */
  readonly stutterSeconds: number;
  readonly stutteringReceivers: number;
  /** stutterSeconds over the receivers' total listening time. */
  readonly stutterShare: number;
  /** Non-increasing DTS, per track, summed over the sampled receivers. */
  readonly dtsRegressions: number;
  /** Forward DTS jumps longer than two frames (holes in the media timeline), summed like the regressions. */
  readonly dtsGaps: number;
  /** Loop boundaries the receivers saw in total (listening time / clip length), to put regressions in proportion. */
  readonly loopBoundariesObserved: number;
  readonly receivers: readonly ReceiverVerdict[];
  /** The benchmark's own GC pauses in the window, ms: the receivers' clock stops with them (gc.ts). */
  readonly benchGcMaxPauseMs: number;
  readonly benchGcPauseTotalMs: number;
  /** The benchmark's event loop coming back late in the window (window.ts), to lay beside the receivers' stallsAt. */
  readonly benchLoopStalls: readonly LoopStall[];
  /**
   * vlive only: CPU of the workers' threads by thread name, in cores, the
   * busiest first; shows which pipeline elements' threads the CPU goes to.
   */
  readonly workerThreadCpuCores: Readonly<Record<string, number>>;
  /** Processes that died during the window; their CPU is missing from the figures. */
  readonly processesLostInWindow: number;
}

export interface StepContext {
  readonly options: Readonly<BenchOptions>;
  /** Which measurement of this side at this step, from 1. */
  readonly run: number;
  /** Machine busy share just before the step, from the quiet check. */
  readonly machineBusyBefore: number;
  readonly disposers: Disposers;
  readonly random: () => number;
  readonly progress: (msg: string) => void;
  readonly frameDurationSeconds: number;
}

function summarize(values: readonly number[]): LatencySummary {
  const round = (v: number | null) => (v === null ? null : Math.round(v));
  return { p50: round(percentile(values, 50)), p99: round(percentile(values, 99)), max: round(percentile(values, 100)), count: values.length };
}

/** Each start's latency split at the source's next keyframe after it (see StepResult). */
function splitAtKeyframes(
  keyframes: KeyframeWatch | null,
  started: readonly StartOutcome[],
): Pick<StepResult, 'sourceKeyframeWaitMs' | 'afterKeyframeLatencyMs'> {
  if (keyframes === null) return { sourceKeyframeWaitMs: null, afterKeyframeLatencyMs: null };
  const waits: number[] = [];
  const after: number[] = [];
  for (const s of started) {
    const k = keyframes.nextAfter(s.startedAtMs);
    if (k === null) continue;
    const wait = k - s.startedAtMs;
    waits.push(wait);
    after.push(s.latencyMs - wait);
  }
  return { sourceKeyframeWaitMs: summarize(waits), afterKeyframeLatencyMs: summarize(after) };
}

async function startAll(run: SideRun, watch: OriginWatch, ctx: StepContext): Promise<{ outcomes: (StartOutcome | null)[]; sentAt: number[] }> {
  const n = run.streams.length;
  const outcomes: (StartOutcome | null)[] = new Array<StartOutcome | null>(n).fill(null);
  const sentAt: number[] = new Array<number>(n).fill(0);
  let next = 0;
  let done = 0;
  let failed = 0;
  // A side that fails this often is not going to get better within the step; stop paying for it.
  const giveUpAfter = Math.max(5, Math.ceil(n * 0.1));
  const ticker = setInterval(() => ctx.progress(`  started ${done}/${n}${failed > 0 ? `, ${failed} failed` : ''}`), 5_000);
  // A sliding window over start times: a lane waits until the oldest of the
  // last `startsPer10s` starts is 10 s old.
  const recent: number[] = [];
  const pace = async (): Promise<void> => {
    for (;;) {
      const now = performance.now();
      while (recent.length > 0 && now - (recent[0] ?? now) >= 10_000) recent.shift();
      if (recent.length < ctx.options.startsPer10s) {
        recent.push(now);
        return;
      }
      await sleep(10_000 - (now - (recent[0] ?? now)) + 1);
    }
  };
  const lane = async (): Promise<void> => {
    while (next < n && failed < giveUpAfter) {
      const i = next++;
      await pace();
      sentAt[i] = performance.now();
      const outcome = await run.start(i, watch);
      outcomes[i] = outcome;
      done++;
      if (!outcome.ok) failed++;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(n, ctx.options.startConcurrency) }, lane));
  } finally {
    clearInterval(ticker);
  }
  return { outcomes, sentAt };
}

export async function runStep(run: SideRun, ctx: StepContext): Promise<StepResult> {
  const o = ctx.options;
  const n = run.streams.length;
  const watch = new OriginWatch(run.hlsPort, o.statIntervalMs);
  const stopWatch = ctx.disposers.add('origin watch', () => watch.stop());
  watch.start();

  // One more player of the upstream, during the starts only.
  const keyframes = run.upstreamUrl === null ? null : await KeyframeWatch.start(run.upstreamUrl);
  const stopKeyframes = ctx.disposers.add('keyframe watch', async () => keyframes?.stop());
  const t0 = performance.now();
  ctx.progress(`  starting ${n} channels, ${o.startConcurrency} at a time, at most ${o.startsPer10s} per 10 s`);
  const { outcomes, sentAt } = await startAll(run, watch, ctx);
  const startAllSeconds = (performance.now() - t0) / 1000;
  await stopKeyframes();
  const ok = outcomes.flatMap((x, i) => (x?.ok === true ? [i] : []));
  const failures = outcomes.flatMap((x) => (x !== null && !x.ok ? [x] : []));
  const okStreams = ok.map((i) => run.streams[i] as string);
  await watch.waitMedia(okStreams, 10_000);
  await stopWatch(); // polling a big /stat costs CPU; keep it out of the window
  const firstPacket = ok.flatMap((i) => {
    const at = watch.mediaAt(run.streams[i] as string);
    return at === null ? [] : [at - (sentAt[i] ?? 0)];
  });
  ctx.progress(
    `  ${ok.length}/${n} started in ${startAllSeconds.toFixed(1)} s` +
      (failures.length > 0 ? `; ${failures.length} failed, e.g. ${failures[0]?.error ?? '?'}` : '') +
      `; settling ${o.settleSeconds} s`,
  );
  await sleep(o.settleSeconds * 1000);

  ctx.progress(`  steady window ${o.windowSeconds} s, receivers on ${Math.min(o.receivers, okStreams.length)} channels`);
  const w = await measureWindow(run, okStreams, {
    windowSeconds: o.windowSeconds,
    receivers: o.receivers,
    random: ctx.random,
    disposers: ctx.disposers,
    frameDurationSeconds: ctx.frameDurationSeconds,
  });
  const runningAtEnd = await run.running().catch(() => 0);
  const stat = await watch.read().catch(() => new Map());
  const publishingAtEnd = run.streams.filter((s) => stat.get(s)?.publishing === true).length;
  const verdicts = w.verdicts;
  const listened = verdicts.reduce((a, v) => a + v.observedSeconds, 0);
  const stutter = verdicts.reduce((a, v) => a + v.stutterSeconds, 0);
  const perTrack = (f: (t: TrackVerdict) => number) => verdicts.reduce((a, v) => a + (v.video ? f(v.video) : 0) + (v.audio ? f(v.audio) : 0), 0);
  const cores = (seconds: number) => seconds / w.windowSeconds;
  const originCpuCores = w.originCpuSeconds === null ? null : cores(w.originCpuSeconds);

  return {
    side: run.side,
    kind: run.kind,
    channels: n,
    hls: run.hls,
    run: ctx.run,
    started: ok.length,
    startFailures: failures.length + outcomes.filter((x) => x === null).length,
    startErrors: [...new Set(failures.map((f) => f.error ?? '?'))].slice(0, 3),
    startAllSeconds: Math.round(startAllSeconds * 10) / 10,
    startLatencyMs: summarize(ok.map((i) => outcomes[i]?.latencyMs ?? 0)),
    firstPacketLatencyMs: summarize(firstPacket),
    ...splitAtKeyframes(keyframes, ok.flatMap((i) => (outcomes[i] ? [outcomes[i]] : []))),
    runningAtEnd,
    publishingAtEnd,
    pssBytesPerChannel: ok.length === 0 ? null : Math.round(w.pss.total / ok.length),
    pssBytesTotal: w.pss.total,
    pssBytesByRole: w.pss.byRole,
    processes: w.pss.processes,
    originPssBytes: w.originPssBytes,
    cpuSecondsPerChannelMinute: ok.length === 0 ? null : w.cpuSeconds / ok.length / (w.windowSeconds / 60),
    cpuCores: cores(w.cpuSeconds),
    cpuCoresByRole: Object.fromEntries(Object.entries(w.cpuSecondsByRole).map(([role, sec]) => [role, cores(sec)])),
    originCpuCores,
    originCpuCoresPerChannel: originCpuCores === null || ok.length === 0 ? null : originCpuCores / ok.length,
    machineCpuBusy: w.machineCpuBusy,
    ...breakdown(
      {
        side: cores(w.cpuSeconds),
        origin: originCpuCores ?? 0,
        upstream: cores(w.upstreamCpuSeconds),
        receivers: cores(w.receiverCpuSeconds),
        bench: cores(w.benchCpuSeconds),
      },
      w.machineCpuBusy,
      availableParallelism(),
    ),
    machineBusyBefore: ctx.machineBusyBefore,
    windowSeconds: Math.round(w.windowSeconds * 10) / 10,
    stutterSeconds: stutter,
    stutteringReceivers: verdicts.filter((v) => v.stutterSeconds > 0).length,
    stutterShare: stutter / Math.max(listened, 1),
    dtsRegressions: perTrack((t) => t.dtsRegressions),
    dtsGaps: perTrack((t) => t.dtsGaps),
    loopBoundariesObserved: Math.floor(listened / o.clip.seconds),
    receivers: verdicts,
    benchGcMaxPauseMs: w.benchGcPauses.maxMs,
    benchGcPauseTotalMs: w.benchGcPauses.totalMs,
    benchLoopStalls: w.benchLoopStalls,
    workerThreadCpuCores: Object.fromEntries(Object.entries(w.workerThreadCpuSeconds).map(([name, sec]) => [name, cores(sec)])),
    processesLostInWindow: w.cpuLost,
  };
}
