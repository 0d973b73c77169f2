/**
 * One channel's output inside a worker, as a closed-union state machine. It
 * publishes to target 0, the origin, from the worker's own event loop
 * (rtmp-output.ts: no GStreamer pipeline and no thread per channel), feeds
 * it FLV (a VOD channel's from vod-feeder.ts, a relay's from its live
 * source through live-feeder.ts), watches that media really reaches the
 * origin, and reports every change through `onState`.
 */
import { VliveError } from '../errors.js';
import type { Logger } from '../log.js';
import type { LiveSource, PipelineState, PipelineStats, SourceEvent, TargetStats } from '../pool/pipeline-spec.js';
import { viewTag } from '../media/flv-reader.js';
import { LiveFeeder } from './live-feeder.js';
import type { Templates } from '../gst/templates.js';
import { maskUrls } from '../gst/bus-errors.js';
import type { PipelinePlan } from './plan.js';
import type { MediaTag } from '../rtmp/chunks.js';
import { RtmpOutput } from './rtmp-output.js';
import { BitrateWindow } from './bitrate-window.js';
import { FlowWatch } from './flow-watch.js';
import { VodFeeder } from './vod-feeder.js';
import { Playout } from './playout.js';
import type { PlayoutCommand, PlayoutEvent, PlayoutItemRef, ReturnMode } from '../pool/playout-spec.js';
import type { ItemMedia, VodTimeline } from './vod-timeline.js';
import { VodCutIn } from './vod-cut-in.js';
import { LiveItems, type ListLayout } from './live-items.js';
import { applyProgramme, type ProgrammeClock } from './programme-clock.js';
import { LiveRun, type LiveRunDeps, type LiveRunPlan } from './live-run.js';
import type { ProgrammeSpec } from '../pool/pipeline-spec.js';

/**
 * connecting  publishing to the origin, waiting for the first media to reach it
 * playing     media flows
 * eos | error | stopped   terminal: the publish is closed
 */
export type Phase = 'connecting' | 'playing' | 'eos' | 'error' | 'stopped';

const legal: Readonly<Record<Phase, readonly Phase[]>> = {
  connecting: ['playing', 'eos', 'error', 'stopped'],
  playing: ['eos', 'error', 'stopped'],
  eos: [],
  error: [],
  stopped: [],
};

const reported: Readonly<Record<Phase, PipelineState>> = {
  connecting: 'starting',
  playing: 'playing',
  eos: 'eos',
  error: 'error',
  stopped: 'stopped',
};

/**
 * A finished (non-looping) VOD channel ends this long after its last tag
 * reached the kernel, so the last frames reach the origin before the unpublish.
 */
const vodTailMs = 300;

/** The longest batch period: 40 ms keeps three frames of slack at 25 fps for a late tick. */
export const maxOutputPeriodMs = 40;

/** A channel's batch period: 1.5 frames, at most maxOutputPeriodMs (see rtmp-output.ts). */
export function outputPeriodMs(frameDurationSeconds: number, maxMs = maxOutputPeriodMs): number {
  return Math.max(5, Math.min(maxMs, Math.floor(frameDurationSeconds * 1500)));
}

export interface ChannelPipelineDeps {
  readonly channelId: string;
  readonly plan: PipelinePlan;
  /** The output timeline of a VOD channel (plan.vod); null for live sources. */
  readonly vod: VodTimeline | null;
  /** A VOD channel's live items (live-items.ts); null without any. */
  readonly liveItems?: { readonly layout: ListLayout } | null;
  /** A VOD channel's slate, which stands in for a live item's source or a programme's live-source entry's; null: none. */
  readonly slate?: readonly ItemMedia[] | null;
  /** A relay's first source (plan.live) and its fallback slate's media; null for VOD. */
  readonly live: { source: LiveSource; slate: readonly ItemMedia[] | null } | null;
  readonly templates: Templates;
  readonly startTimeoutMs: number;
  /** A playing output whose media stands still this long fails as stalled. */
  readonly stallTimeoutMs: number;
  /** Frame duration the stutter tolerance assumes, seconds. */
  readonly frameDurationSeconds: number;
  /** Upper bound of the batch period, ms (default maxOutputPeriodMs). */
  readonly maxPeriodMs?: number;
  readonly log: Logger;
  /** Called on every change of the reported state, in order. */
  readonly onState: (state: PipelineState, error?: string) => void;
  /** A relay's source went down, came back, or a candidate failed; the output plays on. */
  readonly onSource: (event: SourceEvent) => void;
  /** Each batch sent to target 0, for the other targets. */
  readonly onBatch?: (batch: readonly MediaTag[]) => void;
  /** A VOD channel's item went on air, or a playout command was answered (playout.ts). */
  readonly onPlayout?: (event: PlayoutEvent) => void;
  /** A live item's source is not on air at its time (why), or that is over (null): the channel's warnings. */
  readonly onLiveItemWarning?: (message: string | null) => void;
}

export class ChannelPipeline {
  readonly channelId: string;
  readonly #deps: ChannelPipelineDeps;
  #phase: Phase;
  readonly #output: RtmpOutput;
  /** What the origin receives, when: proof of flow, stutter and the stall watchdog (flow-watch.ts). */
  readonly #flow: FlowWatch;
  #feeder: VodFeeder | null = null;
  #playout: Playout | null = null;
  #live: LiveFeeder | null = null;
  /** A VOD channel's live cut-ins (vod-cut-in.ts); every tag of a VOD channel goes out through it. */
  #cutIn: VodCutIn | null = null;
  #liveItems: LiveItems | null = null;
  #programme: ProgrammeClock | null = null;
  /** A programme's live-source entry, due or on air. */
  #programmeLive: LiveRun | null = null;
  /** Wall ms at which a finished VOD channel reports eos. */
  #endAtMs: number | null = null;
  readonly #target: TargetStats = { index: 0, bytesSent: 0, errors: 0, bitrateBps: 0 };
  readonly #bitrate = new BitrateWindow();
  #startTimer: NodeJS.Timeout | null = null;
  #closing: Promise<void> | null = null;

  constructor(deps: ChannelPipelineDeps) {
    this.#deps = deps;
    this.channelId = deps.channelId;
    this.#phase = 'connecting';
    this.#flow = new FlowWatch(deps.frameDurationSeconds, deps.stallTimeoutMs);
    this.#output = new RtmpOutput({
      url: deps.plan.target,
      timeoutMs: deps.startTimeoutMs,
      periodMs: outputPeriodMs(deps.frameDurationSeconds, deps.maxPeriodMs),
      onFlushed: (wallMs, mediaMs, frames) => this.#onFlushed(wallMs, mediaMs, frames),
      onClosed: (err) => {
        this.#countTargetError(err.message);
        this.#fail(maskUrls(`target 0: ${err.message}`));
      },
      ...(deps.onBatch !== undefined ? { onBatch: deps.onBatch } : {}),
    });
  }

  get phase(): Phase {
    return this.#phase;
  }

  get state(): PipelineState {
    return reported[this.#phase];
  }

  get terminal(): boolean {
    return legal[this.#phase].length === 0;
  }

  /**
   * The numbers as of the last flush (no I/O). Takes the boundary gaps
   * measured since the previous call: each gap is reported once.
   */
  stats(): PipelineStats {
    this.#target.bytesSent = this.#output.bytesSent;
    this.#target.bitrateBps = this.terminal ? 0 : this.#bitrate.sample(performance.now(), this.#target.bytesSent);
    return {
      channelId: this.channelId,
      state: this.state,
      positionSeconds: this.terminal || this.#flow.positionMs < 0 ? -1 : this.#flow.positionMs / 1000,
      outputLagSeconds: this.#flow.lagSeconds,
      stutterSeconds: this.#flow.stutterSeconds,
      stallEvents: this.#flow.stalls + (this.#live?.stallEvents ?? 0),
      loopBoundaries: this.#feeder?.boundaries ?? 0,
      boundaryGapsSeconds: this.#feeder?.takeGaps() ?? [],
      framesOut: this.#feeder?.framesOut ?? this.#live?.framesOut ?? null,
      targets: [{ ...this.#target }],
    };
  }

  /** The one place the phase changes. Illegal moves are bugs and throw. */
  #to(next: Phase, error?: string): void {
    const from = this.#phase;
    if (!legal[from].includes(next)) throw new VliveError('INVALID_STATE', `pipeline ${this.channelId}: illegal move ${from} -> ${next}`);
    this.#phase = next;
    this.#deps.log.debug('pipeline phase', { channel: this.channelId, from, to: next, ...(error !== undefined ? { error } : {}) });
    if (reported[from] !== reported[next]) {
      if (error !== undefined) this.#deps.onState(reported[next], error);
      else this.#deps.onState(reported[next]);
    }
  }

  /** Starts the channel. Reports 'starting' first, or only 'error' when it cannot even be built. */
  start(): void {
    const { plan } = this.#deps;
    try {
      if (plan.vod) {
        if (this.#deps.vod === null) throw new Error('a VOD plan needs its timeline');
        const timeline = this.#deps.vod;
        const cutIn = new VodCutIn({
          channelId: this.channelId,
          timeline,
          feeder: () => this.#feeder,
          playout: () => this.#playout,
          templates: this.#deps.templates,
          stallTimeoutMs: this.#deps.stallTimeoutMs,
          log: this.#deps.log,
          push: (tag) => this.#output.push(tag),
          clockMs: () => this.#output.clockMs(),
          epochMs: (outputMs) => this.#epochMs(outputMs),
          send: (e) => this.#deps.onPlayout?.(e),
        });
        this.#cutIn = cutIn;
        const items = this.#deps.liveItems ?? null;
        const feeder = new VodFeeder({
          timeline,
          push: (tag, timeMs) => cutIn.send(viewTag(tag, timeMs)),
          leadMs: this.#output.leadMs,
          onBoundary: (step) => {
            this.#liveItems?.onBoundary(step);
            this.#programme?.onBoundary(step);
            // A programme's cut shortens the item that opens.
            this.#playout?.onBoundary(this.#programme === null ? step : { ...step, periodMs: timeline.periodMs - step.fromMs });
          },
          cues: { indexOf: (p) => items?.layout.indexOf(p) ?? p, onCue: (cue, keyframeMs) => this.#playout?.addCue(cue, keyframeMs), breaksFor: () => this.#programme?.breaksNow() },
        });
        this.#feeder = feeder;
        const onPlayout = this.#deps.onPlayout;
        if (onPlayout !== undefined) {
          const layout = items === null ? {} : { indexOf: (p: number) => items.layout.indexOf(p), liveAfter: (p: number) => liveRef(items.layout, p) };
          this.#playout = new Playout({ timeline, startedAtMs: () => feeder.startedAtMs, send: onPlayout, ...layout });
        }
        if (items !== null) {
          this.#liveItems = new LiveItems({ ...this.#liveRunDeps(cutIn, this.#deps.slate ?? null), layout: items.layout });
          this.#liveItems.begin();
        }
      } else {
        if (this.#deps.live === null) throw new Error('a live plan needs its source');
        this.#live = new LiveFeeder({
          channelId: this.channelId,
          initial: this.#deps.live.source,
          slate: this.#deps.live.slate,
          templates: this.#deps.templates,
          stallTimeoutMs: this.#deps.stallTimeoutMs,
          log: this.#deps.log,
          push: (tag) => this.#output.push(tag),
          clockMs: () => this.#output.clockMs(),
          onReady: () => this.#publish(),
          onEvent: (e) => {
            if (!this.terminal && this.#closing === null) this.#deps.onSource(e);
          },
          onFatal: (reason) => this.#fail(reason),
        });
      }
    } catch (err) {
      this.#fail(maskUrls(`cannot build the channel: ${(err as Error).message}`));
      return;
    }
    this.#deps.onState('starting');
    this.#startTimer = setTimeout(() => {
      if (this.#phase === 'connecting') this.#fail(`no media reached target 0 within ${Math.round(this.#deps.startTimeoutMs / 1000)} s`);
    }, this.#deps.startTimeoutMs);
    // A relay's output starts like a VOD channel's, with its first media in
    // hand: the source first, then the publish once it has a keyframe.
    if (this.#live !== null) this.#live.begin(performance.now());
    else this.#publish();
  }

  /** Publishes to the origin; the first media goes out as soon as it has accepted. */
  #publish(): void {
    if (this.terminal || this.#closing !== null || this.#output.started) return;
    this.#output.start().then(
      () => {
        if (this.terminal || this.#closing !== null) return;
        const now = performance.now();
        try {
          this.#feeder?.begin(now);
        } catch (err) {
          this.#fail(`source: ${(err as Error).message}`);
          return;
        }
        this.#live?.open();
        this.#output.pace(now, true);
      },
      (err: unknown) => {
        if (this.#closing !== null) return; // stopped while connecting: the stop reports
        this.#countTargetError((err as Error).message);
        this.#fail(maskUrls(`target 0: ${(err as Error).message}`));
      },
    );
  }

  /** A relay's next source (a reconnect, a failover, a switch back). False when this is not a running relay. */
  setSource(source: LiveSource, mode: 'replace' | 'candidate'): boolean {
    if (this.#live === null || this.terminal || this.#closing !== null) return false;
    this.#live.setSource(source, mode, performance.now());
    return true;
  }

  /**
   * A new playlist for a running VOD channel; it takes effect at the next item
   * boundary. With a programme (the service sends it once the channel is
   * LIVING): from its next slot, the item playing cut for it (the first time,
   * the item playing is taken as filler: joinTurn). Without one, a programme
   * the channel had ends after the item playing.
   */
  setItems(items: readonly ItemMedia[], loop: boolean, programme: ProgrammeSpec | null = null): void {
    if (this.#feeder === null || this.#deps.vod === null) throw new Error('only a VOD channel has a playlist');
    this.#feeder.setItems(items, loop);
    const programmed = programme !== null || this.#programme !== null;
    const clock = {
      channelId: this.channelId,
      timeline: this.#deps.vod,
      // The pacing clock against the wall clock, read at each decision.
      epochZeroMs: () => this.#epochZeroMs() ?? Date.now(),
      log: this.#deps.log,
      startLive: (plan: LiveRunPlan) => {
        const cutIn = this.#cutIn;
        if (cutIn === null) return;
        this.#programmeLive = new LiveRun(this.#liveRunDeps(cutIn, this.#deps.slate ?? null), plan);
      },
    };
    this.#programme = applyProgramme(this.#programme, programme, clock);
    this.#playout?.listChanged(programmed);
  }

  /** A skip or jump of a VOD channel, answered through onPlayout; false when this is not a running VOD channel. */
  playout(requestId: number, command: PlayoutCommand): boolean {
    if (this.#playout === null || this.terminal || this.#closing !== null) return false;
    if (this.#cutIn?.active === true || this.#liveItems !== null || this.#programme !== null) {
      const error =
        this.#programme !== null ? 'skip and jump are not available on a channel run from a programme' : this.#liveItems !== null ? 'skip and jump are not available in a playlist with live items' : 'a live cut-in is on: return to the playlist first';
      this.#deps.onPlayout?.({ kind: 'refused', requestId, error });
      return true;
    }
    this.#playout.command(requestId, command);
    return true;
  }

  /**
   * A live cut-in of a running VOD channel (vod-cut-in.ts): the source
   * replaces the playlist at its first keyframe; answered through onPlayout.
   * False when this is not a running VOD channel.
   */
  takeLive(requestId: number, source: LiveSource, slate: readonly ItemMedia[] | null): boolean {
    if (this.#cutIn === null || this.terminal || this.#closing !== null || !this.#output.started) return false;
    if (this.#liveItems !== null || this.#programme !== null) {
      this.#deps.onPlayout?.({ kind: 'refused', requestId, error: this.#programme !== null ? 'a channel run from a programme takes no cut-in' : 'a playlist with live items takes no cut-in' });
      return true;
    }
    this.#cutIn.takeLive(requestId, source, slate);
    return true;
  }

  /** Ends the cut-in: back to the playlist (resume or wallclock); answered through onPlayout. False when this is not a running VOD channel. */
  returnToPlaylist(requestId: number, mode: ReturnMode): boolean {
    if (this.#cutIn === null || this.terminal || this.#closing !== null) return false;
    this.#cutIn.returnToPlaylist(requestId, mode);
    return true;
  }

  /** What a live source played between VOD items needs (a live item's, a programme entry's). */
  #liveRunDeps(cutIn: VodCutIn, slate: readonly ItemMedia[] | null): LiveRunDeps {
    if (this.#deps.vod === null) throw new Error('only a VOD channel plays live sources between its items');
    return {
      channelId: this.channelId,
      timeline: this.#deps.vod,
      cutIn,
      playout: () => this.#playout,
      slate,
      clockMs: () => this.#output.clockMs(),
      log: this.#deps.log,
      warn: (message) => this.#deps.onLiveItemWarning?.(message),
    };
  }

  /** Output ms → wall clock ms since the epoch. */
  #epochMs(outputMs: number): number {
    const zero = this.#epochZeroMs();
    return Math.round(zero === null ? Date.now() : zero + outputMs);
  }

  /** Wall clock (ms since the epoch) of output time 0: the pacing clock read against the wall clock now; null before the feeder began. */
  #epochZeroMs(): number | null {
    const started = this.#feeder?.startedAtMs ?? null;
    return started === null ? null : Date.now() - performance.now() + started;
  }

  #countTargetError(text: string): void {
    this.#target.errors += 1;
    this.#target.lastError = maskUrls(text).slice(0, 500);
  }

  /**
   * The pace tick (the host's, for all channels): reads what the VOD feeder
   * owes and sends what is due. Cheap when nothing is due.
   */
  pace(nowMs: number): void {
    if (this.terminal || this.#closing !== null || !this.#output.started) return;
    const feeder = this.#feeder;
    this.#liveItems?.tick();
    const live = this.#programmeLive;
    if (live?.tick() === true) {
      this.#programmeLive = null;
      live.end();
    }
    // A cut-in that joined holds the playlist where it was left.
    if (feeder !== null && this.#cutIn?.holdsPlaylist !== true) {
      try {
        feeder.fill(nowMs);
      } catch (err) {
        this.#fail(`source: ${(err as Error).message}`);
        return;
      }
    }
    this.#output.pace(nowMs);
  }

  /** A batch reached the kernel: the output's real progress, timed where it happened. */
  #onFlushed(wallMs: number, mediaMs: number, frames: boolean): void {
    if (this.terminal) return;
    this.#flow.flushed(wallMs, mediaMs);
    // 'playing' means a frame is at the origin's socket: not just an accepted publish,
    // nor only the onMetaData and sequence headers a relay sends ahead of its keyframe.
    if (this.#phase === 'connecting' && frames && this.#closing === null) {
      if (this.#startTimer !== null) clearTimeout(this.#startTimer);
      this.#startTimer = null;
      this.#to('playing');
    }
  }

  /**
   * One measurement, driven by the host's sampler: the relay's source
   * watchdogs, frames out, the end of a finished file, and the stall
   * watchdog.
   */
  sample(nowMs: number): void {
    if (this.terminal || this.#closing !== null) return;
    const pos = this.#flow.positionMs;
    this.#live?.sample(nowMs, pos < 0 ? null : pos);
    this.#cutIn?.sample(nowMs, pos < 0 ? null : pos);
    if (this.terminal || this.#phase !== 'playing') return;
    this.#flow.judge(nowMs);
    const feeder = this.#feeder;
    if (feeder !== null) {
      feeder.observe(pos);
      this.#playout?.observe(pos);
      // The last tag is out: no more progress is expected, so no stall either.
      if (feeder.ended && this.#cutIn?.active !== true && this.#endAtMs === null && pos >= feeder.lastTimeMs) this.#endAtMs = nowMs + vodTailMs;
    }
    if (this.#endAtMs !== null) {
      if (nowMs >= this.#endAtMs) this.#finish();
      return;
    }
    // A relay waiting for its next source is not stalled: the source's own
    // watchdogs (relay-source.ts) judge sources, and the channel layer retries.
    const stillMs = this.#flow.stalledFor(nowMs, (this.#live !== null && !this.#live.flowing) || this.#cutIn?.waiting === true);
    if (stillMs !== null) this.#fail(`stalled: no media progress for ${Math.round(stillMs)} ms (${this.#output.bytesPending} bytes not taken by the origin)`);
  }

  /** Ends the feeders and the publish; `flush` lets what was sent leave first. */
  #halt(flush: boolean): Promise<void> {
    if (this.#startTimer !== null) clearTimeout(this.#startTimer);
    this.#startTimer = null;
    this.#feeder?.close();
    this.#playout?.close('the channel stopped');
    this.#live?.close();
    this.#cutIn?.close();
    this.#closing ??= this.#output.close(flush);
    return this.#closing;
  }

  #fail(error: string): void {
    if (this.terminal) return;
    void this.#halt(false);
    this.#deps.log.warn('pipeline failed', { channel: this.channelId, phase: this.#phase, error });
    this.#to('error', error);
  }

  #finish(): void {
    void this.#halt(true);
    this.#to('eos');
  }

  /**
   * Stops the channel: the publish ends once what was sent has left (a
   * graceful stop), or at once with `{ now: true }` (a fence: the publisher
   * must be gone before another node may take the channel). Resolves once
   * the socket is closed. Safe in any phase. Always true: nothing here holds
   * a thread (the signature is the one the host waits on for pipelines that do).
   */
  async stop(opts: { now?: boolean } = {}): Promise<boolean> {
    await this.#halt(opts.now !== true);
    // Reported only now, so 'stopped' means the socket and the files are given back.
    if (!this.terminal) this.#to('stopped');
    return true;
  }
}

/** The live item after the timeline's `position`, as playout refers to it. */
function liveRef(layout: ListLayout, position: number): PlayoutItemRef | null {
  const l = layout.liveAfter(position);
  return l === null ? null : { index: l.index, itemId: l.id };
}
