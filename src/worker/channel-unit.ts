/**
 * Everything one channel runs inside a worker: its output to the origin
 * (ChannelPipeline), its other push targets (PushTarget, fed the output's
 * batches) and its tap for recording and snapshots (TapPipeline). The unit
 * starts the targets and the tap once the output plays, retries a failed tap
 * while it plays, merges their numbers, and stops them in the order a stop
 * needs: an ordinary stop finalises the recording while the stream is still
 * at the origin; a fence cuts every publish first (the lease's promise) and
 * finalises the recording afterwards.
 *
 * Owns: one channel's pipelines and their order. host.ts keeps admission,
 * routing, the timers and the fence. Imports the worker's pipeline modules,
 * pool/pipeline-spec.ts and log.ts.
 */
import type { Logger } from '../log.js';
import type { Templates } from '../gst/templates.js';
import type { FromWorker } from '../pool/ipc.js';
import type { PipelineStats, TapSpec } from '../pool/pipeline-spec.js';
import type { ChannelPipeline } from './channel-pipeline.js';
import type { MediaTag } from '../rtmp/chunks.js';
import { RtmpPublisher } from '../rtmp/publisher.js';
import { PushTarget, type TargetSession } from './push-target.js';
import { SrtSession } from './srt-session.js';
import type { SnapshotDecoder } from './snapshot-decoder.js';
import { TapPipeline } from './tap-pipeline.js';

/** A failed tap (recording, snapshots) is started again after this long, while its channel plays. */
export const tapRetryMs = 10_000;

export interface ChannelUnitDeps {
  readonly channelId: string;
  readonly tap: TapSpec | null;
  /** Targets 1.. (0 is the origin, the output's): rtmp(s):// or srt://. */
  readonly extraTargets: readonly string[];
  /** A target's publish must be up within this. */
  readonly targetTimeoutMs: number;
  readonly templates: Templates;
  /** The worker's one snapshot decoder, made on first use. */
  readonly decoder: () => SnapshotDecoder;
  readonly log: Logger;
  readonly send: (msg: FromWorker) => void;
}

/** A session for one attempt at a target: the worker's own RTMP publisher, or an SRT pipeline. */
function openSession(url: string, deps: ChannelUnitDeps): TargetSession {
  if (url.startsWith('srt://')) return new SrtSession({ url, templates: deps.templates, log: deps.log });
  return new RtmpPublisher({ url, timeoutMs: deps.targetTimeoutMs });
}

export class ChannelUnit {
  readonly channelId: string;
  readonly #deps: ChannelUnitDeps;
  #output: ChannelPipeline | null = null;
  readonly #targets: PushTarget[];
  #tap: TapPipeline | null = null;
  #tapRetry: NodeJS.Timeout | null = null;
  /** Parts whose warning was sent, so a recovered tap can say so once. */
  readonly #warned = new Set<'recording' | 'snapshot'>();
  /** The output ended or a stop began: nothing starts again. */
  #over = false;

  constructor(deps: ChannelUnitDeps) {
    this.#deps = deps;
    this.channelId = deps.channelId;
    const { channelId, log } = deps;
    this.#targets = deps.extraTargets.map((url, i) => new PushTarget({ channelId, index: i + 1, open: () => openSession(url, deps), log }));
  }

  /** The output; set once, right after the unit is made (its callbacks call the unit). */
  attach(output: ChannelPipeline): void {
    this.#output = output;
  }

  get output(): ChannelPipeline {
    if (this.#output === null) throw new Error(`channel ${this.channelId}: no output attached`);
    return this.#output;
  }

  get targets(): number {
    return 1 + this.#targets.length;
  }

  /** The output's media is at the origin: the tap and the other targets start. */
  playing(): void {
    if (this.#over) return;
    if (this.#deps.tap !== null) this.#startTap(this.#deps.tap);
    for (const t of this.#targets) t.start();
  }

  /** A batch the output sent to the origin: the other targets get it too. */
  feed(batch: readonly MediaTag[]): void {
    for (const t of this.#targets) t.feed(batch);
  }

  /** The output ended by itself or was stopped: the tap and the other targets go too. */
  ended(): void {
    this.#over = true;
    void this.#takeTap()?.stop();
    void this.#stopTargets(true);
  }

  /** The channel's numbers: its output's, with targets 1.. from its push targets. */
  stats(): PipelineStats {
    const s = this.output.stats();
    if (this.#targets.length === 0) return s;
    return { ...s, targets: [...s.targets.filter((t) => t.index === 0), ...this.#targets.map((t) => t.stats())] };
  }

  /**
   * Stops the channel; resolves false if a bus thread did not come back.
   * An ordinary stop finalises the tap first, while the stream is still at
   * the origin, so the last segment ends at the stop and is listed before
   * 'stopped'. A fence (`fence: true`) does the opposite: the lease promises
   * that this publisher is gone before another node may claim the channel,
   * so every publish is cut at once, and the recording is
   * finalised afterwards (up to 3 s, tap-pipeline.ts) from what reached the origin.
   */
  async stop(fence: boolean): Promise<boolean> {
    this.#over = true;
    const output = this.output;
    if (fence) {
      const tap = this.#takeTap();
      const targets = this.#stopTargets(false);
      // stop() destroys the publisher's socket before its first await; the tap's
      // EOS is sent in the same tick, so the stream's end at the origin finds the
      // tap finalising rather than failing.
      const cut = output.stop({ now: true });
      const finalised = tap?.stop();
      const released = await cut;
      await Promise.all([finalised, targets]);
      return released;
    }
    await this.#takeTap()?.stop();
    const targets = this.#stopTargets(true);
    const released = await output.stop();
    await targets;
    return released;
  }

  #stopTargets(flush: boolean): Promise<unknown> {
    return Promise.all(this.#targets.map((t) => t.stop(flush)));
  }

  /** Starts the tap once the output is at the origin; a failed tap is retried after tapRetryMs. */
  #startTap(spec: TapSpec): void {
    if (this.#tap !== null || this.#over) return;
    const { channelId, templates, log, send } = this.#deps;
    const tap: TapPipeline = new TapPipeline({
      channelId,
      spec,
      templates,
      decoder: this.#deps.decoder(),
      warned: this.#warned,
      log,
      onEvent: (event) => send({ type: 'tap', channelId, event }),
      onFailed: (part, message) => {
        const retryS = Math.round(tapRetryMs / 1000);
        this.#warned.add(part);
        send({ type: 'tap', channelId, event: { kind: 'warning', part, message: `${part}: ${message} (retrying in ${retryS} s)` } });
        if (this.#tap !== tap) return;
        this.#tap = null;
        this.#tapRetry = setTimeout(() => {
          this.#tapRetry = null;
          this.#startTap(spec);
        }, tapRetryMs);
      },
    });
    this.#tap = tap;
    tap.start();
  }

  /** Detaches the tap (and its retry timer) without stopping it: the caller stops it in its own order. */
  #takeTap(): TapPipeline | null {
    if (this.#tapRetry !== null) clearTimeout(this.#tapRetry);
    this.#tapRetry = null;
    const tap = this.#tap;
    this.#tap = null;
    return tap;
  }
}
