/**
 * Reads of /proc: a process's memory and CPU (the workers', at scrape time
 * and for admission), and the machine's CPU times. Linux only; every reader
 * returns null when the process is gone or the file is unreadable, so a
 * scrape or a sample never fails because a worker just exited.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export interface ProcMemory {
  /** Resident set size, bytes. */
  rssBytes: number;
  /** Proportional set size: private pages plus this process's share of shared pages, bytes. */
  pssBytes: number;
}

/** Reads Rss and Pss from /proc/PID/smaps_rollup (kernel ≥ 4.14). */
export async function readMemory(pid: number): Promise<ProcMemory | null> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  } catch {
    return null;
  }
  const kib = (field: string): number | null => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text);
    return m?.[1] !== undefined ? Number(m[1]) * 1024 : null;
  };
  const rssBytes = kib('Rss');
  const pssBytes = kib('Pss');
  return rssBytes === null || pssBytes === null ? null : { rssBytes, pssBytes };
}

let clockTicks: number | null = null;

/** USER_HZ, the unit of the CPU times in /proc/PID/stat; 100 on every mainstream Linux build. */
function ticksPerSecond(): number {
  if (clockTicks === null) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim());
      clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User plus system CPU time of the process so far, seconds. */
export async function readCpuSeconds(pid: number): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name, state is index 0, so utime (field 14) is index 11 and stime (15) is 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return (utime + stime) / ticksPerSecond();
}

export interface MachineCpuTimes {
  /** Busy time of all CPUs together so far, in clock ticks: all but idle and iowait. */
  busy: number;
  /** All time of all CPUs together so far, in clock ticks. */
  total: number;
  /** CPUs counted in those times (the cpuN lines of /proc/stat). */
  cpus: number;
}

/** The machine's CPU times from the first lines of /proc/stat. */
export async function readMachineCpu(): Promise<MachineCpuTimes | null> {
  let text: string;
  try {
    text = await readFile('/proc/stat', 'utf8');
  } catch {
    return null;
  }
  const lines = text.split('\n');
  const n = (lines[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (n[3] ?? 0) + (n[4] ?? 0);
  const cpus = lines.filter((l) => /^cpu\d+ /.test(l)).length;
  return Number.isFinite(total) && total > 0 ? { busy: total - idle, total, cpus: Math.max(1, cpus) } : null;
}
