/**
 * Admission control beyond the pool's pipeline slots: a start is refused
 * when the machine's CPU or a worker's memory budget is spent. Overload must
 * be refused at the door; admitted, it would degrade every channel at once
 * (the seed's original complaint about one FFmpeg per channel).
 */
import { VliveError } from '../errors.js';
import { readMachineCpu, type MachineCpuTimes } from '../procfs.js';

export interface AdmissionOptions {
  /** Refuse starts while the machine's CPU is busier than this fraction (0–1]. */
  cpuBudget: number;
  /** Refuse starts when no ready worker is below this RSS, in bytes. */
  workerMemoryBudgetBytes: number;
  /** CPU sampling period, in ms. */
  sampleIntervalMs?: number;
}

export interface WorkerLoad {
  state: string;
  rssBytes: number;
}

/** Time constant of the CPU smoothing, in ms. */
const cpuWindowMs = 5_000;
/**
 * What a start is assumed to cost, as a fraction of the machine, until the
 * running channels say better: about 0.5 % of one core per channel in steady
 * state (the benchmark) plus the start itself, on a 2-core machine.
 */
const defaultStartCost = 0.01;

export class Admission {
  #busy = 0;
  /** CPU reserved by recent starts that the smoothed load does not show yet: [fraction, at ms]. */
  #reservations: [number, number][] = [];
  #last: MachineCpuTimes | null = null;
  #lastAt = 0;
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
   * Throws CAPACITY_EXHAUSTED, saying which budget is spent, when a start
   * must be refused; otherwise reserves the start's expected CPU.
   * `running` is the number of pipelines running now: the measured load per
   * running channel is the expected cost of one more.
   */
  check(workers: readonly WorkerLoad[], running = 0): void {
    // A budget of 1 (100 %) turns the CPU check off: nothing can be over it.
    const reserved = this.opts.cpuBudget >= 1 ? 0 : this.reservedCpu();
    const cost = this.opts.cpuBudget >= 1 ? 0 : running > 0 ? Math.max(defaultStartCost / 4, Math.min(this.#busy / running, 4 * defaultStartCost)) : defaultStartCost;
    if (this.#busy + reserved + cost > this.opts.cpuBudget) {
      const pct = (x: number): string => (x * 100).toFixed(0);
      throw new VliveError(
        'CAPACITY_EXHAUSTED',
        `the CPU budget is spent: the machine is ${pct(this.#busy)} % busy and ${pct(reserved)} % more is on its way from channels just started, over the budget of ${pct(this.opts.cpuBudget)} % (VLIVE_CPU_BUDGET); another channel would make every channel stutter`,
      );
    }
    const ready = workers.filter((w) => w.state === 'ready');
    if (ready.length > 0 && ready.every((w) => w.rssBytes >= this.opts.workerMemoryBudgetBytes)) {
      const mib = (b: number): string => (b / 2 ** 20).toFixed(0);
      throw new VliveError(
        'CAPACITY_EXHAUSTED',
        `the memory budget is spent: every worker uses at least ${mib(this.opts.workerMemoryBudgetBytes)} MiB (VLIVE_WORKER_MEMORY_BUDGET_BYTES)`,
      );
    }
    this.#reservations.push([cost, Date.now()]);
  }

  dispose(): void {
    clearInterval(this.#timer);
  }

  async #sample(): Promise<void> {
    const now = await readMachineCpu();
    const at = Date.now();
    if (now && this.#last && now.total > this.#last.total) {
      const busy = (now.busy - this.#last.busy) / (now.total - this.#last.total);
      // Exponentially weighted, with the weight of each sample set by the time it covers.
      const weight = 1 - Math.exp(-(at - this.#lastAt) / cpuWindowMs);
      this.#busy += weight * (busy - this.#busy);
    }
    this.#last = now;
    this.#lastAt = at;
  }
}
