/**
 * The pipeline host: every channel of one worker process, keyed by channel
 * id, each a ChannelUnit (its output, forwarders and tap). It turns IPC
 * commands into unit calls and state changes into IPC messages, runs the one
 * pace tick and the one sampler for all channels, and holds the lease fence.
 * It enforces the worker's own capacity: a number of channels, and the
 * threadpool threads their GStreamer pipelines may pin (threads.ts).
 */
import type { Logger } from '../log.js';
import type { MediaTag } from '../rtmp/chunks.js';
import type { FromWorker } from '../pool/ipc.js';
import type { PlayoutCommand } from '../pool/playout-spec.js';
import { isTerminal, type LiveSource, type PipelineSpec, type PipelineState, type PipelineStats, type ProgrammeSpec, type TapSpec, type VodItem } from '../pool/pipeline-spec.js';
import { SnapshotDecoder } from './snapshot-decoder.js';
import { ChannelPipeline, type ChannelPipelineDeps } from './channel-pipeline.js';
import { ListLayout } from './live-items.js';
import { ChannelUnit } from './channel-unit.js';
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
  readonly #units = new Map<string, ChannelUnit>();
  /** Pipelines that ended by themselves (eos, error) and are handing their bus thread back. */
  readonly #draining = new Set<Promise<boolean>>();
  /** One timer samples every pipeline; none runs while the host is empty. */
  #sampler: NodeJS.Timeout | null = null;
  #pacer: NodeJS.Timeout | null = null;
  readonly #media = new MediaCache();
  readonly #threads: ThreadBook;
  #decoder: SnapshotDecoder | null = null;
  /** VOD channels whose media indexes are loading; a stop meanwhile cancels the start. */
  readonly #loading = new Set<string>();

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
    const ids = [...this.#units.keys(), ...this.#loading];
    if (ids.length === 0) return;
    this.#opts.log.warn('lease fence passed without renewal; stopping every pipeline', { pipelines: ids.length, lateMs: Date.now() - (this.#fenceUntil ?? 0) });
    for (const id of ids) {
      this.#fenced.add(id);
      void this.stop(id, { fence: true });
    }
  }

  #sampleAll(): void {
    const now = performance.now();
    for (const u of [...this.#units.values()]) u.output.sample(now);
    if (this.#units.size === 0) this.#stopTimers();
  }

  #paceAll(): void {
    const now = performance.now();
    for (const u of this.#units.values()) u.output.pace(now);
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
    return this.#units.size;
  }

  stats(): PipelineStats[] {
    return [...this.#units.values()].map((u) => u.stats());
  }

  #report(channelId: string, state: PipelineState, error?: string, stats?: PipelineStats): void {
    if (isTerminal(state)) {
      this.#threads.release(channelId);
      this.#threads.release(`${channelId}#cut-in`);
    }
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
    if (this.#units.has(channelId)) {
      // The supervisor never does this; answering 'error' would also wrongly
      // fail the running one on its side, so only log it.
      this.#opts.log.error('start for a channel that is already running here', { channel: channelId });
      return;
    }
    if (this.#fenceExpired()) {
      this.#report(channelId, 'error', 'lease not renewed in time: the worker refuses new pipelines');
      return;
    }
    if (this.#units.size + this.#loading.size >= this.#opts.maxPipelines) {
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
    const extra = spec.targets.slice(1);
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
    const live = spec.source.live ?? [];
    // The slate stands in for a live item's source (live-items.ts), or a programme's live entry's (sent later: loaded now).
    const withSlate = slate !== undefined ? [...items, slate] : items;
    this.#media.loadAll(withSlate).then(
      (loaded) => {
        if (!this.#loading.delete(channelId)) return; // stopped while loading
        const media = loaded.slice(0, items.length);
        const slateMedia = loaded.length > items.length ? loaded.slice(items.length) : null;
        let timeline: VodTimeline;
        try {
          timeline = new VodTimeline({ items: media, loop });
        } catch (err) {
          this.#report(channelId, 'error', `source: ${(err as Error).message}`);
          return;
        }
        const liveItems = live.length === 0 ? null : { layout: new ListLayout(media.length, live) };
        this.#launch(channelId, plan, { vod: timeline, liveItems, slate: slateMedia }, tap, extra);
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
    feed: { vod: VodTimeline; liveItems?: ChannelPipelineDeps['liveItems']; slate?: readonly ItemMedia[] | null } | { live: { source: LiveSource; slate: readonly ItemMedia[] | null } },
    tap: TapSpec | null,
    extra: string[],
  ): void {
    const vod = 'vod' in feed ? feed.vod : null;
    const unit = new ChannelUnit({
      channelId,
      tap,
      extraTargets: extra,
      targetTimeoutMs: this.#opts.startTimeoutMs,
      templates: this.#opts.templates,
      decoder: () => (this.#decoder ??= new SnapshotDecoder(this.#opts.templates)),
      log: this.#opts.log,
      send: this.#opts.send,
    });
    const video = vod?.item.video ?? null;
    // The stutter tolerance is two frames of the real video when the worker knows it.
    const frameDurationSeconds = (video !== null ? frameSeconds(video) : null) ?? this.#opts.frameDurationSeconds;
    const pipeline: ChannelPipeline = new ChannelPipeline({
      channelId,
      plan,
      vod,
      liveItems: 'vod' in feed ? (feed.liveItems ?? null) : null,
      slate: 'vod' in feed ? (feed.slate ?? null) : null,
      live: 'live' in feed ? feed.live : null,
      templates: this.#opts.templates,
      onSource: (event) => this.#opts.send({ type: 'source', channelId, event }),
      ...(extra.length > 0 ? { onBatch: (batch: readonly MediaTag[]) => unit.feed(batch) } : {}),
      onPlayout: (event) => this.#opts.send({ type: 'playout', channelId, event }),
      onLiveItemWarning: (message) => this.#opts.send({ type: 'tap', channelId, event: { kind: 'warning', part: 'live-item', message } }),
      startTimeoutMs: this.#opts.startTimeoutMs,
      stallTimeoutMs: this.#opts.stallTimeoutMs,
      frameDurationSeconds,
      ...(this.#opts.maxOutputPeriodMs !== undefined ? { maxPeriodMs: this.#opts.maxOutputPeriodMs } : {}),
      log: this.#opts.log,
      onState: (state, error) => {
        const terminal = isTerminal(state);
        if (state === 'playing') unit.playing();
        if (terminal) unit.ended();
        // The final numbers ride on the terminal message: the next heartbeat will not list this pipeline.
        this.#report(channelId, state, error, terminal ? unit.stats() : undefined);
        if ((state === 'eos' || state === 'error') && this.#units.get(channelId) === unit) {
          // Its output is closed; forget it now so its slot is free, but keep
          // waiting for it so shutdown can wait for it too.
          this.#units.delete(channelId);
          const draining: Promise<boolean> = pipeline.stop().finally(() => this.#draining.delete(draining));
          this.#draining.add(draining);
        }
      },
    });
    unit.attach(pipeline);
    this.#units.set(channelId, unit);
    this.#startTimers();
    this.#opts.log.info('pipeline starting', { channel: channelId, source: plan.source, targets: unit.targets });
    pipeline.start();
  }

  /** A running relay's next source; a channel that is not running (any more) is told by its state events. */
  setSource(channelId: string, source: LiveSource, mode: 'replace' | 'candidate'): void {
    if (this.#units.get(channelId)?.output.setSource(source, mode) !== true) this.#opts.log.warn('source change for a channel that is not relaying here', { channel: channelId });
  }

  /** A skip or jump of a running VOD channel; a channel that is not one here is refused at once. */
  playout(channelId: string, requestId: number, command: PlayoutCommand): void {
    const refuse = (error: string): void => this.#opts.send({ type: 'playout', channelId, event: { kind: 'refused', requestId, error } });
    const notHere = 'the channel is not playing a VOD file or playlist on this worker';
    const output = this.#units.get(channelId)?.output;
    if (command.kind === 'return') {
      if (output?.returnToPlaylist(requestId, command.mode) !== true) refuse(notHere);
      // Held until the return (or the channel's end), even by a source that was refused: a little over, never under.
      else this.#threads.release(`${channelId}#cut-in`);
      return;
    }
    if (command.kind !== 'take-live') {
      if (output?.playout(requestId, command) !== true) refuse(notHere);
      return;
    }
    // A source other than rtmp:// copied runs a pipeline of its own: its threads are reserved beside the channel's.
    const { source, slate } = command;
    const cutInKey = `${channelId}#cut-in`;
    if (source.protocol !== 'rtmp' || source.transcode === 'always') {
      if (!this.#threads.reserve(cutInKey, 2)) return refuse(`worker is full: ${this.#threads.used} of its ${this.#threads.budget} threads for GStreamer pipelines are reserved`);
    }
    const go = (media: readonly ItemMedia[] | null): void => {
      const unit = this.#units.get(channelId);
      if (unit?.output.takeLive(requestId, source, media) !== true) {
        this.#threads.release(cutInKey);
        refuse(notHere);
      }
    };
    if (slate === null) return go(null);
    this.#media.loadAll([slate]).then(go, (err: unknown) => {
      this.#opts.log.warn('slate not loaded; the cut-in runs without it', { channel: channelId, err: describeLoadError(err) });
      go(null);
    });
  }

  /** A running VOD channel's new playlist (and wall-clock programme, programme-clock.ts). Errors are logged: the old list keeps playing. */
  async setPlaylist(channelId: string, items: VodItem[], loop: boolean, programme: ProgrammeSpec | null = null): Promise<void> {
    let media: ItemMedia[];
    try {
      media = await this.#media.loadAll(items);
      const unit = this.#units.get(channelId);
      if (unit === undefined) return;
      unit.output.setItems(media, loop, programme);
      this.#opts.log.info('playlist replaced', { channel: channelId, items: items.length, loop });
    } catch (err) {
      this.#opts.log.warn('playlist not applied', { channel: channelId, err: (err as Error).message });
    }
  }

  /**
   * Stops and frees one channel; answers 'stopped' even for unknown ids, so
   * stop is idempotent. Resolves false if a bus thread did not come back.
   * A fence (`fence: true`) cuts the publish before the recording is
   * finalised (channel-unit.ts says why).
   */
  async stop(channelId: string, opts: { fence?: boolean } = {}): Promise<boolean> {
    const unit = this.#units.get(channelId);
    if (unit === undefined) {
      this.#loading.delete(channelId);
      this.#report(channelId, 'stopped');
      return true;
    }
    this.#units.delete(channelId);
    const released = await unit.stop(opts.fence === true);
    this.#opts.log.info('pipeline stopped', { channel: channelId, fenced: opts.fence === true });
    return released;
  }

  /**
   * Stops everything and waits for every bus thread. Returns how many threads
   * did not come back: process.exit() would then hang joining them.
   */
  async stopAll(): Promise<number> {
    const results = await Promise.all([...[...this.#units.keys()].map((id) => this.stop(id)), ...this.#draining]);
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
