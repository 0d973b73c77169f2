/**
 * Per-channel series, labelled by channel id (and push-target index) only:
 * never a URL or a name. Fed by worker heartbeats (measurements made inside
 * the worker) and by channel status events (reconnects and restarts). A
 * channel that stops (STOPPED or ERROR) loses every series at once, so
 * cardinality follows the channels that run, not every channel that ever ran.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { StatusChange } from '../channels/events.js';
import type { LiveStatus } from '../channels/status.js';
import type { PipelineStats } from '../pool/pipeline-spec.js';
import { measurements } from './heartbeat-stats.js';

/** The one stutter definition, repeated in every help text that depends on it (see README). */
export const STUTTER_DEFINITION =
  'A channel stutters while its output runs behind real time by more than two frame durations, ' +
  'or delivers no media for longer than that; measured inside the worker from the pipeline\'s own timing, without decoding.';

/** Loop-boundary gaps, seconds: a frame or two is fine, whole seconds are a visible freeze. */
const gapBuckets = [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12];

const running: ReadonlySet<LiveStatus> = new Set<LiveStatus>(['STARTING', 'LIVING', 'RECONNECTING']);

/**
 * Last cumulative values seen from the channel's current pipeline. Counters
 * in the worker restart from zero with each new pipeline; the Prometheus
 * counters here only ever add the increase.
 */
interface Baseline {
  workerId: string | null;
  stutter: number;
  stalls: number;
  loops: number;
  frames: number;
  targets: Map<number, { bytes: number; errors: number }>;
}

export class ChannelMetrics {
  readonly #active = new Map<string, Baseline>();
  /** Target indices each active channel reported, across its pipelines: what removal must clear. */
  readonly #targetsSeen = new Map<string, Set<number>>();
  /** Channels whose gap histogram exists (zero() would wipe an existing one). */
  readonly #gapSeries = new Set<string>();
  readonly #stutter: Counter<'channel'>;
  readonly #stalls: Counter<'channel'>;
  readonly #lag: Gauge<'channel'>;
  readonly #position: Gauge<'channel'>;
  readonly #outputBytes: Counter<'channel'>;
  readonly #loops: Counter<'channel'>;
  readonly #frames: Counter<'channel'>;
  readonly #warnings: Gauge<'channel'>;
  readonly #gaps: Histogram<'channel'>;
  readonly #reconnects: Counter<'channel'>;
  readonly #restarts: Counter<'channel'>;
  readonly #memory: Gauge<'channel'>;
  readonly #targetBytes: Counter<'channel' | 'target'>;
  readonly #targetErrors: Counter<'channel' | 'target'>;
  readonly #targetBitrate: Gauge<'channel' | 'target'>;

  readonly #totals: TotalsSource | null;
  /** Last totals applied per channel, so the Prometheus counters add only the increase. */
  readonly #appliedTotals = new Map<string, CounterTotals>();

  /**
   * @param totals Per-channel totals over all the channel's pipelines (the
   *   pool's book, which also holds an ended pipeline's final numbers). Without
   *   it, counters follow the running pipeline's heartbeats and a pipeline's
   *   last moments (e.g. the stall that ended it) may be missed.
   */
  constructor(registry: Registry, totals: TotalsSource | null = null) {
    this.#totals = totals;
    const registers = [registry];
    const channel = ['channel'] as const;
    this.#stutter = new Counter({
      name: 'vlive_channel_stutter_seconds_total',
      help: `Seconds the channel stuttered. ${STUTTER_DEFINITION}`,
      labelNames: channel,
      registers,
    });
    this.#stalls = new Counter({
      name: 'vlive_channel_stalls_total',
      help: 'Times the worker watchdog found the channel\'s output stalled (no media for longer than two frame durations).',
      labelNames: channel,
      registers,
    });
    this.#lag = new Gauge({
      name: 'vlive_channel_output_lag_seconds',
      help: `How far the channel's output running time is behind wall time, seconds, at the last heartbeat. Stutter grows while this exceeds two frame durations. ${STUTTER_DEFINITION}`,
      labelNames: channel,
      registers,
    });
    this.#position = new Gauge({
      name: 'vlive_channel_position_seconds',
      help: 'Stream position of the channel\'s pipeline at the last heartbeat, seconds; rises across loops.',
      labelNames: channel,
      registers,
    });
    this.#outputBytes = new Counter({
      name: 'vlive_channel_output_bytes_total',
      help: 'Bytes the channel sent to the origin (push target 0); bitrate is rate(...) * 8.',
      labelNames: channel,
      registers,
    });
    this.#loops = new Counter({
      name: 'vlive_channel_loop_boundaries_total',
      help: 'Item boundaries a VOD channel crossed: from the end of its file (or playlist item) to the start of the next one, in the same publish session.',
      labelNames: channel,
      registers,
    });
    this.#warnings = new Gauge({
      name: 'vlive_channel_warnings',
      help: 'Warnings the channel has now (0 to 3): recording or snapshot faults (the live output is not affected; the tap retries by itself), playlist items missing (the slate plays in their place).',
      labelNames: channel,
      registers,
    });
    this.#frames = new Counter({
      name: 'vlive_channel_output_frames_total',
      help: 'Video frames (audio frames for audio-only media) the channel sent; frame rate out is rate(...). Frames the sink has passed, VOD and relays alike (the worker relays a live source\'s FLV itself). Counted without decoding.',
      labelNames: channel,
      registers,
    });
    this.#gaps = new Histogram({
      name: 'vlive_channel_loop_boundary_gap_seconds',
      help: 'Largest gap in any track at each item boundary of a VOD channel, seconds: the silence or stillness between the end of one item and the start of the next (or the same file again). Exact, from the timestamps the worker writes.',
      labelNames: channel,
      buckets: gapBuckets,
      registers,
    });
    this.#reconnects = new Counter({
      name: 'vlive_channel_reconnects_total',
      help: 'Times the channel went RECONNECTING after losing its pipeline or its worker, or to move to the other origin application after an hls change (from channel status events).',
      labelNames: channel,
      registers,
    });
    this.#restarts = new Counter({
      name: 'vlive_channel_restarts_total',
      help: 'Times the channel was LIVING again after RECONNECTING: a pipeline restarted successfully (from channel status events).',
      labelNames: channel,
      registers,
    });
    this.#memory = new Gauge({
      name: 'vlive_channel_memory_bytes',
      help: 'Estimate of the memory the channel adds to its worker, bytes: (worker PSS - idle worker PSS) / pipelines on that worker.',
      labelNames: channel,
      registers,
    });
    this.#targetBytes = new Counter({
      name: 'vlive_channel_target_bytes_total',
      help: 'Bytes sent to one push target of the channel; target 0 is the origin, 1..n the extra targets in their configured order.',
      labelNames: ['channel', 'target'] as const,
      registers,
    });
    this.#targetErrors = new Counter({
      name: 'vlive_channel_target_errors_total',
      help: 'Errors on one push target of the channel (a failed or dropped connection); target 0 is the origin.',
      labelNames: ['channel', 'target'] as const,
      registers,
    });
    this.#targetBitrate = new Gauge({
      name: 'vlive_channel_target_bitrate_bytes_per_second',
      help: 'Bytes per second handed to one push target of the channel over the last 5 s (the API gives bits: pushTargets.bitrateBps), measured in the worker at its heartbeat (the bytes of vlive_channel_target_bytes_total); 0 while the target retries. Target 0 is the origin.',
      labelNames: ['channel', 'target'] as const,
      registers,
    });
  }

  /** Channels with series right now. */
  active(): string[] {
    return [...this.#active.keys()];
  }

  onStatus(change: StatusChange): void {
    const id = change.id;
    // A viewer count says nothing about the pipeline; its baseline must stay.
    if (change.viewersOnly === true) return;
    if (!running.has(change.status)) {
      this.#remove(id);
      return;
    }
    this.#warnings.set({ channel: id }, change.warnings.length);
    // Same status: only the warnings changed.
    if (change.status === change.previous && change.status !== 'RECONNECTING') return;
    const known = this.#active.get(id);
    if (known === undefined) {
      // A channel started again continues the pool's totals; its new series start from 0.
      const now = this.#totals?.(id) ?? null;
      if (now !== null) this.#appliedTotals.set(id, { ...now, targets: now.targets.map((t) => ({ ...t })) });
      // Event-driven counters exist (at 0) from the moment the channel runs.
      this.#reconnects.inc({ channel: id }, 0);
      this.#restarts.inc({ channel: id }, 0);
    }
    // STARTING and RECONNECTING mean a new pipeline is coming, whose worker counters start at zero.
    if (known === undefined || change.status !== 'LIVING') this.#active.set(id, freshBaseline());
    if (change.status === 'RECONNECTING' && change.previous !== 'RECONNECTING') this.#reconnects.inc({ channel: id });
    if (change.status === 'LIVING' && change.previous === 'RECONNECTING') this.#restarts.inc({ channel: id });
  }

  /** One heartbeat of one worker; call once per heartbeat (gaps are per heartbeat, not cumulative). */
  onHeartbeat(workerId: string, stats: readonly PipelineStats[]): void {
    for (const s of stats) {
      // A terminal pipeline is an old instance on its way out; its channel's fate comes from status events.
      if (s.state !== 'starting' && s.state !== 'playing') continue;
      const base = this.#active.get(s.channelId);
      if (base === undefined) continue;
      if (base.workerId !== workerId) {
        const fresh = freshBaseline();
        fresh.workerId = workerId;
        this.#active.set(s.channelId, fresh);
        this.#record(s, fresh);
      } else {
        this.#record(s, base);
      }
    }
    this.applyTotals();
  }

  /** Brings the cumulative counters up to the pool's totals; a no-op without a totals source. */
  applyTotals(): void {
    if (this.#totals === null) return;
    for (const id of this.#active.keys()) {
      const now = this.#totals(id);
      if (now === null) continue;
      const last = this.#appliedTotals.get(id) ?? { stutterSeconds: 0, stallEvents: 0, loopBoundaries: 0, framesOut: 0, targets: [] };
      const labels = { channel: id };
      // The book never goes back; max() only guards against a forgotten and re-created entry.
      this.#stutter.inc(labels, Math.max(0, now.stutterSeconds - last.stutterSeconds));
      this.#stalls.inc(labels, Math.max(0, now.stallEvents - last.stallEvents));
      this.#loops.inc(labels, Math.max(0, now.loopBoundaries - last.loopBoundaries));
      if (now.framesOut > 0) this.#frames.inc(labels, Math.max(0, now.framesOut - last.framesOut));
      for (const t of now.targets) {
        const before = last.targets.find((x) => x.index === t.index) ?? { bytesSent: 0, errors: 0 };
        const bytes = Math.max(0, t.bytesSent - before.bytesSent);
        const tl = { channel: id, target: String(t.index) };
        this.#targetBytes.inc(tl, bytes);
        this.#targetErrors.inc(tl, Math.max(0, t.errors - before.errors));
        this.#targetBitrate.set(tl, t.bitrateBps / 8);
        if (t.index === 0) this.#outputBytes.inc(labels, bytes);
        this.#seeTarget(id, t.index);
      }
      this.#appliedTotals.set(id, { ...now, targets: now.targets.map((t) => ({ ...t })) });
    }
  }

  #seeTarget(channelId: string, index: number): void {
    let seen = this.#targetsSeen.get(channelId);
    if (seen === undefined) this.#targetsSeen.set(channelId, (seen = new Set()));
    seen.add(index);
  }

  setMemory(channelId: string, bytes: number): void {
    if (this.#active.has(channelId)) this.#memory.set({ channel: channelId }, bytes);
  }

  #record(stats: PipelineStats, base: Baseline): void {
    const m = measurements(stats);
    const labels = { channel: stats.channelId };
    if (m.positionSeconds !== null) this.#position.set(labels, m.positionSeconds);
    if (m.outputLagSeconds !== null) this.#lag.set(labels, m.outputLagSeconds);
    if (m.boundaryGapsSeconds !== null) {
      // Observe nothing yet still create the series, so "no gaps" reads as 0, not as missing.
      if (!this.#gapSeries.has(stats.channelId)) {
        this.#gaps.zero(labels);
        this.#gapSeries.add(stats.channelId);
      }
      for (const gap of m.boundaryGapsSeconds) this.#gaps.observe(labels, gap);
    }
    if (this.#totals !== null) return;
    if (m.stutterSeconds !== null) {
      this.#stutter.inc(labels, increase(base.stutter, m.stutterSeconds));
      base.stutter = m.stutterSeconds;
    }
    if (m.stallEvents !== null) {
      this.#stalls.inc(labels, increase(base.stalls, m.stallEvents));
      base.stalls = m.stallEvents;
    }
    if (m.loopBoundaries !== null) {
      this.#loops.inc(labels, increase(base.loops, m.loopBoundaries));
      base.loops = m.loopBoundaries;
    }
    if (m.framesOut !== null) {
      this.#frames.inc(labels, increase(base.frames, m.framesOut));
      base.frames = m.framesOut;
    }
    if (m.targets !== null) {
      for (const t of m.targets) {
        const tl = { channel: stats.channelId, target: String(t.index) };
        const last = base.targets.get(t.index) ?? { bytes: 0, errors: 0 };
        const bytes = increase(last.bytes, t.bytesSent);
        this.#targetBytes.inc(tl, bytes);
        this.#targetErrors.inc(tl, increase(last.errors, t.errors));
        this.#targetBitrate.set(tl, t.bitrateBps / 8);
        if (t.index === 0) this.#outputBytes.inc(labels, bytes);
        this.#seeTarget(stats.channelId, t.index);
        base.targets.set(t.index, { bytes: t.bytesSent, errors: t.errors });
      }
    }
  }

  #remove(id: string): void {
    if (!this.#active.delete(id)) return;
    const labels = { channel: id };
    for (const metric of [this.#stutter, this.#stalls, this.#outputBytes, this.#loops, this.#frames, this.#reconnects, this.#restarts]) metric.remove(labels);
    for (const metric of [this.#lag, this.#position, this.#memory, this.#warnings]) metric.remove(labels);
    this.#gaps.remove(labels);
    this.#gapSeries.delete(id);
    // Every target index the channel ever reported, across its pipelines.
    for (const index of this.#targetsSeen.get(id) ?? []) {
      this.#targetBytes.remove({ channel: id, target: String(index) });
      this.#targetErrors.remove({ channel: id, target: String(index) });
      this.#targetBitrate.remove({ channel: id, target: String(index) });
    }
    this.#targetsSeen.delete(id);
    this.#appliedTotals.delete(id);
  }
}

/** What WorkerPool.channelCounters returns; declared here so metrics do not depend on its presence. */
export interface CounterTotals {
  stutterSeconds: number;
  stallEvents: number;
  loopBoundaries: number;
  framesOut: number;
  targets: { index: number; bytesSent: number; errors: number; bitrateBps: number }[];
}

export type TotalsSource = (channelId: string) => CounterTotals | null;

function freshBaseline(): Baseline {
  return { workerId: null, stutter: 0, stalls: 0, loops: 0, frames: 0, targets: new Map() };
}

/** Increase of a worker-side cumulative value; a drop means the worker counter restarted from zero. */
function increase(last: number, current: number): number {
  return current >= last ? current - last : current;
}
