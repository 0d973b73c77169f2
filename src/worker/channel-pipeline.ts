/**
 * One channel's output pipeline inside a worker, as a closed-union state
 * machine. It builds the pipeline from a plan, drives it to PLAYING, feeds
 * it FLV (a VOD channel's from vod-feeder.ts, a relay's from its live
 * source through live-feeder.ts), watches that media really reaches target
 * 0, and reports every change through `onState`.
 */
import type { Logger } from '../log.js';
import type { LiveSource, PipelineState, PipelineStats, SourceEvent, TargetStats } from '../pool/ipc.js';
import { LiveFeeder } from './live-feeder.js';
import type { Templates } from '../gst/templates.js';
import { describeBusError, maskUrls } from './bus-errors.js';
import { NativeError, Pipeline, type BusMessage, type GstElement } from './native.js';
import type { PipelinePlan } from './plan.js';
import { applyProperties } from './properties.js';
import { outBytes } from './rtmp2.js';
import { StutterMeter } from './stutter-meter.js';
import { VodFeeder } from './vod-feeder.js';
import type { ItemMedia, VodTimeline } from './vod-timeline.js';

/**
 * connecting  play() issued, waiting for PLAYING and bytes flowing to target 0
 * playing     media flows
 * eos | error | stopped   terminal: the GStreamer pipeline is at NULL
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
 * Sink byte counters are read on every this-many samples. Each read copies
 * the sink's stats structure through the binding (which leaked it until
 * patches/gstreamer-superficial-1.7.4-leaks.patch), and a byte counter only
 * needs to prove flow, not time it: position does the timing.
 */
export const bytesEverySamples = 5;
/** How long a stop waits for RTMP connects in flight (see #settleConnects), and how often it looks. */
const connectSettleMs = 1000;
const connectPollMs = 5;
/**
 * How long a stopped pipeline may take to hand its bus thread back. It only
 * needs one bus message, which set_state(NULL) posts itself, so this is a
 * guard against a binding surprise, not an expected wait.
 */
const busReleaseTimeoutMs = 2000;
/**
 * A finished (non-looping) VOD channel ends this long after the sink reached
 * its last tag, so the last frames leave the socket before the unpublish.
 */
const vodTailMs = 300;

export interface ChannelPipelineDeps {
  readonly channelId: string;
  readonly plan: PipelinePlan;
  /** The output timeline of a VOD channel (plan.vod); null for live sources. */
  readonly vod: VodTimeline | null;
  /** A relay's first source (plan.live) and its fallback slate's media; null for VOD. */
  readonly live: { source: LiveSource; slate: readonly ItemMedia[] | null } | null;
  readonly templates: Templates;
  readonly startTimeoutMs: number;
  /** A playing pipeline whose position or origin bytes stand still this long fails as stalled. */
  readonly stallTimeoutMs: number;
  /** Frame duration the stutter tolerance assumes, seconds. */
  readonly frameDurationSeconds: number;
  readonly log: Logger;
  /** Called on every change of the reported state, in order. */
  readonly onState: (state: PipelineState, error?: string) => void;
  /** A relay's source went down, came back, or a candidate failed; the output plays on. */
  readonly onSource: (event: SourceEvent) => void;
}

export class ChannelPipeline {
  readonly channelId: string;
  readonly #deps: ChannelPipelineDeps;
  #phase: Phase;
  #pipeline: Pipeline | null = null;
  /** By target index. */
  #sinks: GstElement[] = [];
  #reachedPlaying = false;
  /** performance.now() when the pipeline reached PLAYING: the origin of its running time. */
  #playingAt: number | null = null;
  #lastBytes: number | null = null;
  #lastPosition: number | null = null;
  #samples = 0;
  // Output timing, from the moment the pipeline is 'playing'.
  #stutter: StutterMeter;
  #feeder: VodFeeder | null = null;
  #live: LiveFeeder | null = null;
  /** Wall ms at which a finished VOD channel reports eos. */
  #endAtMs: number | null = null;
  #targets: TargetStats[];
  #stallEvents = 0;
  /** Wall ms when the position / origin bytes last moved forward while playing. */
  #positionMovedAt = 0;
  #bytesMovedAt = 0;
  #maxPosition = -1;
  #timers: NodeJS.Timeout[] = [];
  /** Set while GStreamer has the pipeline at NULL and its poller may still hold a thread. */
  #release: { promise: Promise<void>; resolve: () => void } | null = null;
  #inBusCallback = false;
  #polling = false;
  /** stop() was called and waits for in-flight RTMP connects before halting. */
  #stopping = false;
  #connectsSettled = false;

  constructor(deps: ChannelPipelineDeps) {
    this.#deps = deps;
    this.channelId = deps.channelId;
    this.#phase = 'connecting';
    this.#stutter = new StutterMeter(deps.frameDurationSeconds);
    this.#targets = deps.plan.sinks.map((_, index) => ({ index, bytesSent: 0, errors: 0 }));
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
   * The numbers as of the last sample (no GStreamer call). Takes the boundary
   * gaps measured since the previous call: each gap is reported once.
   */
  stats(): PipelineStats {
    return {
      channelId: this.channelId,
      state: this.state,
      positionSeconds: this.terminal ? -1 : (this.#lastPosition ?? -1),
      outputLagSeconds: this.#stutter.outputLagSeconds,
      stutterSeconds: this.#stutter.stutterSeconds,
      stallEvents: this.#stallEvents + (this.#live?.stallEvents ?? 0),
      loopBoundaries: this.#feeder?.boundaries ?? 0,
      boundaryGapsSeconds: this.#feeder?.takeGaps() ?? [],
      framesOut: this.#feeder?.framesOut ?? this.#live?.framesOut ?? null,
      targets: this.#targets.map((t) => ({ ...t })),
    };
  }

  /** The one place the phase changes. Illegal moves are bugs and throw. */
  #to(next: Phase, error?: string): void {
    const from = this.#phase;
    if (!legal[from].includes(next)) throw new Error(`pipeline ${this.channelId}: illegal move ${from} -> ${next}`);
    this.#phase = next;
    this.#deps.log.debug('pipeline phase', { channel: this.channelId, from, to: next, ...(error !== undefined ? { error } : {}) });
    if (reported[from] !== reported[next]) {
      if (error !== undefined) this.#deps.onState(reported[next], error);
      else this.#deps.onState(reported[next]);
    }
  }

  /**
   * Builds and starts the pipeline. Reports 'starting' first, or only
   * 'error' when the pipeline cannot even be built.
   */
  start(): void {
    const { plan } = this.#deps;
    let pipeline: Pipeline;
    try {
      pipeline = Pipeline.parse(plan.launch);
      applyProperties(pipeline, this.#deps.plan.properties);
      this.#sinks = plan.sinks.map((name) => pipeline.element(name));
      const appsrc = pipeline.element('mux');
      const push = (tag: Buffer, timeMs: number): void => appsrc.push(tag, BigInt(timeMs) * 1_000_000n);
      if (plan.vod) {
        if (this.#deps.vod === null) throw new Error('a VOD plan needs its timeline');
        this.#feeder = new VodFeeder({ timeline: this.#deps.vod, push });
      } else {
        if (this.#deps.live === null) throw new Error('a live plan needs its source');
        this.#live = new LiveFeeder({
          channelId: this.channelId,
          initial: this.#deps.live.source,
          slate: this.#deps.live.slate,
          templates: this.#deps.templates,
          stallTimeoutMs: this.#deps.stallTimeoutMs,
          log: this.#deps.log,
          push,
          clockMs: () => (this.#playingAt === null ? 0 : performance.now() - this.#playingAt),
          onReady: () => this.#play(),
          onEvent: (e) => {
            if (!this.terminal && !this.#stopping) this.#deps.onSource(e);
          },
          onFatal: (reason) => this.#fail(reason),
        });
      }
    } catch (err) {
      const msg = err instanceof NativeError ? err.message : `cannot build the pipeline: ${(err as Error).message}`;
      this.#fail(maskUrls(msg));
      return;
    }
    this.#pipeline = pipeline;
    this.#deps.onState('starting');
    this.#timers.push(
      setTimeout(() => {
        if (this.#phase === 'connecting') {
          this.#fail(`no media reached target 0 within ${Math.round(this.#deps.startTimeoutMs / 1000)} s`);
        }
      }, this.#deps.startTimeoutMs),
    );
    // A relay's output starts like a VOD channel's, with its first media in
    // hand: the source first, then the output once it has a keyframe.
    if (this.#live !== null) this.#live.begin(performance.now());
    else this.#play();
  }

  /**
   * Starts the output. Its first tags go in when it is PAUSED, before its
   * clock runs (see #onBus), so its running time starts with them and the
   * sink renders by timestamp from the first tag on. Started before them, a
   * live pipeline's clock runs ahead of its timestamps, the sink renders
   * every tag late, and its position only moves tag by tag (the relay probe
   * saw 1 % stutter from that alone).
   */
  #play(): void {
    const pipeline = this.#pipeline;
    if (pipeline === null || this.terminal || this.#stopping || this.#polling) return;
    pipeline.pollBus((m) => {
      this.#inBusCallback = true;
      try {
        this.#onBus(m);
      } finally {
        this.#inBusCallback = false;
      }
    });
    this.#polling = true;
    pipeline.play();
  }

  /** A relay's next source (a reconnect, a failover, a switch back). False when this is not a running relay. */
  setSource(source: LiveSource, mode: 'replace' | 'candidate'): boolean {
    if (this.#live === null || this.terminal || this.#stopping) return false;
    this.#live.setSource(source, mode, performance.now());
    return true;
  }

  /** A new playlist for a running VOD channel; it takes effect at the next item boundary. */
  setItems(items: readonly ItemMedia[], loop: boolean): void {
    if (this.#feeder === null) throw new Error('only a VOD channel has a playlist');
    this.#feeder.setItems(items, loop);
  }

  #onBus(m: BusMessage): void {
    if (this.#release !== null) {
      // First message after set_state(NULL): the binding sees NULL after this
      // callback and stops re-queuing, so the thread is back in the pool.
      this.#release.resolve();
      return;
    }
    if (this.terminal) return;
    if (this.#stopping) {
      // A stop is waiting for the sinks' connects; a failed one is settled too.
      if (m.type === 'error') this.#connectsSettled = true;
      return;
    }
    const pipeline = this.#pipeline;
    if (pipeline === null) return;
    switch (m.type) {
      case 'error':
        this.#countTargetError(m.source, describeBusError(m));
        this.#fail(describeBusError(m));
        return;
      case 'warning':
        this.#countTargetError(m.source, maskUrls(m.debug ?? 'warning'));
        this.#deps.log.debug('pipeline warning', { channel: this.channelId, source: m.source, debug: maskUrls(m.debug ?? '') });
        return;
      case 'eos':
        // A file that ended is done. The output of a relay never ends by
        // itself (its source's end is a source event): if it does, retry.
        if (this.#deps.plan.live) this.#fail('output: the stream ended');
        else this.#finish('eos');
        return;
      case 'state-changed':
        if (!/^pipeline\d+$/.test(m.source)) return;
        // A live appsrc only starts once the pipeline is PAUSED, and the sink
        // only lets the pipeline reach PLAYING once it has a buffer: feed now.
        if (m.newState === 'GST_STATE_PAUSED') {
          this.#feed(performance.now(), true);
          this.#live?.open();
        }
        if (m.newState === 'GST_STATE_PLAYING') {
          this.#reachedPlaying = true;
          // The pipeline's running time starts about now (base time is set on the way to PLAYING).
          this.#playingAt ??= performance.now();
        }
        return;
      case 'other':
        return;
    }
  }

  #countTargetError(source: string, text: string): void {
    const m = /^(?:sink|queue)(\d+)$/.exec(source);
    const t = m?.[1] !== undefined ? this.#targets[Number(m[1])] : undefined;
    if (t === undefined) return;
    t.errors += 1;
    t.lastError = text.slice(0, 500);
  }

  /**
   * One measurement, driven by the host's single timer for all pipelines.
   * Reads the position (and, every few samples, the sinks' byte counters),
   * moves 'connecting' to 'playing' once media really flows, feeds the
   * meters, and fires the stall watchdog.
   */
  sample(nowMs: number): void {
    const pipeline = this.#pipeline;
    if (this.terminal || this.#stopping || pipeline === null) return;
    this.#feed(nowMs, false);
    if (this.terminal) return;
    const pos = pipeline.queryPosition();
    this.#live?.sample(nowMs, pos === null ? null : pos * 1000);
    if (this.terminal) return;
    this.#samples += 1;
    const feeder = this.#feeder;
    if (feeder !== null && pos !== null) {
      feeder.observe(pos * 1000);
      // The last tag is out: no more progress is expected, so no stall either.
      if (feeder.ended && this.#endAtMs === null && pos * 1000 >= feeder.lastTimeMs) this.#endAtMs = nowMs + vodTailMs;
    }
    if (this.#endAtMs !== null) {
      if (nowMs >= this.#endAtMs) this.#finish('eos');
      return;
    }
    const readBytes = this.#samples % bytesEverySamples === 0 || this.#phase === 'connecting';
    let originBytes: number | null = null;
    if (readBytes) {
      this.#sinks.forEach((sink, i) => {
        const b = outBytes(sink);
        const t = this.#targets[i];
        if (b !== null && t !== undefined) t.bytesSent = b;
        if (i === 0) originBytes = b;
      });
    }
    if (this.#phase === 'connecting') this.#checkFlow(nowMs, pos, originBytes);
    else if (this.#phase === 'playing') this.#measure(nowMs, pos, readBytes ? originBytes : undefined);
    if (pos !== null) this.#lastPosition = pos;
  }

  /** Pushes what the VOD feeder owes; a read or mux failure fails the pipeline. */
  #feed(nowMs: number, begin: boolean): void {
    const feeder = this.#feeder;
    if (feeder === null || this.terminal || this.#stopping) return;
    if (!begin && !feeder.started) return;
    try {
      if (begin) feeder.begin(nowMs);
      else feeder.fill(nowMs);
    } catch (err) {
      this.#fail(`source: ${(err as Error).message}`);
    }
  }

  /**
   * 'playing' means media reaches target 0, not just that GStreamer says
   * PLAYING: the sink clock lets the position run ahead for about a second
   * while rtmp2sink still waits for its connection, so the sink's byte
   * counter has to grow as well (it stays 0 until the RTMP publish is up).
   */
  #checkFlow(nowMs: number, pos: number | null, bytes: number | null): void {
    if (!this.#reachedPlaying) return;
    const posAdvanced = pos !== null && this.#lastPosition !== null && pos > this.#lastPosition;
    const bytesAdvanced = bytes === null || (this.#lastBytes !== null && bytes > this.#lastBytes && this.#lastBytes > 0);
    this.#lastBytes = bytes;
    if (!posAdvanced || !bytesAdvanced) return;
    this.#positionMovedAt = nowMs;
    this.#bytesMovedAt = nowMs;
    this.#maxPosition = pos;
    this.#stutter.sample(nowMs / 1000, pos);
    this.#to('playing');
  }

  /**
   * Stall watchdog: media progress needs both the position (output running
   * time) and the origin's byte counter to move. Either standing still for
   * stallTimeoutMs fails the pipeline; the channel layer restarts it. Bytes
   * are read less often than the position, so their clock is coarser by
   * bytesEverySamples samples, which the timeout dwarfs.
   */
  #measure(nowMs: number, pos: number | null, originBytes: number | null | undefined): void {
    this.#stutter.sample(nowMs / 1000, pos);
    if (pos !== null) {
      if (pos > this.#maxPosition) {
        this.#maxPosition = pos;
        this.#positionMovedAt = nowMs;
      }
    }
    if (originBytes !== undefined) {
      // A sink without the stats property (older GStreamer) cannot prove a stall.
      if (originBytes === null || this.#lastBytes === null || originBytes > this.#lastBytes) this.#bytesMovedAt = nowMs;
      this.#lastBytes = originBytes;
    }
    // A relay waiting for its next source is not stalled: the source's own
    // watchdogs (relay-source.ts) judge sources, and the channel layer retries.
    if (this.#live !== null && !this.#live.flowing) {
      this.#positionMovedAt = nowMs;
      this.#bytesMovedAt = nowMs;
    }
    const stillMs = nowMs - Math.min(this.#positionMovedAt, this.#bytesMovedAt);
    if (stillMs > this.#deps.stallTimeoutMs) {
      this.#stallEvents += 1;
      this.#fail(`stalled: no media progress for ${Math.round(stillMs)} ms`);
    }
  }

  #clearTimers(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers = [];
  }

  /** Sets GStreamer to NULL (closing files and sockets) and notes the bus thread must come back. */
  #halt(): void {
    this.#clearTimers();
    this.#feeder?.close();
    this.#live?.close();
    const pipeline = this.#pipeline;
    if (pipeline === null || this.#release !== null) return;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#release = { promise, resolve };
    pipeline.stop();
    // Stopped from inside our own bus callback: the binding checks the state
    // right after we return and does not re-queue, so the thread is free now.
    if (this.#inBusCallback || !this.#polling) resolve();
  }

  #fail(error: string): void {
    if (this.terminal) return;
    this.#halt();
    this.#deps.log.warn('pipeline failed', { channel: this.channelId, phase: this.#phase, error });
    this.#to('error', error);
  }

  #finish(phase: 'eos'): void {
    this.#halt();
    this.#to(phase);
  }

  /**
   * rtmp2sink (GStreamer 1.22) that goes to NULL while its RTMP connect is in
   * flight never frees itself: the cancelled connect keeps a reference to the
   * sink, its socket and its main context (one socket and one eventfd per
   * stop; test/churn.test.ts measured it). So a stop first waits, briefly,
   * until every sink has connected (its byte counter moved) or one failed.
   * There is no event for that, so this polls the counter. A target that
   * accepts TCP but never answers RTMP still leaks once the wait runs out.
   */
  async #settleConnects(): Promise<void> {
    this.#stopping = true;
    this.#clearTimers();
    const deadline = performance.now() + connectSettleMs;
    const pending = (): boolean => this.#sinks.some((sink) => outBytes(sink) === 0);
    while (!this.#connectsSettled && performance.now() < deadline && pending()) {
      await new Promise((r) => setTimeout(r, connectPollMs));
    }
  }

  /**
   * Stops the pipeline and resolves once its bus thread is back in the
   * threadpool (or after a bounded wait, logged, if it is not). Safe to call
   * in any phase; a terminal pipeline only waits for the release. Resolves
   * false when the thread did not come back.
   */
  async stop(): Promise<boolean> {
    if (!this.terminal && this.#release === null) await this.#settleConnects();
    this.#halt();
    const release = this.#release;
    let released = true;
    if (release !== null) {
      let timer: NodeJS.Timeout | undefined;
      released = await Promise.race([
        release.promise.then(() => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), busReleaseTimeoutMs))),
      ]);
      clearTimeout(timer);
      if (!released) {
        this.#deps.log.warn('stopped pipeline kept its bus thread', { channel: this.channelId, waitedMs: busReleaseTimeoutMs });
      }
    }
    // Reported only now, so 'stopped' means files, sockets and the bus thread are all given back.
    if (!this.terminal) this.#to('stopped');
    return released;
  }
}
