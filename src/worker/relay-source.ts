/**
 * One live source of a relaying channel, in a pipeline of its own: the
 * source template (rtmp2src, rtspsrc, …) remuxed into FLV and handed to the
 * worker through an appsink (pipelines/relay-out.gst). The channel's output
 * pipeline is apart (live-feeder.ts), so replacing this one (a reconnect, a
 * failover, a switch back) never ends the output's publish session.
 *
 * It fails, once, on a bus error, an end of stream, no media within the
 * connect window, or no media for the stall timeout once flowing.
 */
import type { Logger } from '../log.js';
import type { LiveSource } from '../pool/ipc.js';
import { FlvReader, type FlvTag } from '../media/flv-reader.js';
import { describeBusError, maskUrls } from './bus-errors.js';
import { NativeError, Pipeline, type GstElement } from './native.js';
import { planLiveSource } from './plan.js';
import { applyProperties } from './properties.js';
import type { Templates } from '../gst/templates.js';

export interface RelaySourceDeps {
  readonly channelId: string;
  readonly source: LiveSource;
  /** Decode and encode instead of remuxing (see planLiveSource). */
  readonly transcode: boolean;
  readonly templates: Templates;
  /** No tag for this long, once flowing, fails the source as stalled, ms. */
  readonly stallTimeoutMs: number;
  readonly log: Logger;
  readonly onTag: (tag: FlvTag) => void;
  /** Called once; `stalled` when it stopped delivering media while connected. */
  readonly onFail: (reason: string, stalled: boolean) => void;
}

export class RelaySource {
  readonly source: LiveSource;
  readonly transcode: boolean;
  readonly #deps: RelaySourceDeps;
  #pipeline: Pipeline | null = null;
  #done = false;
  #startedAt = 0;
  #lastTagAt: number | null = null;

  constructor(deps: RelaySourceDeps) {
    this.#deps = deps;
    this.source = deps.source;
    this.transcode = deps.transcode;
  }

  get done(): boolean {
    return this.#done;
  }

  start(nowMs: number): void {
    this.#startedAt = nowMs;
    let pipeline: Pipeline;
    let out: GstElement;
    try {
      const plan = planLiveSource(this.source, this.#deps.templates, this.#deps.transcode);
      pipeline = Pipeline.parse(plan.launch);
      applyProperties(pipeline, plan.properties);
      out = pipeline.element('out');
    } catch (err) {
      // A property error already names its role ("source: …").
      this.#fail(maskUrls(err instanceof NativeError && err.code === 'PROPERTY_REJECTED' ? err.message : `source: ${(err as Error).message}`));
      return;
    }
    this.#pipeline = pipeline;
    pipeline.pollBus((m) => {
      if (this.#done) return;
      if (m.type === 'error') this.#fail(describeBusError(m));
      else if (m.type === 'eos') this.#fail('source: the live stream ended');
    });
    pipeline.play();
    void this.#pullLoop(out);
  }

  /** The source's watchdogs, from the host's sampler. */
  sample(nowMs: number): void {
    if (this.#done) return;
    if (this.#lastTagAt === null) {
      // The channel's connect timeout (the seed's connectDuration) bounds the whole wait for media:
      // a server that accepts the play of a stream nobody publishes (nginx-rtmp does) must not hold an attempt forever.
      const limit = this.source.connectTimeoutMs;
      if (nowMs - this.#startedAt > limit) this.#fail(`source: no media within ${limit} ms`);
    } else if (nowMs - this.#lastTagAt > this.#deps.stallTimeoutMs) {
      this.#fail(`source stalled: no media for ${Math.round(nowMs - this.#lastTagAt)} ms`, true);
    }
  }

  /** Stops the pipeline; its pull and bus poller return on their own once it is at NULL. */
  stop(): void {
    this.#done = true;
    this.#pipeline?.stop();
  }

  async #pullLoop(out: GstElement): Promise<void> {
    const reader = new FlvReader();
    while (!this.#done) {
      const sample = await out.pull();
      if (sample === null || this.#done) return;
      let tags: FlvTag[];
      try {
        tags = reader.push(sample.data);
      } catch (err) {
        this.#fail(`source: ${(err as Error).message}`);
        return;
      }
      if (tags.length > 0) this.#lastTagAt = performance.now();
      for (const tag of tags) {
        if (this.#done) return;
        this.#deps.onTag(tag);
      }
    }
  }

  #fail(reason: string, stalled = false): void {
    if (this.#done) return;
    this.stop();
    this.#deps.log.warn('live source failed', { channel: this.#deps.channelId, source: this.source.label, error: reason });
    this.#deps.onFail(reason, stalled);
  }
}
