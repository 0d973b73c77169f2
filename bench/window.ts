/**
 * The steady window of a step: what N running channels cost, and what
 * independent receivers see of them, over the same stretch of wall time.
 *
 * CPU comes from tick deltas of the processes present at the start (the
 * side's, the origin's, the relay's upstream, the receivers' and our own, so
 * other work on the machine can be told apart: saturation.ts); PSS is
 * sampled at the start, middle and end and the median kept, so one sample
 * taken mid-GC or mid-loop does not decide.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Disposers } from './children.js';
import { collectGarbage, watchGcPauses, type GcPauses } from './gc.js';
import { watchLoopStalls, type LoopStall } from './loop-lag.js';
import { CLOCK_TICKS, cpuSecondsBetween, cpuTicks, machineCpu, pssBytes, sumPss, threadTicksByName } from './procfs.js';
import { Receiver, type ReceiverVerdict } from './receiver.js';
import type { SideRun } from './sides/side.js';
import { median, sample } from './stats.js';

/**
 * A late turn of the bench's loop worth reporting, ms: the receivers' tolerance
 * is two frames (80 ms at 25 fps), so 20 ms is well below anything that can
 * stall one on its own, and above timer noise.
 */
const LOOP_STALL_MS = 20;

export interface WindowOptions {
  readonly windowSeconds: number;
  /** How many of the streams get a receiver. */
  readonly receivers: number;
  readonly random: () => number;
  readonly disposers: Disposers;
  readonly frameDurationSeconds: number;
}

export interface PssSample {
  readonly total: number;
  readonly byRole: Readonly<Record<string, number>>;
  readonly processes: number;
}

export interface WindowMeasure {
  /** The window's real length, seconds. */
  readonly windowSeconds: number;
  readonly cpuSeconds: number;
  readonly cpuSecondsByRole: Readonly<Record<string, number>>;
  /** Processes that died during the window; their CPU is missing. */
  readonly cpuLost: number;
  readonly originCpuSeconds: number | null;
  /** The relay steps' upstream ffmpeg; 0 in VOD steps. */
  readonly upstreamCpuSeconds: number;
  /** The ffprobe receivers. */
  readonly receiverCpuSeconds: number;
  /** This process, the benchmark itself. */
  readonly benchCpuSeconds: number;
  /** This process's GC pauses in the window: the receivers' clock stops with them (gc.ts). */
  readonly benchGcPauses: GcPauses;
  /** This process's event loop coming back late (> LOOP_STALL_MS), seconds from the window's start. */
  readonly benchLoopStalls: readonly LoopStall[];
  readonly machineCpuBusy: number;
  /** Workers' threads by name, the ten busiest. */
  readonly workerThreadCpuSeconds: Readonly<Record<string, number>>;
  readonly pss: PssSample;
  readonly originPssBytes: number | null;
  readonly verdicts: readonly ReceiverVerdict[];
}

async function samplePss(run: SideRun): Promise<PssSample> {
  const byRole: Record<string, number> = {};
  let total = 0;
  let processes = 0;
  for (const { role, pid } of await run.chargedPids()) {
    const b = await pssBytes(pid);
    if (b === null) continue;
    byRole[role] = (byRole[role] ?? 0) + b;
    total += b;
    processes++;
  }
  return { total, byRole, processes };
}

async function threadTicks(pids: readonly number[]): Promise<Map<string, number>> {
  const sum = new Map<string, number>();
  for (const pid of pids) for (const [name, t] of await threadTicksByName(pid)) sum.set(name, (sum.get(name) ?? 0) + t);
  return sum;
}

export async function measureWindow(run: SideRun, streams: readonly string[], o: WindowOptions): Promise<WindowMeasure> {
  const charged = await run.chargedPids();
  const originPid = await run.originPid();
  const originPids = originPid === null ? [] : [originPid];
  const upstreamPid = run.upstreamPid();
  const upstreamPids = upstreamPid === null ? [] : [upstreamPid];
  const workerPids = charged.filter((c) => c.role === 'workers').map((c) => c.pid);
  const ticks0 = await cpuTicks(charged.map((c) => c.pid));
  const originTicks0 = await cpuTicks(originPids);
  const upstreamTicks0 = await cpuTicks(upstreamPids);
  const threads0 = await threadTicks(workerPids);
  const machine0 = await machineCpu();
  // What earlier steps left is collected before the window, not in it.
  collectGarbage();
  const gcPauses = watchGcPauses();
  const loopStalls = watchLoopStalls(LOOP_STALL_MS);
  const w0 = performance.now();

  const receivers = sample(streams, o.receivers, o.random).map((s) => new Receiver(s, `rtmp://127.0.0.1:${run.rtmpPort}/live/${s}`));
  const stopReceivers = o.disposers.add('receivers', async () => {
    await Promise.all(receivers.map((r) => r.close()));
  });
  const pss: PssSample[] = [];
  let measured;
  try {
    const receiverTicks0 = await cpuTicks(receivers.map((r) => r.pid));
    const self0 = process.cpuUsage();

    pss.push(await samplePss(run));
    await sleep(Math.max(0, w0 + (o.windowSeconds * 1000) / 2 - performance.now()));
    pss.push(await samplePss(run));
    await sleep(Math.max(0, w0 + o.windowSeconds * 1000 - performance.now()));
    // The receivers listen for the window, not for the reads below.
    for (const r of receivers) r.endObservation();

    const ticks1 = await cpuTicks(charged.map((c) => c.pid));
    const originTicks1 = await cpuTicks(originPids);
    const upstreamTicks1 = await cpuTicks(upstreamPids);
    const threads1 = await threadTicks(workerPids);
    const receiverTicks1 = await cpuTicks(receivers.map((r) => r.pid));
    const self = process.cpuUsage(self0);
    const machine1 = await machineCpu();
    const windowSeconds = (performance.now() - w0) / 1000;
    const loop = loopStalls().map((s) => ({ atSeconds: Math.round((s.atSeconds - w0 / 1000) * 1000) / 1000, lateMs: s.lateMs }));
    const verdicts = await Promise.all(receivers.map((r) => r.finish(o.frameDurationSeconds, w0 / 1000)));
    measured = { ticks1, originTicks1, upstreamTicks1, threads1, receiverTicks0, receiverTicks1, self, machine1, windowSeconds, verdicts, gc: gcPauses(), loop };
  } finally {
    // Also when something above throws: no receiver may outlive its step.
    await stopReceivers();
  }
  const { ticks1, originTicks1, upstreamTicks1, threads1, receiverTicks0, receiverTicks1, self, machine1, windowSeconds, verdicts, gc, loop } = measured;
  pss.push(await samplePss(run));

  const cpu = cpuSecondsBetween(ticks0, ticks1);
  const cpuSecondsByRole: Record<string, number> = {};
  for (const role of new Set(charged.map((c) => c.role))) {
    const pids = new Set(charged.filter((c) => c.role === role).map((c) => c.pid));
    const only = (m: Map<number, number>) => new Map([...m].filter(([pid]) => pids.has(pid)));
    cpuSecondsByRole[role] = cpuSecondsBetween(only(ticks0), only(ticks1)).seconds;
  }
  const workerThreadCpuSeconds = Object.fromEntries(
    [...threads1]
      .map(([name, t]) => [name, (t - (threads0.get(name) ?? t)) / CLOCK_TICKS] as const)
      .filter(([, seconds]) => seconds > 0)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10),
  );
  const medianTotal = median(pss.map((p) => p.total)) ?? 0;
  return {
    windowSeconds,
    cpuSeconds: cpu.seconds,
    cpuSecondsByRole,
    cpuLost: cpu.lost,
    originCpuSeconds: originPid === null ? null : cpuSecondsBetween(originTicks0, originTicks1).seconds,
    upstreamCpuSeconds: cpuSecondsBetween(upstreamTicks0, upstreamTicks1).seconds,
    receiverCpuSeconds: cpuSecondsBetween(receiverTicks0, receiverTicks1).seconds,
    benchCpuSeconds: (self.user + self.system) / 1e6,
    benchGcPauses: gc,
    benchLoopStalls: loop,
    machineCpuBusy: (machine1.busy - machine0.busy) / Math.max(1, machine1.total - machine0.total),
    workerThreadCpuSeconds,
    pss: pss.find((p) => p.total === medianTotal) ?? (pss[0] as PssSample),
    originPssBytes: originPid === null ? null : (await sumPss(originPids)).bytes,
    verdicts,
  };
}
