/**
 * One live source of a relaying channel. An rtmp(s):// source copied as it
 * is, the common case, is read by the worker itself (src/rtmp/player.ts): no
 * pipeline, no thread. Every other source runs in a pipeline of its own: the
 * source template (rtspsrc, souphttpsrc, srtsrc, …, or a decode for a
 * transcode) remuxed into FLV and handed to the worker through an appsink
 * (pipelines/relay-out.gst). Either way the tags go to the channel's output
 * (live-feeder.ts), which is apart, so replacing a source (a reconnect, a
 * failover, a switch back) never ends the output's publish session.
 *
 * It fails, once, on a bus error, an end of stream, no media within the
 * connect window, or no media for the stall timeout once flowing.
 */
import type { Logger } from '../log.js';
import type { LiveSource } from '../pool/pipeline-spec.js';
import { FlvReader, type FlvTag } from '../media/flv-reader.js';
import { TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO } from '../media/flv.js';
import { describeBusError, maskUrls } from '../gst/bus-errors.js';
import { NativeError, Pipeline, type GstElement } from '../gst/native.js';
import { planLiveSource } from './plan.js';
import { applyProperties } from '../gst/properties.js';
import type { Templates } from '../gst/templates.js';
import { RtmpPlayer } from '../rtmp/player.js';

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
  #player: RtmpPlayer | null = null;
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
    if (this.source.protocol === 'rtmp' && !this.transcode) this.#startPlayer();
    else this.#startPipeline();
  }

  /**
   * An RTMP source read by the worker. Its codecs are checked on the first
   * frames: what a copy cannot carry (anything but H.264 and AAC, as the
   * pipeline's parsers would refuse) fails in the words that make the relay
   * pull it again, decoded, when its transcode is AUTO (live-feeder.ts).
   */
  #startPlayer(): void {
    let checkedVideo = false;
    let checkedAudio = false;
    const player = new RtmpPlayer({
      url: this.source.url,
      timeoutMs: this.source.connectTimeoutMs,
      onTag: (tag) => {
        if (this.#done) return;
        if (tag.type === TAG_VIDEO && !checkedVideo) {
          checkedVideo = true;
          const b0 = tag.body[0] ?? 0;
          // The enhanced-RTMP flag (0x80) means HEVC, AV1 or VP9 by FourCC; codec 7 is H.264.
          if ((b0 & 0x80) !== 0 || (b0 & 0x0f) !== 7) return this.#fail(`source: not-negotiated: video codec ${b0 & 0x80 ? 'enhanced' : b0 & 0x0f} cannot be copied as H.264`);
        }
        if (tag.type === TAG_AUDIO && !checkedAudio) {
          checkedAudio = true;
          const format = (tag.body[0] ?? 0) >> 4;
          if (format !== 10) return this.#fail(`source: not-negotiated: audio format ${format} cannot be copied as AAC`);
        }
        if (tag.type !== TAG_SCRIPT) this.#lastTagAt = performance.now();
        this.#deps.onTag(tag);
      },
      onEnd: (err) => this.#fail(err.code === 'ENDED' ? `source: ${err.message}` : maskUrls(`source: ${err.message}`)),
    });
    this.#player = player;
    player.play().catch((err: unknown) => this.#fail(maskUrls(`source: ${(err as Error).message}`)));
  }

  #startPipeline(): void {
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

  /**
   * Reads may wait for a batch from now on, or from Play.Start (read-pacer.ts).
   * A channel's first source asks once it joined the output: before that, a
   * batch's wait would only delay the keyframe its start waits for.
   */
  batchReads(): void {
    this.#player?.batchReads();
  }

  /** Stops the pipeline; its pull and bus poller return on their own once it is at NULL. */
  stop(): void {
    this.#done = true;
    void this.#pipeline?.stop();
    void this.#player?.close();
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
