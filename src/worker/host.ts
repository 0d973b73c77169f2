/**
 * The pipeline host: every channel pipeline of one worker process, keyed by
 * channel id. It turns IPC commands into ChannelPipeline calls and pipeline
 * state changes into IPC messages. It enforces the worker's own capacity:
 * a number of channels, and the threadpool threads their GStreamer
 * pipelines may pin (threads.ts).
 */
import type { Logger } from '../log.js';
import type { FromWorker } from '../pool/ipc.js';
import { isTerminal, type LiveSource, type PipelineSpec, type PipelineState, type PipelineStats, type TapSpec, type VodItem } from '../pool/pipeline-spec.js';
import { ForwardPipeline } from './forward-pipeline.js';
import { SnapshotDecoder } from './snapshot-decoder.js';
import { TapPipeline } from './tap-pipeline.js';
import { ChannelPipeline } from './channel-pipeline.js';
import { frameSeconds } from '../media/mp4.js';
import { MediaCache } from './media-cache.js';
import { planPipeline, PlanError, type PipelinePlan } from './plan.js';
import { ThreadBook, threadsFor } from './threads.js';
import type { Templates } from '../gst/templates.js';
import { VodTimeline, type ItemMedia } from './vod-timeline.js';

/**
 * How often every pipeline's position is sampled. The stutter tolerance is
 * two frames (80 ms at 25 fps) and the heartbeat's 1 s would hide freezes of
 * several hundred ms; a position query is a cheap synchronous call.
 */
export const sampleIntervalMs = 100;

/**
 * How often the pace tick runs: each channel sends its due media at most
 * once per its own period (20–40 ms, channel-pipeline.ts), on the tick that
 * follows. One timer for all channels, so the event loop wakes 50 times a
 * second however many channels it carries.
 */
export const paceIntervalMs = 20;

/** Forwarders' byte counters only prove flow: read them on every this-many samples. */
const forwardBytesEverySamples = 5;

/** A failed tap (recording, snapshots) is started again after this long, while its channel plays. */
export const tapRetryMs = 10_000;

/** How often the lease fence is checked; its margin before lease expiry is seconds. */
const fenceCheckMs = 100;

export interface PipelineHostOptions {
  readonly templates: Templates;
  /** Pipelines this process may run at once. */
  readonly maxPipelines: number;
  /** Threadpool threads GStreamer pipelines may pin in all (see threads.ts); default: no limit (tools). */
  readonly threadBudget?: number;
  /** Milliseconds a pipeline has to get media to target 0. */
  readonly startTimeoutMs: number;
  /** Milliseconds a playing pipeline may make no media progress before it fails as stalled. */
  readonly stallTimeoutMs: number;
  /** Frame duration the stutter tolerance assumes, seconds. */
  readonly frameDurationSeconds: number;
  /** Sampler period override (tests, bench/cpu-probe.ts). Default sampleIntervalMs. */
  readonly sampleIntervalMs?: number;
  /** Pace tick override (bench/cpu-probe.ts). Default paceIntervalMs. */
  readonly paceIntervalMs?: number;
  /** Longest batch period of a channel's output, ms (bench/cpu-probe.ts). Default channel-pipeline's. */
  readonly maxOutputPeriodMs?: number;
  readonly log: Logger;
  readonly send: (msg: FromWorker) => void;
}

export class PipelineHost {
  readonly #opts: PipelineHostOptions;
  readonly #pipelines = new Map<string, ChannelPipeline>();
  /** Pipelines that ended by themselves (eos, error) and are handing their bus thread back. */
  readonly #draining = new Set<Promise<boolean>>();
  /** One timer samples every pipeline; none runs while the host is empty. */
  #sampler: NodeJS.Timeout | null = null;
  #pacer: NodeJS.Timeout | null = null;
  readonly #media = new MediaCache();
  readonly #threads: ThreadBook;
  /** Each channel's forwarders to targets 1.. (started when it plays). */
  readonly #forwards = new Map<string, ForwardPipeline[]>();
  #decoder: SnapshotDecoder | null = null;
  #samples = 0;
  /** VOD channels whose media indexes are loading; a stop meanwhile cancels the start. */
  readonly #loading = new Set<string>();
  /** Each channel's tap (recording, snapshots) while its pipeline plays, and its retry timer after a fault. */
  readonly #taps = new Map<string, { tap: TapPipeline | null; retry: NodeJS.Timeout | null; warned: Set<'recording' | 'snapshot'> }>();

  /** Cluster mode: wall-clock ms by which every pipeline must be down; null without a fence (single node). */
  #fenceUntil: number | null = null;
  #fenceTimer: NodeJS.Timeout | null = null;
  /** Pipelines stopped by the fence: their 'stopped' goes out as an 'error' so the supervisor reacts. */
  readonly #fenced = new Set<string>();

  constructor(opts: PipelineHostOptions) {
    this.#opts = opts;
    this.#threads = new ThreadBook(opts.threadBudget ?? Number.MAX_SAFE_INTEGER);
  }

  /**
   * Cluster fencing (see ToWorker 'fence'). This runs in the worker so that it
   * holds even while the supervisor is frozen or cut off: when the deadline passes
   * with no renewal, every pipeline stops before another node may take the channels.
   */
  setFence(untilMs: number): void {
    this.#fenceUntil = untilMs;
    if (this.#fenceTimer === null) {
      this.#fenceTimer = setInterval(() => this.#checkFence(), fenceCheckMs);
      this.#fenceTimer.unref();
    }
    this.#checkFence();
  }

  #fenceExpired(): boolean {
    return this.#fenceUntil !== null && Date.now() >= this.#fenceUntil;
  }

  #checkFence(): void {
    if (!this.#fenceExpired()) return;
    const ids = [...this.#pipelines.keys(), ...this.#loading];
    if (ids.length === 0) return;
    this.#opts.log.warn('lease fence passed without renewal; stopping every pipeline', { pipelines: ids.length, lateMs: Date.now() - (this.#fenceUntil ?? 0) });
    for (const id of ids) {
      this.#fenced.add(id);
      void this.stop(id, { fence: true });
    }
  }

  #sampleAll(): void {
    const now = performance.now();
    for (const p of [...this.#pipelines.values()]) p.sample(now);
    this.#samples += 1;
    if (this.#samples % forwardBytesEverySamples === 0) for (const fs of this.#forwards.values()) for (const f of fs) f.sample();
    if (this.#pipelines.size === 0) this.#stopTimers();
  }

  #paceAll(): void {
    const now = performance.now();
    for (const p of this.#pipelines.values()) p.pace(now);
  }

  #startTimers(): void {
    this.#sampler ??= setInterval(() => this.#sampleAll(), this.#opts.sampleIntervalMs ?? sampleIntervalMs);
    this.#pacer ??= setInterval(() => this.#paceAll(), this.#opts.paceIntervalMs ?? paceIntervalMs);
  }

  #stopTimers(): void {
    if (this.#sampler !== null) clearInterval(this.#sampler);
    if (this.#pacer !== null) clearInterval(this.#pacer);
    this.#sampler = null;
    this.#pacer = null;
  }

  get size(): number {
    return this.#pipelines.size;
  }

  stats(): PipelineStats[] {
    return [...this.#pipelines.entries()].map(([id, p]) => this.#statsOf(id, p));
  }

  /** A channel's numbers: its pipeline's, with targets 1.. from its forwarders. */
  #statsOf(channelId: string, pipeline: ChannelPipeline): PipelineStats {
    const s = pipeline.stats();
    const forwards = this.#forwards.get(channelId);
    if (forwards === undefined) return s;
    return { ...s, targets: [...s.targets.filter((t) => t.index === 0), ...forwards.map((f) => f.stats())] };
  }

  #report(channelId: string, state: PipelineState, error?: string, stats?: PipelineStats): void {
    if (isTerminal(state)) this.#threads.release(channelId);
    if (state === 'stopped' && this.#fenced.delete(channelId)) {
      state = 'error';
      error = 'lease not renewed in time: pipeline fenced by its worker';
    }
    const msg: FromWorker = { type: 'pipeline', channelId, state };
    if (error !== undefined) msg.error = error;
    if (stats !== undefined) msg.stats = stats;
    this.#opts.send(msg);
  }

  start(spec: PipelineSpec): void {
    const { channelId } = spec;
    if (this.#pipelines.has(channelId)) {
      // The supervisor never does this; answering 'error' would also wrongly
      // fail the running one on its side, so only log it.
      this.#opts.log.error('start for a channel that is already running here', { channel: channelId });
      return;
    }
    if (this.#fenceExpired()) {
      this.#report(channelId, 'error', 'lease not renewed in time: the worker refuses new pipelines');
      return;
    }
    if (this.#pipelines.size + this.#loading.size >= this.#opts.maxPipelines) {
      this.#report(channelId, 'error', `worker is full: ${this.#opts.maxPipelines} pipelines`);
      return;
    }
    const threads = threadsFor(spec);
    if (!this.#threads.reserve(channelId, threads)) {
      this.#report(channelId, 'error', `worker is full: ${this.#threads.used} of its ${this.#threads.budget} threads for GStreamer pipelines are reserved, this channel needs ${threads}`);
      return;
    }
    let plan;
    try {
      plan = planPipeline(spec, this.#opts.templates);
    } catch (err) {
      if (!(err instanceof PlanError)) throw err;
      this.#report(channelId, 'error', err.message);
      return;
    }
    const tap = spec.tap ?? null;
    const extra = spec.forwardFrom !== undefined && spec.targets.length > 1 ? { from: spec.forwardFrom, to: spec.targets.slice(1) } : null;
    if (spec.source.kind !== 'vod') {
      const { kind: _kind, ...source } = spec.source;
      if (spec.slate === undefined) {
        this.#launch(channelId, plan, { live: { source, slate: null } }, tap, extra);
        return;
      }
      // The slate's index is read before the start, so that a lost source finds it ready.
      this.#loading.add(channelId);
      this.#media.loadAll([spec.slate]).then(
        (slate) => {
          if (this.#loading.delete(channelId)) this.#launch(channelId, plan, { live: { source, slate } }, tap, extra);
        },
        (err: unknown) => {
          if (!this.#loading.delete(channelId)) return;
          // A relay without its slate is still a relay: say so, and go on.
          this.#opts.log.warn('slate not loaded; the channel runs without it', { channel: channelId, err: describeLoadError(err) });
          this.#launch(channelId, plan, { live: { source, slate: null } }, tap, extra);
        },
      );
      return;
    }
    // Reading the sample indexes is file I/O (milliseconds; shared once loaded): build the pipeline when they are in.
    // A missing item (the file is gone) plays the slate in its place.
    const { loop } = spec.source;
    const slate = spec.slate;
    const items = spec.source.items.map((i) => (i.missing === true && slate !== undefined ? slate : i));
    if (items.some((i) => i.missing === true)) {
      this.#report(channelId, 'error', 'source: a playlist item is missing and the channel has no slate');
      return;
    }
    this.#loading.add(channelId);
    this.#media.loadAll(items).then(
      (media) => {
        if (!this.#loading.delete(channelId)) return; // stopped while loading
        let timeline: VodTimeline;
        try {
          timeline = new VodTimeline({ items: media, loop });
        } catch (err) {
          this.#report(channelId, 'error', `source: ${(err as Error).message}`);
          return;
        }
        this.#launch(channelId, plan, { vod: timeline }, tap, extra);
      },
      (err: unknown) => {
        if (!this.#loading.delete(channelId)) return;
        this.#report(channelId, 'error', `source: ${describeLoadError(err)}`);
      },
    );
  }

  #launch(
    channelId: string,
    plan: PipelinePlan,
    feed: { vod: VodTimeline } | { live: { source: LiveSource; slate: readonly ItemMedia[] | null } },
    tap: TapSpec | null,
    extra: { from: string; to: string[] } | null,
  ): void {
    const vod = 'vod' in feed ? feed.vod : null;
    if (extra !== null) {
      const log = this.#opts.log;
      const templates = this.#opts.templates;
      this.#forwards.set(channelId, extra.to.map((to, i) => new ForwardPipeline({ channelId, index: i + 1, from: extra.from, to, templates, log })));
    }
    const video = vod?.item.video ?? null;
    // The stutter tolerance is two frames of the real video when the worker knows it.
    const frameDurationSeconds = (video !== null ? frameSeconds(video) : null) ?? this.#opts.frameDurationSeconds;
    const pipeline: ChannelPipeline = new ChannelPipeline({
      channelId,
      plan,
      vod,
      live: 'live' in feed ? feed.live : null,
      templates: this.#opts.templates,
      onSource: (event) => this.#opts.send({ type: 'source', channelId, event }),
      startTimeoutMs: this.#opts.startTimeoutMs,
      stallTimeoutMs: this.#opts.stallTimeoutMs,
      frameDurationSeconds,
      ...(this.#opts.maxOutputPeriodMs !== undefined ? { maxPeriodMs: this.#opts.maxOutputPeriodMs } : {}),
      log: this.#opts.log,
      onState: (state, error) => {
        const terminal = isTerminal(state);
        if (state === 'playing' && tap !== null) this.#startTap(channelId, tap);
        if (state === 'playing') this.#forwards.get(channelId)?.forEach((f) => f.start());
        if (terminal) {
          void this.#stopTap(channelId);
          this.#stopForwards(channelId);
        }
        // The final numbers ride on the terminal message: the next heartbeat will not list this pipeline.
        this.#report(channelId, state, error, terminal ? this.#statsOf(channelId, pipeline) : undefined);
        if ((state === 'eos' || state === 'error') && this.#pipelines.get(channelId) === pipeline) {
          // GStreamer is already at NULL; forget it now so its slot is free,
          // but keep waiting for the bus thread so shutdown can wait for it too.
          this.#pipelines.delete(channelId);
          const draining: Promise<boolean> = pipeline.stop().finally(() => this.#draining.delete(draining));
          this.#draining.add(draining);
        }
      },
    });
    this.#pipelines.set(channelId, pipeline);
    this.#startTimers();
    this.#opts.log.info('pipeline starting', { channel: channelId, source: plan.source, targets: 1 + (extra?.to.length ?? 0) });
    pipeline.start();
  }

  #stopForwards(channelId: string): void {
    this.#forwards.get(channelId)?.forEach((f) => f.stop());
    this.#forwards.delete(channelId);
  }

  /** Starts a channel's tap once its output is at the origin; a failed tap is retried after tapRetryMs. */
  #startTap(channelId: string, spec: TapSpec): void {
    const entry = this.#taps.get(channelId) ?? { tap: null, retry: null, warned: new Set<'recording' | 'snapshot'>() };
    this.#taps.set(channelId, entry);
    if (entry.tap !== null) return;
    const tap: TapPipeline = new TapPipeline({
      channelId,
      spec,
      templates: this.#opts.templates,
      decoder: (this.#decoder ??= new SnapshotDecoder(this.#opts.templates)),
      warned: entry.warned,
      log: this.#opts.log,
      onEvent: (event) => this.#opts.send({ type: 'tap', channelId, event }),
      onFailed: (part, message) => {
        const retryS = Math.round(tapRetryMs / 1000);
        entry.warned.add(part);
        this.#opts.send({ type: 'tap', channelId, event: { kind: 'warning', part, message: `${part}: ${message} (retrying in ${retryS} s)` } });
        if (this.#taps.get(channelId) !== entry || entry.tap !== tap) return;
        entry.tap = null;
        entry.retry = setTimeout(() => {
          entry.retry = null;
          if (this.#taps.get(channelId) === entry && this.#pipelines.has(channelId)) this.#startTap(channelId, spec);
        }, tapRetryMs);
      },
    });
    entry.tap = tap;
    tap.start();
  }

  /** Detaches a channel's tap (and its retry timer) without stopping it: a fence stops it after the publish. */
  #takeTap(channelId: string): TapPipeline | null {
    const entry = this.#taps.get(channelId);
    if (entry === undefined) return null;
    this.#taps.delete(channelId);
    if (entry.retry !== null) clearTimeout(entry.retry);
    return entry.tap;
  }

  async #stopTap(channelId: string): Promise<void> {
    await this.#takeTap(channelId)?.stop();
  }

  /** A running relay's next source; a channel that is not running (any more) is told by its state events. */
  setSource(channelId: string, source: LiveSource, mode: 'replace' | 'candidate'): void {
    const pipeline = this.#pipelines.get(channelId);
    if (pipeline?.setSource(source, mode) !== true) this.#opts.log.warn('source change for a channel that is not relaying here', { channel: channelId });
  }

  /** A running VOD channel's new playlist. Errors are logged: the old list keeps playing. */
  async setPlaylist(channelId: string, items: VodItem[], loop: boolean): Promise<void> {
    let media: ItemMedia[];
    try {
      media = await this.#media.loadAll(items);
      const pipeline = this.#pipelines.get(channelId);
      if (pipeline === undefined) return;
      pipeline.setItems(media, loop);
      this.#opts.log.info('playlist replaced', { channel: channelId, items: items.length, loop });
    } catch (err) {
      this.#opts.log.warn('playlist not applied', { channel: channelId, err: (err as Error).message });
    }
  }

  /**
   * Stops and frees one pipeline; answers 'stopped' even for unknown ids, so
   * stop is idempotent. Resolves false if its bus thread did not come back.
   *
   * An ordinary stop finalises the tap first, while the stream is still at the
   * origin, so the last segment ends at the stop and is listed before
   * 'stopped'. A fence (`fence: true`) does the opposite: the lease promises
   * that this publisher is gone before another node may claim the channel, so
   * the forwarders and the publish are cut at once, and the recording is
   * finalised afterwards (up to 3 s, tap-pipeline.ts) from what reached the origin.
   */
  async stop(channelId: string, opts: { fence?: boolean } = {}): Promise<boolean> {
    const pipeline = this.#pipelines.get(channelId);
    if (pipeline === undefined) {
      this.#loading.delete(channelId);
      this.#report(channelId, 'stopped');
      return true;
    }
    this.#pipelines.delete(channelId);
    let released: boolean;
    if (opts.fence === true) {
      const tap = this.#takeTap(channelId);
      this.#stopForwards(channelId);
      // stop() destroys the publisher's socket before its first await; the tap's
      // EOS is sent in the same tick, so the stream's end at the origin finds the
      // tap finalising rather than failing.
      const cut = pipeline.stop({ now: true });
      const finalised = tap?.stop();
      released = await cut;
      await finalised;
    } else {
      await this.#stopTap(channelId);
      this.#stopForwards(channelId);
      released = await pipeline.stop();
    }
    this.#opts.log.info('pipeline stopped', { channel: channelId, fenced: opts.fence === true });
    return released;
  }

  /**
   * Stops everything and waits for every bus thread. Returns how many threads
   * did not come back: process.exit() would then hang joining them.
   */
  async stopAll(): Promise<number> {
    const results = await Promise.all([...[...this.#pipelines.keys()].map((id) => this.stop(id)), ...this.#draining]);
    return results.filter((released) => !released).length;
  }
}

/** A person-readable reason a VOD file could not be loaded (the path is the operator's own, not a secret). */
function describeLoadError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return `no such file: ${e.path ?? ''}`;
  if (e.code === 'EACCES') return `permission denied: ${e.path ?? ''}`;
  return `cannot read the media: ${e.message}`;
}
