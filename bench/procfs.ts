/**
 * What the benchmark reads from /proc: process trees, PSS, CPU ticks and
 * free memory. PSS (proportional set size) splits shared pages between the
 * processes that map them, so N ffmpeg processes sharing libavcodec are not
 * charged N times, as RSS would charge them.
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';

/** Kernel clock ticks per second for utime/stime; 100 on every Linux we run on, asked anyway. */
export const CLOCK_TICKS: number = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

export interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  readonly comm: string;
  /** utime + stime, clock ticks. */
  readonly cpuTicks: number;
}

/** Null when the process is gone (or a zombie, which holds no memory and burns no CPU). */
export function procStat(pid: number): Promise<ProcStat | null> {
  return procStatAt(`/proc/${pid}/stat`, pid);
}

async function procStatAt(path: string, pid: number): Promise<ProcStat | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return null;
  }
  // comm is in parentheses and may itself contain spaces or parentheses.
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const rest = text.slice(close + 2).split(' ');
  if (rest[0] === 'Z') return null;
  // Fields after comm, 0-based: state 0, ppid 1, ..., utime 11, stime 12.
  return {
    pid,
    ppid: Number(rest[1]),
    comm: text.slice(open + 1, close),
    cpuTicks: Number(rest[11]) + Number(rest[12]),
  };
}

/** `root` and every live process below it. */
export async function processTree(root: number): Promise<ProcStat[]> {
  const pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d)).map(Number);
  const stats = (await Promise.all(pids.map(procStat))).filter((s): s is ProcStat => s !== null);
  const children = new Map<number, ProcStat[]>();
  for (const s of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
  const out: ProcStat[] = [];
  const queue = stats.filter((s) => s.pid === root);
  while (queue.length > 0) {
    const s = queue.shift() as ProcStat;
    out.push(s);
    queue.push(...(children.get(s.pid) ?? []));
  }
  return out;
}

/** PSS of one process, bytes; null when it is gone. */
export async function pssBytes(pid: number): Promise<number | null> {
  try {
    const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
    const m = /^Pss:\s+(\d+) kB/m.exec(text);
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}

/** Sum of PSS over processes, bytes, with how many of them could be read. */
export async function sumPss(pids: readonly number[]): Promise<{ bytes: number; processes: number }> {
  let bytes = 0;
  let processes = 0;
  // Sequential on purpose: reading smaps_rollup walks page tables; 400 at once
  // would be a CPU burst of our own in the middle of the measurement.
  for (const pid of pids) {
    const b = await pssBytes(pid);
    if (b !== null) {
      bytes += b;
      processes++;
    }
  }
  return { bytes, processes };
}

/** CPU ticks per pid, for deltas over a window. */
export async function cpuTicks(pids: readonly number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    const s = await procStat(pid);
    if (s !== null) out.set(pid, s.cpuTicks);
  }
  return out;
}

/**
 * CPU seconds spent between two snapshots by the processes present in both.
 * A process that died in between loses its share; `lost` says how many did.
 */
export function cpuSecondsBetween(before: Map<number, number>, after: Map<number, number>): { seconds: number; lost: number } {
  let ticks = 0;
  let lost = 0;
  for (const [pid, t0] of before) {
    const t1 = after.get(pid);
    if (t1 === undefined) lost++;
    else ticks += t1 - t0;
  }
  return { seconds: ticks / CLOCK_TICKS, lost };
}

/**
 * CPU ticks of a process's threads, summed by thread name with digits
 * folded (GStreamer names streaming threads after their element, e.g.
 * "vqueue:src"; numbered pools such as "task12" become "task#").
 */
export async function threadTicksByName(pid: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let tasks: string[];
  try {
    tasks = await readdir(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    // /proc/TID/stat would give the whole thread group; the task directory gives the thread.
    const s = await procStatAt(`/proc/${pid}/task/${tid}/stat`, Number(tid));
    if (s === null) continue;
    const name = s.comm.replace(/\d+/g, '#');
    out.set(name, (out.get(name) ?? 0) + s.cpuTicks);
  }
  return out;
}

/** Whole-machine busy and total jiffies from /proc/stat, for the busy share over a window. */
export async function machineCpu(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  // user nice system idle iowait irq softirq steal; guest time is already inside user.
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Share of the machine's CPU that was busy over the next `ms` milliseconds. */
export async function machineBusyOver(ms: number): Promise<number> {
  const a = await machineCpu();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = await machineCpu();
  return (b.busy - a.busy) / Math.max(1, b.total - a.total);
}

export async function memAvailableBytes(): Promise<number> {
  const text = await readFile('/proc/meminfo', 'utf8');
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(text);
  return m === null ? 0 : Number(m[1]) * 1024;
}
