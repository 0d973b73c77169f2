/**
 * One channel's GStreamer pipeline inside a worker, as a closed-union state
 * machine. It builds the pipeline from a plan, drives it to PLAYING, loops
 * files with segment seeks, watches that media really reaches target 0, and
 * reports every change through `onState`.
 */
import type { Logger } from '../log.js';
import type { PipelineState, PipelineStats } from '../pool/ipc.js';
import { describeBusError, maskUrls } from './bus-errors.js';
import { NativeError, Pipeline, SeekFlag, type BusMessage, type GstElement } from './native.js';
import type { PipelinePlan } from './plan.js';

/**
 * prerolling  looping file: PAUSED requested, waiting for the first async-done
 * seeking     looping file: flushing segment seek issued in PAUSED, waiting for async-done
 * connecting  play() issued, waiting for PLAYING and bytes flowing to target 0
 * playing     media flows; a looping file re-seeks on every segment-done
 * eos | error | stopped   terminal: the GStreamer pipeline is at NULL
 */
export type Phase = 'prerolling' | 'seeking' | 'connecting' | 'playing' | 'eos' | 'error' | 'stopped';

const legal: Readonly<Record<Phase, readonly Phase[]>> = {
  prerolling: ['seeking', 'error', 'stopped'],
  seeking: ['connecting', 'error', 'stopped'],
  connecting: ['playing', 'eos', 'error', 'stopped'],
  playing: ['eos', 'error', 'stopped'],
  eos: [],
  error: [],
  stopped: [],
};

const reported: Readonly<Record<Phase, PipelineState>> = {
  prerolling: 'starting',
  seeking: 'starting',
  connecting: 'starting',
  playing: 'playing',
  eos: 'eos',
  error: 'error',
  stopped: 'stopped',
};

/** How often the start-up check samples position and sink byte counters. */
const flowCheckMs = 200;
/**
 * How long a stopped pipeline may take to hand its bus thread back. It only
 * needs one bus message, which set_state(NULL) posts itself, so this is a
 * guard against a binding surprise, not an expected wait.
 */
const busReleaseTimeoutMs = 2000;

export interface ChannelPipelineDeps {
  readonly channelId: string;
  readonly plan: PipelinePlan;
  readonly startTimeoutMs: number;
  readonly log: Logger;
  /** Called on every change of the reported state, in order. */
  readonly onState: (state: PipelineState, error?: string) => void;
}

function outBytes(sink: GstElement): number | null {
  // The binding renders the boxed GstStructure as its string form.
  const stats = sink.get('stats');
  if (typeof stats !== 'string') return null;
  const m = /out-bytes-total=\(guint64\)(\d+)/.exec(stats);
  return m?.[1] !== undefined ? Number(m[1]) : null;
}

export class ChannelPipeline {
  readonly channelId: string;
  readonly #deps: ChannelPipelineDeps;
  #phase: Phase;
  #pipeline: Pipeline | null = null;
  #origin: GstElement | null = null;
  #reachedPlaying = false;
  #lastBytes: number | null = null;
  #lastPosition: number | null = null;
  #loops = 0;
  #timers: NodeJS.Timeout[] = [];
  /** Set while GStreamer has the pipeline at NULL and its poller may still hold a thread. */
  #release: { promise: Promise<void>; resolve: () => void } | null = null;
  #inBusCallback = false;
  #polling = false;

  constructor(deps: ChannelPipelineDeps) {
    this.#deps = deps;
    this.channelId = deps.channelId;
    this.#phase = deps.plan.loop ? 'prerolling' : 'connecting';
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

  stats(): PipelineStats {
    const pos = this.terminal ? null : (this.#pipeline?.queryPosition() ?? null);
    return { channelId: this.channelId, state: this.state, positionSeconds: pos ?? -1 };
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
      this.#applyProperties(pipeline);
      this.#origin = pipeline.element(plan.sinks[0] ?? 'sink0');
    } catch (err) {
      const msg = err instanceof NativeError ? err.message : `cannot build the pipeline: ${(err as Error).message}`;
      this.#fail(maskUrls(msg));
      return;
    }
    this.#pipeline = pipeline;
    this.#deps.onState('starting');
    pipeline.pollBus((m) => {
      this.#inBusCallback = true;
      try {
        this.#onBus(m);
      } finally {
        this.#inBusCallback = false;
      }
    });
    this.#polling = true;
    this.#timers.push(
      setTimeout(() => {
        if (this.#phase === 'prerolling' || this.#phase === 'seeking' || this.#phase === 'connecting') {
          this.#fail(`no media reached target 0 within ${Math.round(this.#deps.startTimeoutMs / 1000)} s`);
        }
      }, this.#deps.startTimeoutMs),
      setInterval(() => this.#checkFlow(), flowCheckMs),
    );
    if (plan.loop) {
      // Preroll first and do the flushing segment seek while PAUSED: a flush
      // that reaches rtmp2sink while its render() waits for the connection
      // makes it return FLOW_ERROR (1.22 race between unlock and unlock_stop;
      // seen here on a single pipeline). In PAUSED the sinks sit in preroll
      // and have not entered render() yet, so the flush is harmless there.
      pipeline.pause();
    } else {
      pipeline.play();
    }
  }

  #applyProperties(pipeline: Pipeline): void {
    for (const p of this.#deps.plan.properties) {
      const el = pipeline.element(p.element);
      el.set(p.property, p.value);
      if (p.verify === 'readback' && el.get(p.property) !== p.value) {
        throw new NativeError('PROPERTY_REJECTED', `${p.role}: GStreamer did not accept the ${p.property}`);
      }
      // rtmp2src/rtmp2sink keep a blank location (host null) when the URL
      // does not parse, and would then connect to their defaults.
      if (p.verify === 'rtmp-url' && (typeof el.get('host') !== 'string' || typeof el.get('stream') !== 'string')) {
        throw new NativeError('PROPERTY_REJECTED', `${p.role}: GStreamer could not parse the RTMP URL`);
      }
    }
  }

  #onBus(m: BusMessage): void {
    if (this.#release !== null) {
      // First message after set_state(NULL): the binding sees NULL after this
      // callback and stops re-queuing, so the thread is back in the pool.
      this.#release.resolve();
      return;
    }
    if (this.terminal) return;
    const pipeline = this.#pipeline;
    if (pipeline === null) return;
    switch (m.type) {
      case 'error':
        this.#fail(describeBusError(m));
        return;
      case 'warning':
        this.#deps.log.debug('pipeline warning', { channel: this.channelId, source: m.source, debug: maskUrls(m.debug ?? '') });
        return;
      case 'async-done':
        if (this.#phase === 'prerolling') {
          if (!pipeline.seek(0, SeekFlag.FLUSH | SeekFlag.SEGMENT)) {
            this.#fail('the source refused the segment seek needed for looping');
            return;
          }
          this.#to('seeking');
        } else if (this.#phase === 'seeking') {
          this.#to('connecting');
          pipeline.play();
        }
        return;
      case 'segment-done':
        // End of one pass in segment mode. A NON-flushing seek queues the next
        // pass behind the data already in flight; its segment's running time
        // continues where this one ended, so timestamps keep rising at the
        // receiver and the publish session stays open.
        if (!pipeline.seek(0, SeekFlag.SEGMENT)) {
          this.#fail('the loop seek at the end of the file failed');
          return;
        }
        this.#loops += 1;
        this.#deps.log.debug('pipeline looped', { channel: this.channelId, loops: this.#loops });
        return;
      case 'eos':
        // A file that ended is done; a live source that ended means its
        // publisher went away, which the channel layer should retry.
        if (this.#deps.plan.live) this.#fail('source: the live stream ended');
        else this.#finish('eos');
        return;
      case 'state-changed':
        if (/^pipeline\d+$/.test(m.source) && m.newState === 'GST_STATE_PLAYING') this.#reachedPlaying = true;
        return;
      case 'other':
        return;
    }
  }

  /**
   * 'playing' means media reaches target 0, not just that GStreamer says
   * PLAYING: the sink clock lets the position run ahead for about a second
   * while rtmp2sink still waits for its connection, so the sink's byte
   * counter has to grow as well (it stays 0 until the RTMP publish is up).
   */
  #checkFlow(): void {
    if (this.#phase !== 'connecting' || !this.#reachedPlaying || this.#pipeline === null || this.#origin === null) return;
    const pos = this.#pipeline.queryPosition();
    const bytes = outBytes(this.#origin);
    const posAdvanced = pos !== null && this.#lastPosition !== null && pos > this.#lastPosition;
    const bytesAdvanced = bytes === null || (this.#lastBytes !== null && bytes > this.#lastBytes && this.#lastBytes > 0);
    this.#lastPosition = pos;
    this.#lastBytes = bytes;
    if (posAdvanced && bytesAdvanced) this.#to('playing');
  }

  #clearTimers(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers = [];
  }

  /** Sets GStreamer to NULL (closing files and sockets) and notes the bus thread must come back. */
  #halt(): void {
    this.#clearTimers();
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
   * Stops the pipeline and resolves once its bus thread is back in the
   * threadpool (or after a bounded wait, logged, if it is not). Safe to call
   * in any phase; a terminal pipeline only waits for the release. Resolves
   * false when the thread did not come back.
   */
  async stop(): Promise<boolean> {
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
