/**
 * Per-worker and pool-wide series, refreshed at scrape time: memory and CPU
 * are read from /proc when Prometheus asks, not cached from a heartbeat.
 * Workers are labelled by slot ("w0", "w1", …), which survives restarts, so
 * a crash-looping worker does not mint a new series per process.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { SlotState, WorkerInfo } from '../pool/pool.js';
import type { ChannelMetrics, CounterTotals } from './channels.js';
import { readCpuSeconds, readMemory } from '../procfs.js';

const slotStates: readonly SlotState[] = ['spawning', 'ready', 'stopping', 'exited', 'backoff'];

/** "w0.3" (slot 0, third process) → "w0". */
export function slotLabel(workerId: string): string {
  const dot = workerId.indexOf('.');
  return dot === -1 ? workerId : workerId.slice(0, dot);
}

export interface PoolSource {
  workers(): WorkerInfo[];
  capacity(): { total: number; used: number };
  /** Per-channel totals across the channel's pipelines, when the pool keeps them. */
  channelCounters?(channelId: string): CounterTotals | null;
}

export class PoolMetrics {
  readonly #source: PoolSource;
  readonly #channels: ChannelMetrics;
  readonly #rss: Gauge<'worker'>;
  readonly #pss: Gauge<'worker'>;
  readonly #idlePss: Gauge;
  readonly #pipelines: Gauge<'worker'>;
  readonly #restarts: Counter<'worker'>;
  readonly #cpu: Counter<'worker'>;
  readonly #workers: Gauge<'state'>;
  readonly #slots: Gauge;
  readonly #used: Gauge;
  readonly #lastRestarts = new Map<string, number>();
  readonly #lastCpu = new Map<string, { pid: number; seconds: number }>();
  #idlePssBytes: number | null = null;

  constructor(registry: Registry, source: PoolSource, channels: ChannelMetrics) {
    this.#source = source;
    this.#channels = channels;
    const registers = [registry];
    const worker = ['worker'] as const;
    this.#rss = new Gauge({
      name: 'vlive_worker_rss_bytes',
      help: 'Resident set size of the worker process, bytes (Rss of /proc/PID/smaps_rollup at scrape time).',
      labelNames: worker,
      registers,
    });
    this.#pss = new Gauge({
      name: 'vlive_worker_pss_bytes',
      help: 'Proportional set size of the worker process, bytes: private memory plus its share of shared pages (Pss of /proc/PID/smaps_rollup at scrape time).',
      labelNames: worker,
      registers,
    });
    this.#idlePss = new Gauge({
      name: 'vlive_worker_idle_pss_bytes',
      help: 'PSS of a ready worker hosting no pipeline, bytes, last seen; the base of the per-channel memory estimate.',
      registers,
    });
    this.#pipelines = new Gauge({
      name: 'vlive_worker_pipelines',
      help: 'Pipelines (channels) placed on the worker.',
      labelNames: worker,
      registers,
    });
    this.#restarts = new Counter({
      name: 'vlive_worker_restarts_total',
      help: 'Worker processes started in this slot after the first one (crashes, hangs, failed handshakes).',
      labelNames: worker,
      registers,
    });
    this.#cpu = new Counter({
      name: 'vlive_worker_cpu_seconds_total',
      help: 'User plus system CPU time of the worker processes in this slot, seconds (/proc/PID/stat).',
      labelNames: worker,
      registers,
    });
    this.#workers = new Gauge({
      name: 'vlive_workers',
      help: 'Worker slots by state: spawning, ready, stopping, exited, backoff (waiting out the crash-loop delay).',
      labelNames: ['state'] as const,
      registers,
    });
    this.#slots = new Gauge({
      name: 'vlive_pool_pipeline_slots',
      help: 'Pipeline slots of the ready workers: ready workers × maxPipelinesPerWorker.',
      registers,
    });
    this.#used = new Gauge({
      name: 'vlive_pool_pipelines',
      help: 'Pipeline slots in use across the ready workers.',
      registers,
    });
  }

  /** Reads /proc for every worker and sets every series; also the per-channel memory estimate. */
  async refresh(): Promise<void> {
    const workers = this.#source.workers();
    const readings = await Promise.all(
      workers.map(async (w) =>
        w.pid === null ? { memory: null, cpu: null } : { memory: await readMemory(w.pid), cpu: await readCpuSeconds(w.pid) },
      ),
    );

    const byState = new Map<SlotState, number>(slotStates.map((s) => [s, 0]));
    const idle: number[] = [];
    workers.forEach((w, i) => {
      const slot = slotLabel(w.id);
      const labels = { worker: slot };
      const r = readings[i];
      byState.set(w.state, (byState.get(w.state) ?? 0) + 1);
      this.#pipelines.set(labels, w.pipelines);
      this.#restarts.inc(labels, Math.max(0, w.restarts - (this.#lastRestarts.get(slot) ?? 0)));
      this.#lastRestarts.set(slot, Math.max(w.restarts, this.#lastRestarts.get(slot) ?? 0));
      if (r?.memory) {
        this.#rss.set(labels, r.memory.rssBytes);
        this.#pss.set(labels, r.memory.pssBytes);
        if (w.state === 'ready' && w.pipelines === 0 && w.stats.length === 0) idle.push(r.memory.pssBytes);
      } else if (w.pid === null) {
        // No process right now: no memory, rather than the last one's numbers.
        this.#rss.remove(labels);
        this.#pss.remove(labels);
      } else {
        this.#rss.set(labels, w.rssBytes);
      }
      if (r?.cpu !== null && r?.cpu !== undefined && w.pid !== null) {
        const last = this.#lastCpu.get(slot);
        // A new process in the slot counts from zero.
        const delta = last === undefined || last.pid !== w.pid ? r.cpu : r.cpu - last.seconds;
        this.#cpu.inc(labels, Math.max(0, delta));
        this.#lastCpu.set(slot, { pid: w.pid, seconds: r.cpu });
      } else {
        this.#cpu.inc(labels, 0);
      }
    });
    for (const [state, n] of byState) this.#workers.set({ state }, n);
    if (idle.length > 0) {
      this.#idlePssBytes = Math.min(...idle);
      this.#idlePss.set(this.#idlePssBytes);
    }

    const { total, used } = this.#source.capacity();
    this.#slots.set(total);
    this.#used.set(used);

    if (this.#idlePssBytes === null) return;
    workers.forEach((w, i) => {
      const pss = readings[i]?.memory?.pssBytes;
      const hosted = w.stats.filter((s) => s.state === 'starting' || s.state === 'playing');
      if (pss === undefined || hosted.length === 0) return;
      const each = Math.max(0, pss - (this.#idlePssBytes ?? pss)) / hosted.length;
      for (const s of hosted) this.#channels.setMemory(s.channelId, each);
    });
  }
}
