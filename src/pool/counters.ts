/**
 * Per-channel totals that survive pipeline restarts. A worker's numbers start
 * at 0 with each pipeline (and die with its worker); a channel that stalls,
 * is restarted by the channel layer and stalls again must show 2 stalls, and
 * its byte and stutter counters must never go back, or Prometheus counters
 * built on them would see resets that are not there.
 *
 * Each channel keeps `base` (sum of its ended pipelines' final numbers) and
 * `live` (the running pipeline's last heartbeat). A pipeline ends either with
 * a terminal 'pipeline' message that carries its final stats, or with its
 * worker's death, when the last heartbeat is all there is.
 */
import type { PipelineStats } from './pipeline-spec.js';

export interface ChannelCounters {
  /** Pipelines this channel has had in this pool, the running one included. */
  pipelines: number;
  stutterSeconds: number;
  stallEvents: number;
  loopBoundaries: number;
  /** Frames sent (VOD channels; 0 for live relays, which do not count them). */
  framesOut: number;
  /** Sum of every boundary gap measured, seconds. */
  boundaryGapSecondsTotal: number;
  /** By target index (0 = origin): bytes and errors summed over pipelines; bitrate the running pipeline's (0 without one). */
  targets: { index: number; bytesSent: number; errors: number; bitrateBps: number; lastError?: string; state?: 'connecting' | 'up' | 'retrying' }[];
}

interface Entry {
  base: ChannelCounters;
  live: PipelineStats | null;
  /** Gaps are reported once each (drained per heartbeat), so they are summed as they arrive. */
  gapSeconds: number;
}

function empty(): ChannelCounters {
  return { pipelines: 0, stutterSeconds: 0, stallEvents: 0, loopBoundaries: 0, framesOut: 0, boundaryGapSecondsTotal: 0, targets: [] };
}

function add(into: ChannelCounters, s: PipelineStats): void {
  into.stutterSeconds += s.stutterSeconds;
  into.stallEvents += s.stallEvents;
  into.loopBoundaries += s.loopBoundaries;
  into.framesOut += s.framesOut ?? 0;
  for (const t of s.targets) {
    let acc = into.targets.find((x) => x.index === t.index);
    if (acc === undefined) {
      acc = { index: t.index, bytesSent: 0, errors: 0, bitrateBps: 0 };
      into.targets.push(acc);
      into.targets.sort((a, b) => a.index - b.index);
    }
    acc.bytesSent += t.bytesSent;
    acc.errors += t.errors;
    // A rate, not a count: the latest pipeline's stands.
    acc.bitrateBps = t.bitrateBps;
    if (t.lastError !== undefined) acc.lastError = t.lastError;
    if (t.state !== undefined) acc.state = t.state;
  }
}

/** An ended pipeline sends nothing: its targets' bitrates drop to 0 until the next one reports. */
function idle(c: ChannelCounters): void {
  for (const t of c.targets) t.bitrateBps = 0;
}

export class ChannelCounterBook {
  readonly #entries = new Map<string, Entry>();

  #entry(channelId: string): Entry {
    let e = this.#entries.get(channelId);
    if (e === undefined) {
      e = { base: empty(), live: null, gapSeconds: 0 };
      this.#entries.set(channelId, e);
    }
    return e;
  }

  #gaps(e: Entry, s: PipelineStats): void {
    for (const g of s.boundaryGapsSeconds) e.gapSeconds += g;
  }

  /** A heartbeat's numbers for a running pipeline. */
  running(s: PipelineStats): void {
    const e = this.#entry(s.channelId);
    if (e.live === null) e.base.pipelines += 1;
    e.live = s;
    this.#gaps(e, s);
  }

  /** A pipeline's final numbers, from its terminal message. */
  ended(s: PipelineStats): void {
    const e = this.#entry(s.channelId);
    if (e.live === null) e.base.pipelines += 1; // ended before its first heartbeat
    e.live = null;
    this.#gaps(e, s);
    add(e.base, s);
    idle(e.base);
  }

  /** Its worker died: keep what its last heartbeat said. */
  lost(channelId: string): void {
    const e = this.#entries.get(channelId);
    if (e?.live == null) return;
    add(e.base, e.live);
    idle(e.base);
    e.live = null;
  }

  get(channelId: string): ChannelCounters | null {
    const e = this.#entries.get(channelId);
    if (e === undefined) return null;
    const out: ChannelCounters = { ...e.base, targets: e.base.targets.map((t) => ({ ...t })), boundaryGapSecondsTotal: e.gapSeconds };
    if (e.live !== null) add(out, e.live);
    return out;
  }

  forget(channelId: string): void {
    this.#entries.delete(channelId);
  }
}
