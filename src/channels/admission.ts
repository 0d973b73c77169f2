/**
 * Admission control beyond the pool's pipeline slots: a start is refused
 * when the machine's CPU or a worker's memory budget is spent. Overload must
 * be refused at the door; admitted, it would degrade every channel at once
 * (the seed's original complaint about one FFmpeg per channel).
 *
 * The CPU budget is of the machine: whatever loads it (channels, the service,
 * nginx, a build, someone else's work) leaves less room for channels. What a
 * start will add is another matter, learnt from the workers alone
 * (channel-cost.ts): the machine's load is not the channels' cost.
 */
import { cpus } from 'node:os';
import { VliveError } from '../errors.js';
import { readCpuSeconds, readMachineCpu, type MachineCpuTimes } from '../procfs.js';
import { ChannelCostEstimator, type ChannelKind, type WorkerCpuSample } from './channel-cost.js';

export type { ChannelKind } from './channel-cost.js';

/** A worker as admission sees it; the pool's WorkerInfo is one. */
export interface WorkerLoad {
  state: string;
  rssBytes: number;
  /** Its process, null while it has none. */
  pid: number | null;
  /** Pipelines placed on it. */
  pipelines: number;
  /** Of those, relays. */
  relays: number;
}

export interface AdmissionOptions {
  /** Refuse starts that would take the machine's CPU past this fraction (0–1]; 1 turns the check off. */
  cpuBudget: number;
  /** Refuse starts when no ready worker is below this RSS, in bytes. */
  workerMemoryBudgetBytes: number;
  /** The workers now: their memory for the memory budget, their CPU and pipelines for what a channel costs. */
  workers: () => readonly WorkerLoad[];
  /** CPU sampling period, in ms. Default 1000. */
  sampleIntervalMs?: number;
}

/** Time constant of the machine load's smoothing, in ms. */
const cpuWindowMs = 5_000;

export class Admission {
  #busy = 0;
  /** CPU reserved by recent starts that the smoothed load does not show yet: [fraction, at ms]. */
  #reservations: [number, number][] = [];
  #last: MachineCpuTimes | null = null;
  #lastAt = 0;
  /** CPUs of the machine; /proc/stat's count once sampled. */
  #cpus = Math.max(1, cpus().length);
  readonly #cost = new ChannelCostEstimator();
  readonly #timer: NodeJS.Timeout;

  constructor(private readonly opts: AdmissionOptions) {
    this.#timer = setInterval(() => void this.#sample(), opts.sampleIntervalMs ?? 1000);
    this.#timer.unref();
    // Two quick samples, so the budget holds from the first start on.
    void this.#sample();
    setTimeout(() => void this.#sample(), 200).unref();
  }

  /**
   * The machine's CPU busy fraction, smoothed over about cpuWindowMs: a
   * moment's spike (the service starting, a batch of starts) must not shut
   * the door, sustained load must.
   */
  get cpuBusy(): number {
    return this.#busy;
  }

  /** What one more channel of this kind is expected to add, as a fraction of the machine. */
  startCost(kind: ChannelKind): number {
    return this.#cost.coresPerChannel(kind) / this.#cpus;
  }

  /**
   * CPU that admitted starts will add but the smoothed load does not show
   * yet. Each start reserves its expected cost, and the reservation fades
   * with the same time constant as the smoothing picks the load up, so a
   * burst of starts cannot get past the budget before the load shows.
   */
  reservedCpu(now = Date.now()): number {
    this.#reservations = this.#reservations.filter(([, at]) => now - at < 6 * cpuWindowMs);
    return this.#reservations.reduce((sum, [cost, at]) => sum + cost * Math.exp(-(now - at) / cpuWindowMs), 0);
  }

  /**
   * How many more channels the budgets admit now, each counted at the dearer
   * kind's cost (a cluster node claims channels before it knows their kind):
   * 0 when the memory budget is spent, Infinity when the CPU check is off.
   */
  room(): number {
    if (this.#memorySpent()) return 0;
    if (this.opts.cpuBudget >= 1) return Infinity;
    const cost = this.#dearerCost();
    const left = this.opts.cpuBudget - this.#busy - this.reservedCpu();
    return cost > 0 ? Math.max(0, Math.floor(left / cost)) : Infinity;
  }

  /** Reserves the expected CPU of `n` channels taken without check() (a cluster's claims), at the dearer kind's cost. */
  reserve(n: number): void {
    if (this.opts.cpuBudget >= 1 || n <= 0) return;
    const cost = this.#dearerCost();
    const at = Date.now();
    for (let i = 0; i < n; i++) this.#reservations.push([cost, at]);
  }

  /**
   * Throws CAPACITY_EXHAUSTED, saying which budget is spent, when a start of
   * a channel of this kind must be refused; otherwise reserves its expected CPU.
   */
  check(kind: ChannelKind): void {
    // A budget of 1 (100 %) turns the CPU check off: nothing can be over it.
    const cpuOn = this.opts.cpuBudget < 1;
    const cost = cpuOn ? this.startCost(kind) : 0;
    if (cpuOn) {
      const reserved = this.reservedCpu();
      if (this.#busy + reserved + cost > this.opts.cpuBudget) {
        const pct = (x: number): string => (x * 100).toFixed(x < 0.1 ? 1 : 0);
        throw new VliveError(
          'CAPACITY_EXHAUSTED',
          `the CPU budget is spent: the machine is ${pct(this.#busy)} % busy and ${pct(reserved)} % more is on its way from channels just started; one more ${kind === 'vod' ? 'VOD channel' : 'relay'}, expected to add ${pct(cost)} % (learnt from the workers' CPU per channel), would pass the budget of ${pct(this.opts.cpuBudget)} % (VLIVE_CPU_BUDGET) and make every channel stutter`,
        );
      }
    }
    if (this.#memorySpent()) {
      const mib = (b: number): string => (b / 2 ** 20).toFixed(0);
      throw new VliveError(
        'CAPACITY_EXHAUSTED',
        `the memory budget is spent: every worker uses at least ${mib(this.opts.workerMemoryBudgetBytes)} MiB (VLIVE_WORKER_MEMORY_BUDGET_BYTES)`,
      );
    }
    if (cpuOn) this.#reservations.push([cost, Date.now()]);
  }

  /** Every ready worker is at or past the memory budget. */
  #memorySpent(): boolean {
    const ready = this.opts.workers().filter((w) => w.state === 'ready');
    return ready.length > 0 && ready.every((w) => w.rssBytes >= this.opts.workerMemoryBudgetBytes);
  }

  /** What a channel of unknown kind is expected to add: the dearer kind's cost. */
  #dearerCost(): number {
    return Math.max(this.startCost('vod'), this.startCost('relay'));
  }

  dispose(): void {
    clearInterval(this.#timer);
  }

  async #sample(): Promise<void> {
    const workers = this.opts.workers().flatMap(({ pid, pipelines, relays }) => (pid !== null ? [{ pid, pipelines, relays }] : []));
    const [now, times] = await Promise.all([readMachineCpu(), Promise.all(workers.map((w) => readCpuSeconds(w.pid)))]);
    const at = Date.now();
    if (now && this.#last && now.total > this.#last.total) {
      const busy = (now.busy - this.#last.busy) / (now.total - this.#last.total);
      // Exponentially weighted, with the weight of each sample set by the time it covers.
      const weight = 1 - Math.exp(-(at - this.#lastAt) / cpuWindowMs);
      this.#busy += weight * (busy - this.#busy);
    }
    if (now) this.#cpus = now.cpus;
    this.#last = now;
    this.#lastAt = at;
    const samples: WorkerCpuSample[] = workers.flatMap((w, i) => {
      const cpuSeconds = times[i];
      return cpuSeconds === null || cpuSeconds === undefined ? [] : [{ ...w, cpuSeconds }];
    });
    this.#cost.observe(at, samples);
  }
}
