/**
 * What one more channel is expected to cost, in cores, learnt from what the
 * running channels cost: the workers' own CPU time (utime + stime of each
 * worker process, all its threads) per pipeline it hosts, smoothed. Pure: the
 * caller reads /proc and the clock and hands in samples.
 *
 * Only the workers count. The machine's load also holds the service itself,
 * nginx, start-up work, a build and anyone else's work; divided by the running
 * channels, it made one running channel look as dear as all of that, and a
 * new user's burst of cheap starts was refused on an idle machine (issue #16).
 * That load still counts where it belongs: in the machine's busy fraction,
 * against the budget (admission.ts).
 *
 * Until enough channels run, the measurement says little (one channel's cost
 * is lost in its worker's own heartbeats and event loop, or swollen by its
 * start), so it is blended with a prior that weighs as much as
 * `priorWeightChannels` VOD channels. Relays and VOD channels share one
 * measured scale: a relay is taken to cost what the priors say relative to a
 * VOD channel, times what the workers show of their mix.
 */

export type ChannelKind = 'vod' | 'relay';

/**
 * What a channel costs, in cores, before the workers say better. From the
 * benchmark of the data path of 934725c and d64c07a (bench/cpu-probe.js,
 * 360p, issue #16): a VOD channel 0.09 s of CPU per channel-minute (0.0015
 * cores), a relay 0.2 s (0.0033 cores). The prior is about 1.7× those, for a
 * start's own work and for heavier media than the probe's.
 */
export const priorCoresPerChannel: Readonly<Record<ChannelKind, number>> = Object.freeze({ vod: 0.0025, relay: 0.006 });

/** The prior weighs as much as this many VOD channels measured over a full window. */
export const priorWeightChannels = 10;

/**
 * No channel is taken to cost less than this share of its prior: a
 * measurement that says less (pipelines placed but not running yet, a stalled
 * worker) must not open the door to an unbounded burst. The benchmark's
 * channels cost 0.6× the prior, well above it.
 */
export const minShareOfPrior = 0.25;

/**
 * Time constant of the smoothing, ms: twice the machine load's (admission.ts).
 * What a channel costs changes slowly; a start's one-off work should fade
 * within half a minute rather than set the price of the next burst.
 */
export const costWindowMs = 10_000;

/** One worker process at one moment. */
export interface WorkerCpuSample {
  /** A new pid is a new process: its CPU time counts from its next sample on. */
  pid: number;
  /** utime + stime of the process so far, seconds. */
  cpuSeconds: number;
  /** Pipelines placed on it. */
  pipelines: number;
  /** Of those, relays; the rest are VOD channels. */
  relays: number;
}

interface Seen {
  cpuSeconds: number;
  /** Cores its pipelines would cost at the prior. */
  priorCores: number;
}

export class ChannelCostEstimator {
  readonly #seen = new Map<number, Seen>();
  #lastAtMs: number | null = null;
  /** Cores the hosting workers burnt, smoothed from zero (so its weight grows with time measured). */
  #measuredCores = 0;
  /** Cores the prior expected of their pipelines over the same intervals, smoothed alike. */
  #priorCores = 0;

  /**
   * Takes the workers' CPU times at `atMs`. Each worker's CPU over the interval
   * since its previous sample is set against its pipelines at both ends; a
   * worker hosting none at both ends is left out: its idle cost is the
   * service's, not a channel's.
   */
  observe(atMs: number, workers: readonly WorkerCpuSample[]): void {
    const spanMs = this.#lastAtMs === null ? 0 : atMs - this.#lastAtMs;
    let measured = 0;
    let prior = 0;
    const seen = new Map<number, Seen>();
    for (const w of workers) {
      const now: Seen = { cpuSeconds: w.cpuSeconds, priorCores: priorOf(w.pipelines, w.relays) };
      seen.set(w.pid, now);
      const before = this.#seen.get(w.pid);
      if (before === undefined || (before.priorCores === 0 && now.priorCores === 0)) continue;
      measured += Math.max(0, now.cpuSeconds - before.cpuSeconds);
      prior += ((before.priorCores + now.priorCores) / 2) * (spanMs / 1000);
    }
    this.#seen.clear();
    for (const [pid, s] of seen) this.#seen.set(pid, s);
    this.#lastAtMs = atMs;
    if (spanMs <= 0 || prior === 0) return;
    // Exponentially weighted, each interval weighing by the time it covers.
    const weight = 1 - Math.exp(-spanMs / costWindowMs);
    this.#measuredCores += weight * (measured / (spanMs / 1000) - this.#measuredCores);
    this.#priorCores += weight * (prior / (spanMs / 1000) - this.#priorCores);
  }

  /** Cores one more channel of this kind is expected to cost. */
  coresPerChannel(kind: ChannelKind): number {
    const pseudo = priorWeightChannels * priorCoresPerChannel.vod;
    const scale = (this.#measuredCores + pseudo) / (this.#priorCores + pseudo);
    return priorCoresPerChannel[kind] * Math.max(minShareOfPrior, scale);
  }
}

function priorOf(pipelines: number, relays: number): number {
  return (pipelines - relays) * priorCoresPerChannel.vod + relays * priorCoresPerChannel.relay;
}
