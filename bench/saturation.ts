/**
 * Who kept the machine busy during a window. On 2 cores a large step can
 * saturate the machine, and then every process is short of CPU, the
 * receivers (ffprobe) and the benchmark's own Node process included: they
 * time-stamp packet arrivals, so their starvation shows as stutter that the
 * side under test did not cause. The report therefore names the busiest
 * group of processes and flags the steps where the machine was saturated.
 */

/** Process groups, each a set of pids the window samples. */
export const CPU_GROUPS = ['side', 'origin', 'upstream', 'receivers', 'bench', 'other'] as const;
export type CpuGroup = (typeof CPU_GROUPS)[number];

/** What each group is, for the report. */
export const CPU_GROUP_NAMES: Readonly<Record<CpuGroup, string>> = {
  side: "the side's own processes (service and workers, or the ffmpeg publishers)",
  origin: 'the origin nginx',
  upstream: "the relay steps' upstream ffmpeg",
  receivers: 'the ffprobe receivers',
  bench: "the benchmark's own Node process",
  other: 'everything else: other jobs on the machine, and kernel work charged to no process',
};

/** A window with the machine at least this busy (share of all cores) counts as saturated. */
export const SATURATED_BUSY_SHARE = 0.9;

export interface CpuBreakdown {
  /** Cores each group kept busy over the window; `other` is what the machine's own count leaves. */
  readonly cpuCoresByGroup: Readonly<Record<CpuGroup, number>>;
  readonly busiestGroup: CpuGroup;
  /** machineCpuBusy >= SATURATED_BUSY_SHARE. */
  readonly saturated: boolean;
}

/** The group with the most cores; the first listed wins a tie. */
export function busiestOf(cores: Readonly<Record<CpuGroup, number>>): CpuGroup {
  return CPU_GROUPS.reduce((best, g) => (cores[g] > cores[best] ? g : best));
}

/**
 * `measured`: cores of every group but `other`, from per-process ticks;
 * `machineBusy`: the whole machine's busy share over the same window.
 */
export function breakdown(measured: Readonly<Record<Exclude<CpuGroup, 'other'>, number>>, machineBusy: number, cores: number): CpuBreakdown {
  const accounted = measured.side + measured.origin + measured.upstream + measured.receivers + measured.bench;
  const cpuCoresByGroup = { ...measured, other: Math.max(0, machineBusy * cores - accounted) };
  return { cpuCoresByGroup, busiestGroup: busiestOf(cpuCoresByGroup), saturated: machineBusy >= SATURATED_BUSY_SHARE };
}
