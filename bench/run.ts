/**
 * `npm run bench`: vlive against one FFmpeg process per channel, on the same
 * media, the same kind of origin and the same machine, in one run.
 *
 * For each kind (VOD, relay), each N in its steps and each HLS setting, each
 * side is measured `runs` times, the sides taking turns, never both at once
 * (2 cores), each time from a fresh start. A side stops stepping up once it
 * fails to start channels, loses channels, would not fit in memory, or its
 * median stutter passes settings.stopStutterShare. Reports are rewritten
 * after every measurement, so an interrupted run keeps what it measured.
 *
 * Every process started here is stopped on the way out, Ctrl-C included;
 * should the benchmark die outright, the kernel kills its children
 * (see children.ts).
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { aggregate, allUp, type StepSummary } from './aggregate.js';
import { Disposers } from './children.js';
import { machineInfo, measuredTree, type MachineInfo } from './machine.js';
import { renderMarkdown } from './markdown.js';
import { makeClip } from './media.js';
import { BenchOptionError, hlsVariants, loadOptions, type BenchOptions, type Kind, type SideName } from './options.js';
import { renderPlot } from './plot.js';
import { machineBusyOver, memAvailableBytes } from './procfs.js';
import { API_START_STOP_LIMIT, principalHls, summarize, type FailedStep, type Report } from './report.js';
import { openFfmpeg } from './sides/ffmpeg.js';
import type { SideContext, SideRun } from './sides/side.js';
import { openVlive } from './sides/vlive.js';
import { seededRandom } from './stats.js';
import { runStep, type StepResult } from './step.js';

const disposers = new Disposers();
const began = performance.now();

function progress(msg: string): void {
  const s = Math.round((performance.now() - began) / 1000);
  const stamp = `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  process.stdout.write(`[${stamp}] ${msg}\n`);
}

let interrupted = false;
function onSignal(signal: NodeJS.Signals): void {
  if (interrupted) {
    // A second Ctrl-C: leave now; the kernel's parent-death signal takes the children down.
    process.exit(130);
  }
  interrupted = true;
  progress(`${signal}: stopping every process this run started…`);
  void disposers
    .drain((name, err) => process.stderr.write(`bench: cleanup of ${name} failed: ${String(err)}\n`))
    .finally(() => process.exit(130));
}

function openSide(side: SideName, ctx: SideContext, options: Readonly<BenchOptions>): Promise<SideRun> {
  return side === 'vlive' ? openVlive(ctx, { workers: options.vliveWorkers, vliveDir: options.vliveDir }) : openFfmpeg(ctx);
}

function oneLine(r: StepResult): string {
  const mib = (b: number | null) => (b === null ? '–' : (b / 1024 / 1024).toFixed(2));
  return (
    `  → ${r.kind} ${r.side} N=${r.channels}${r.hls ? '' : ' HLS off'} run ${r.run}: up ${r.publishingAtEnd}/${r.channels}, PSS ${mib(r.pssBytesPerChannel)} MiB/ch (origin ${mib(r.originPssBytes)} MiB), ` +
    `CPU ${r.cpuSecondsPerChannelMinute?.toFixed(3) ?? '–'} s/ch·min, origin ${r.originCpuCores?.toFixed(2) ?? '–'} cores ` +
    `(machine ${(r.machineCpuBusy * 100).toFixed(0)} % busy${r.saturated ? ', saturated' : ''}, busiest ${r.busiestGroup}, ${r.cpuCoresByGroup.other.toFixed(2)} cores of other work), ` +
    `stutter ${r.stutterSeconds.toFixed(2)} s (${(r.stutterShare * 1000).toFixed(1)} ‰) on ${r.stutteringReceivers}/${r.receivers.length} receivers, DTS regressions ${r.dtsRegressions}, ` +
    `start p50/p99 ${r.startLatencyMs.p50 ?? '–'}/${r.startLatencyMs.p99 ?? '–'} ms, first packet p50 ${r.firstPacketLatencyMs.p50 ?? '–'} ms, bench GC pause max ${r.benchGcMaxPauseMs} ms` +
    (r.afterKeyframeLatencyMs === null ? '' : `, after the source's keyframe p50/p99 ${r.afterKeyframeLatencyMs.p50 ?? '–'}/${r.afterKeyframeLatencyMs.p99 ?? '–'} ms`)
  );
}

/** Other work on the machine (tests, builds) skews a 2-core measurement; wait a while for it to pass. */
const QUIET_BUSY_SHARE = 0.15;

async function waitForQuiet(waitSeconds: number): Promise<number> {
  // Without a wait the figure is only reported (machineBusyBefore); a short look does.
  if (waitSeconds === 0) return machineBusyOver(500);
  const deadline = performance.now() + waitSeconds * 1000;
  let busy = await machineBusyOver(2_000);
  if (busy <= QUIET_BUSY_SHARE) return busy;
  progress(`  the machine is ${(busy * 100).toFixed(0)} % busy with other work; waiting up to ${waitSeconds} s for it to calm down`);
  while (busy > QUIET_BUSY_SHARE && performance.now() < deadline && !interrupted) busy = await machineBusyOver(5_000);
  if (busy > QUIET_BUSY_SHARE) progress(`  still ${(busy * 100).toFixed(0)} % busy; measuring anyway (see "other" in the report)`);
  return busy;
}

/** Why a side should not measure again after this run (it would fail the same way), or null. */
function failedRun(r: StepResult): string | null {
  if (r.startFailures > 0) return `${r.startFailures} of ${r.channels} channels failed to start at N=${r.channels} (run ${r.run})`;
  if (r.publishingAtEnd < r.channels) return `only ${r.publishingAtEnd} of ${r.channels} channels were still up at N=${r.channels} (run ${r.run})`;
  if (!allUp(r)) return `no receiver verdict at N=${r.channels} (run ${r.run})`;
  return null;
}

/** Why a side should not go on to larger N after all runs of a step, or null: the median decides on stutter. */
function stutterStop(s: StepSummary, stopStutterShare: number): string | null {
  const share = s.figures.stutterShare?.median ?? 0;
  return share > stopStutterShare ? `median stutter for ${(share * 100).toFixed(2)} % of listening time at N=${s.channels}` : null;
}

/** The steps in the order they are measured: kinds in turn, N ascending, HLS on before off. */
function plan(o: Readonly<BenchOptions>): { kind: Kind; channels: number; hls: boolean }[] {
  return o.kinds.flatMap((kind) =>
    (kind === 'vod' ? o.steps : o.relaySteps).flatMap((channels) => hlsVariants(o, kind, channels).map((hls) => ({ kind, channels, hls }))),
  );
}

async function main(): Promise<void> {
  const options = loadOptions();
  if (!existsSync(join(options.vliveDir, 'dist', 'src', 'main.js'))) {
    throw new Error(`${join(options.vliveDir, 'dist', 'src', 'main.js')} is missing: build first (npm run build)`);
  }
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z');
  const machine: MachineInfo = await machineInfo();
  const vlive = await measuredTree(options.vliveDir);
  const steps = plan(options);
  progress(
    `vlive bench: ${steps.length} steps (${options.kinds.join(', ')}), ${options.runs} runs of ${options.sides.join(' and ')} each, ${options.windowSeconds} s windows; ` +
      `vlive ${vlive.commit ?? '?'}${vlive.dirty === true ? ' (dirty)' : ''}; ${machine.cores} cores, ${(machine.memoryBytes / 1024 ** 3).toFixed(1)} GiB; results in ${options.resultsDir}`,
  );

  const runDir = join(options.workDir, `run-${stamp}`);
  await mkdir(runDir, { recursive: true });
  if (!options.keepWork) disposers.add('scratch dir', () => rm(runDir, { recursive: true, force: true }));
  await mkdir(options.resultsDir, { recursive: true });

  progress(`making the clip (${options.clip.width}x${options.clip.height} ${options.clip.fps} fps, ${options.clip.videoKbps} kbit/s, ${options.clip.seconds} s)`);
  const clipPath = await makeClip(runDir, options.clip);

  const measurements: StepResult[] = [];
  const failedSteps: FailedStep[] = [];
  const stoppedSides: Partial<Record<Kind, Partial<Record<SideName, string>>>> = {};
  // A side that stopped at some N measures no larger N; at that N it still
  // measures its other HLS setting, but not again a setting that failed outright.
  const stoppedAt = new Map<string, number>();
  const failedOutright = new Set<string>();
  const stop = (kind: Kind, side: SideName, n: number, why: string): void => {
    if (stoppedAt.has(`${kind} ${side}`)) return;
    stoppedAt.set(`${kind} ${side}`, n);
    stoppedSides[kind] = { ...stoppedSides[kind], [side]: why };
    progress(`${kind} ${side}: ${why}; not stepping further`);
  };
  const skip = (kind: Kind, side: SideName, n: number, hls: boolean): boolean =>
    (stoppedAt.get(`${kind} ${side}`) ?? Infinity) < n || failedOutright.has(`${kind} ${side} ${n} ${hls}`);
  const failOutright = (kind: Kind, side: SideName, n: number, hls: boolean, why: string): void => {
    failedOutright.add(`${kind} ${side} ${n} ${hls}`);
    stop(kind, side, n, why);
  };
  const random = seededRandom(options.seed);
  const defaultSteps = process.env['BENCH_STEPS'] === undefined || process.env['BENCH_STEPS'] === '';

  const write = async (complete: boolean): Promise<void> => {
    const folded = aggregate(measurements);
    const report: Report = {
      machine,
      vlive,
      startedAt: startedAt.toISOString(),
      finishedAt: complete ? new Date().toISOString() : null,
      complete,
      settings: { ...options, defaultSteps, apiStartStopLimit: API_START_STOP_LIMIT },
      measurements,
      steps: folded,
      failedSteps,
      stoppedSides,
      summary: summarize(folded, options),
    };
    const json = `${JSON.stringify(report, null, 2)}\n`;
    const hls = principalHls(options);
    const svg = renderPlot(folded.filter((x) => x.hls === hls), options.sides, options.kinds);
    const dir = options.resultsDir;
    await writeFile(join(dir, `${stamp}.json`), json);
    await writeFile(join(dir, `${stamp}.svg`), svg);
    await writeFile(join(dir, `${stamp}.md`), renderMarkdown(report, `${stamp}.svg`));
    await writeFile(join(dir, 'latest.json'), json);
    await writeFile(join(dir, 'latest.svg'), svg);
    await writeFile(join(dir, 'latest.md'), renderMarkdown(report, 'latest.svg'));
  };

  /** One measurement of one side; a failure stops the side (stoppedSides), it does not throw. */
  const measure = async (side: SideName, kind: Kind, n: number, hls: boolean, run: number): Promise<void> => {
    const last = measurements.filter((r) => r.side === side && r.kind === kind).pop();
    if (last !== undefined && last.pssBytesTotal !== null && last.started > 0) {
      const need = ((last.pssBytesTotal + (last.originPssBytes ?? 0)) / last.started) * n;
      const free = await memAvailableBytes();
      if (free - need < options.minFreeMemoryBytes) {
        failOutright(kind, side, n, hls, `N=${n} would need about ${(need / 1024 ** 3).toFixed(1)} GiB with ${(free / 1024 ** 3).toFixed(1)} GiB available`);
        return;
      }
    }
    const machineBusyBefore = await waitForQuiet(options.quietWaitSeconds);
    if (interrupted) return;
    const dir = join(runDir, `${kind}-${side}-${n}-hls-${hls ? 'on' : 'off'}-run${run}`);
    await mkdir(dir, { recursive: true });
    progress(`${kind}, ${side}, N=${n}, HLS ${hls ? 'on' : 'off'}, run ${run}/${options.runs}: starting ${side === 'vlive' ? 'the service' : 'the origin'}`);
    const ctx: SideContext = { clipPath, dir, kind, channels: n, hls, startTimeoutMs: options.startTimeoutMs, logPath: join(dir, 'children.log'), disposers };
    let sideRun: SideRun | null = null;
    try {
      sideRun = await openSide(side, ctx, options);
      const result = await runStep(sideRun, { options, run, machineBusyBefore, disposers, random, progress, frameDurationSeconds: 1 / options.clip.fps });
      measurements.push(result);
      progress(oneLine(result));
      const why = failedRun(result);
      if (why !== null) failOutright(kind, side, n, hls, why);
    } catch (err) {
      if (interrupted) return;
      const error = err instanceof Error ? err.message : String(err);
      failedSteps.push({ side, kind, channels: n, hls, run, error });
      failOutright(kind, side, n, hls, `the step at N=${n} (HLS ${hls ? 'on' : 'off'}, run ${run}) failed: ${error}`);
      if (!options.keepWork) progress('  (BENCH_KEEP_WORK=1 keeps the logs)');
      else progress(`  logs in ${dir}`);
    } finally {
      if (sideRun !== null && !interrupted) {
        progress(`  stopping ${side}`);
        await sideRun.tearDown();
      }
    }
  };

  for (const { kind, channels, hls } of steps) {
    for (let run = 1; run <= options.runs; run++) {
      for (const side of options.sides) {
        if (interrupted || skip(kind, side, channels, hls)) continue;
        await measure(side, kind, channels, hls, run);
        if (interrupted) return;
        await write(false);
      }
    }
    for (const s of aggregate(measurements.filter((r) => r.kind === kind && r.channels === channels && r.hls === hls))) {
      const why = stutterStop(s, options.stopStutterShare);
      if (why !== null) stop(kind, s.side, channels, why);
    }
  }
  await write(true);
  const sum = summarize(aggregate(measurements), options);
  progress(
    `done. ` +
      options.kinds
        .map((kind) => {
          const k = sum[kind];
          const largestN = options.sides.map((s) => `${s} ${k?.largestZeroStutterChannels[s] ?? 'none'}`).join(', ');
          return `${kind}: largest N with zero stutter ${largestN}; CPU/ch vlive÷ffmpeg median ${k?.medianRatios.cpuPerChannelMinuteVliveOverFfmpeg?.toFixed(2) ?? '–'}×`;
        })
        .join('; ') +
      `. Report: ${join(options.resultsDir, 'latest.md')}`,
  );
}

process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
main()
  .catch((err: unknown) => {
    if (err instanceof BenchOptionError) process.stderr.write(`bench: ${err.message}\n`);
    else process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    if (interrupted) return;
    await disposers.drain((name, err) => process.stderr.write(`bench: cleanup of ${name} failed: ${String(err)}\n`));
    // fetch keeps sockets alive for a while; nothing else is left to wait for.
    process.exit(process.exitCode ?? 0);
  });
