/**
 * `npm run bench`: vlive against one FFmpeg process per channel, on the same
 * media, the same kind of origin and the same machine, in one run.
 *
 * For each N in the steps, each side runs alone (2 cores: never both at
 * once), from a fresh start, and stops stepping up once it stutters (beyond
 * settings.stopStutterShare of listening time), fails to start channels,
 * loses channels, or would not fit in memory. Reports are rewritten after
 * every step, so an interrupted run keeps what it measured.
 *
 * Every process started here is stopped on the way out, Ctrl-C included;
 * should the benchmark die outright, the kernel kills its children
 * (see children.ts).
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Disposers } from './children.js';
import { machineInfo, type MachineInfo } from './machine.js';
import { makeClip } from './media.js';
import { BenchOptionError, loadOptions, type BenchOptions, type SideName } from './options.js';
import { machineBusyOver, memAvailableBytes } from './procfs.js';
import { renderMarkdown, summarize, type FailedStep, type Report } from './report.js';
import { renderPlot } from './plot.js';
import { openFfmpeg } from './sides/ffmpeg.js';
import type { SideContext, SideRun } from './sides/side.js';
import { openVlive } from './sides/vlive.js';
import { runStep, type StepResult } from './step.js';
import { seededRandom } from './stats.js';

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
    `  → ${r.side} N=${r.channels}: up ${r.publishingAtEnd}/${r.channels}, PSS ${mib(r.pssBytesPerChannel)} MiB/ch (origin ${mib(r.originPssBytes)} MiB), ` +
    `CPU ${r.cpuSecondsPerChannelMinute?.toFixed(3) ?? '–'} s/ch·min (machine ${(r.machineCpuBusy * 100).toFixed(0)} % busy, ${r.otherCpuCores.toFixed(2)} cores of other work), ` +
    `stutter ${r.stutterSeconds.toFixed(2)} s (${(r.stutterShare * 1000).toFixed(1)} ‰) on ${r.stutteringReceivers}/${r.receivers.length} receivers, DTS regressions ${r.dtsRegressions}, ` +
    `start p50/p99 ${r.startLatencyMs.p50 ?? '–'}/${r.startLatencyMs.p99 ?? '–'} ms, first packet p50 ${r.firstPacketLatencyMs.p50 ?? '–'} ms`
  );
}

/** Other work on the machine (tests, builds) skews a 2-core measurement; wait a while for it to pass. */
const QUIET_BUSY_SHARE = 0.15;
const QUIET_WAIT_MS = 90_000;

async function waitForQuiet(): Promise<number> {
  const deadline = performance.now() + QUIET_WAIT_MS;
  let busy = await machineBusyOver(2_000);
  if (busy <= QUIET_BUSY_SHARE) return busy;
  progress(`  the machine is ${(busy * 100).toFixed(0)} % busy with other work; waiting up to ${QUIET_WAIT_MS / 1000} s for it to calm down`);
  while (busy > QUIET_BUSY_SHARE && performance.now() < deadline && !interrupted) busy = await machineBusyOver(5_000);
  if (busy > QUIET_BUSY_SHARE) progress(`  still ${(busy * 100).toFixed(0)} % busy; measuring anyway (see otherCpuCores in the report)`);
  return busy;
}

/** Why a side should not go on to larger N after this result, or null. */
function stopReason(r: StepResult, stopStutterShare: number): string | null {
  if (r.startFailures > 0) return `${r.startFailures} of ${r.channels} channels failed to start at N=${r.channels}`;
  if (r.publishingAtEnd < r.channels) return `only ${r.publishingAtEnd} of ${r.channels} channels were still up at N=${r.channels}`;
  if (r.receivers.length === 0) return `no receiver verdict at N=${r.channels}`;
  if (r.stutterShare > stopStutterShare) return `stutter for ${(r.stutterShare * 100).toFixed(2)} % of listening time at N=${r.channels}`;
  return null;
}

async function main(): Promise<void> {
  const options = loadOptions();
  if (!existsSync(join(options.vliveDir, 'dist', 'src', 'main.js'))) {
    throw new Error(`${join(options.vliveDir, 'dist', 'src', 'main.js')} is missing: build first (npm run build)`);
  }
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z');
  const machine: MachineInfo = await machineInfo(options.vliveDir);
  progress(
    `vlive bench: steps ${options.steps.join(', ')}, sides ${options.sides.join(' then ')}, ${options.windowSeconds} s windows; ` +
      `${machine.cores} cores, ${(machine.memoryBytes / 1024 ** 3).toFixed(1)} GiB; results in ${options.resultsDir}`,
  );

  const runDir = join(options.workDir, `run-${stamp}`);
  await mkdir(runDir, { recursive: true });
  if (!options.keepWork) disposers.add('scratch dir', () => rm(runDir, { recursive: true, force: true }));
  await mkdir(options.resultsDir, { recursive: true });

  progress(`making the clip (${options.clip.width}x${options.clip.height} ${options.clip.fps} fps, ${options.clip.videoKbps} kbit/s, ${options.clip.seconds} s)`);
  const clipPath = await makeClip(runDir, options.clip);

  const runs: StepResult[] = [];
  const failedSteps: FailedStep[] = [];
  const stoppedSides: Partial<Record<SideName, string>> = {};
  const random = seededRandom(options.seed);
  const defaultSteps = process.env['BENCH_STEPS'] === undefined || process.env['BENCH_STEPS'] === '';

  const write = async (complete: boolean): Promise<void> => {
    const report: Report = {
      machine,
      startedAt: startedAt.toISOString(),
      finishedAt: complete ? new Date().toISOString() : null,
      complete,
      settings: { ...options, defaultSteps },
      runs,
      failedSteps,
      stoppedSides,
      summary: summarize(runs, options.sides, options.stopStutterShare),
    };
    const json = `${JSON.stringify(report, null, 2)}\n`;
    const svg = renderPlot(runs, options.sides);
    const dir = options.resultsDir;
    await writeFile(join(dir, `${stamp}.json`), json);
    await writeFile(join(dir, `${stamp}.svg`), svg);
    await writeFile(join(dir, `${stamp}.md`), renderMarkdown(report, `${stamp}.svg`));
    await writeFile(join(dir, 'latest.json'), json);
    await writeFile(join(dir, 'latest.svg'), svg);
    await writeFile(join(dir, 'latest.md'), renderMarkdown(report, 'latest.svg'));
  };

  for (const n of options.steps) {
    for (const side of options.sides) {
      if (interrupted || stoppedSides[side] !== undefined) continue;
      const last = runs.filter((r) => r.side === side).pop();
      if (last !== undefined && last.pssBytesTotal !== null && last.started > 0) {
        const need = ((last.pssBytesTotal + (last.originPssBytes ?? 0)) / last.started) * n;
        const free = await memAvailableBytes();
        if (free - need < options.minFreeMemoryBytes) {
          stoppedSides[side] = `N=${n} would need about ${(need / 1024 ** 3).toFixed(1)} GiB with ${(free / 1024 ** 3).toFixed(1)} GiB available`;
          progress(`${side}: ${stoppedSides[side]}; not stepping further`);
          continue;
        }
      }
      const machineBusyBefore = await waitForQuiet();
      if (interrupted) return;
      const dir = join(runDir, `${side}-${n}`);
      await mkdir(dir, { recursive: true });
      progress(`${side}, N=${n}: starting ${side === 'vlive' ? 'the service' : 'the origin'}`);
      const ctx: SideContext = { clipPath, dir, channels: n, startTimeoutMs: options.startTimeoutMs, logPath: join(dir, 'children.log'), disposers };
      let run: SideRun | null = null;
      try {
        run = await openSide(side, ctx, options);
        const result = await runStep(run, { options, machineBusyBefore, disposers, random, progress, frameDurationSeconds: 1 / options.clip.fps });
        runs.push(result);
        progress(oneLine(result));
        const why = stopReason(result, options.stopStutterShare);
        if (why !== null) {
          stoppedSides[side] = why;
          progress(`${side}: ${why}; not stepping further`);
        }
      } catch (err) {
        if (interrupted) return;
        const error = err instanceof Error ? err.message : String(err);
        failedSteps.push({ side, channels: n, error });
        stoppedSides[side] = `the step at N=${n} failed: ${error}`;
        progress(`${side}, N=${n} failed: ${error}${options.keepWork ? `; logs in ${dir}` : ' (BENCH_KEEP_WORK=1 keeps the logs)'}`);
      } finally {
        if (run !== null && !interrupted) {
          progress(`  stopping ${side}`);
          await run.tearDown();
        }
      }
      if (interrupted) return;
      await write(false);
    }
  }
  await write(true);
  const sum = summarize(runs, options.sides, options.stopStutterShare);
  progress(
    `done. Largest N with zero stutter: ${options.sides.map((s) => `${s} ${sum.largestZeroStutterChannels[s] ?? 'none'}`).join(', ')}; ` +
      `PSS/ch ffmpeg÷vlive median ${sum.medianRatios.pssPerChannel?.toFixed(1) ?? '–'}×. Report: ${join(options.resultsDir, 'latest.md')}`,
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
