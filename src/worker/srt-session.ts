/**
 * One session of an srt:// push target: the channel's batches, as they go to
 * the origin, written as FLV into a pipeline of their own (appsrc → flvdemux
 * → parsers → mpegtsmux → srtsink in caller mode, pipelines/target-srt.gst).
 * It looks to PushTarget like an RtmpPublisher (push-target.ts's
 * TargetSession), so an SRT target gets the same join at a keyframe, the same
 * isolation, backoff and numbers as an RTMP one.
 *
 * Why a pipeline and not the worker's own socket, as for RTMP: SRT is a
 * protocol over UDP with retransmission, pacing and encryption, which only
 * libsrt (through srtsink) does here. The cost is one pipeline per srt://
 * target: its streaming threads, and one threadpool thread for its bus
 * (threads.ts counts it). Every batch crosses into GStreamer once, as one
 * buffer.
 *
 * srtsink connects when its first buffer arrives and blocks its own
 * streaming thread meanwhile (never the event loop: play() returns at once,
 * measured 1 ms). A peer that is not there fails the session after libsrt's
 * connect timeout (3 s) with a bus error; data pushed meanwhile waits in the
 * appsrc, which `bytesPending` reports, so a peer that does not keep up is
 * cut like an RTMP one.
 */
import type { Logger } from '../log.js';
import { maskUrls } from '../gst/bus-errors.js';
import { type GstElement, Pipeline } from '../gst/native.js';
import { render, type Templates } from '../gst/templates.js';
import { flvFileHeader, tagFrame } from '../media/flv.js';
import type { MediaTag } from '../rtmp/chunks.js';

/** No timestamp on the buffers: flvdemux takes every time from the FLV tags (GST_CLOCK_TIME_NONE). */
const noTime = 0xffff_ffff_ffff_ffffn;

export interface SrtSessionOptions {
  /** srt://host:port[?passphrase=…&latency=…&pbkeylen=…&streamid=…], validated by media/urls.ts. */
  readonly url: string;
  readonly templates: Templates;
  readonly log: Logger;
}

export class SrtSession {
  readonly #opts: SrtSessionOptions;
  #pipeline: Pipeline | null = null;
  #src: GstElement | null = null;
  #sink: GstElement | null = null;
  #publishing = false;
  #onClose: ((err: Error) => void) | null = null;
  /** Bytes srtsink has sent, as of the last read of its statistics. */
  #sent = 0;

  constructor(opts: SrtSessionOptions) {
    this.#opts = opts;
  }

  get publishing(): boolean {
    return this.#publishing;
  }

  /** Bytes libsrt has sent (SRT payload: the MPEG-TS), read from srtsink's statistics. */
  get bytesFlushed(): number {
    const stats = this.#sink?.get('stats');
    // The binding hands a GstStructure over as its serialised text.
    const m = typeof stats === 'string' ? /bytes-sent-total=\(guint64\)(\d+)/.exec(stats) : null;
    if (m?.[1] !== undefined) this.#sent = Math.max(this.#sent, Number(m[1]));
    return this.#sent;
  }

  /** FLV bytes waiting in the appsrc: a peer that is not there, or too slow, makes this grow. */
  get bytesPending(): number {
    const level = this.#src?.get('current-level-bytes');
    return typeof level === 'number' ? level : 0;
  }

  /** Called once when the session fails after publish() resolved (not on close()). */
  onClose(cb: (err: Error) => void): void {
    this.#onClose = cb;
  }

  /**
   * Builds and plays the pipeline; from then on it takes media. Rejects when
   * GStreamer cannot build it or refuses the URL; a peer that does not
   * answer shows later, through onClose.
   */
  publish(): Promise<void> {
    try {
      const pipeline = Pipeline.parse(render(this.#opts.templates['target-srt']));
      this.#pipeline = pipeline;
      this.#src = pipeline.element('src');
      this.#sink = pipeline.element('sink');
      this.#sink.set('uri', this.#opts.url);
      pipeline.pollBus((m) => {
        if (m.type === 'error') this.#fail(`${m.message}${m.debug !== null ? ` (${m.debug.split('\n').pop() ?? ''})` : ''}`);
        else if (m.type === 'eos') this.#fail('the pipeline ended');
      });
      pipeline.play();
      this.#src.push(flvFileHeader(), noTime);
      this.#publishing = true;
      return Promise.resolve();
    } catch (err) {
      void this.#stop();
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** The tags as FLV, in one buffer. */
  send(tags: readonly MediaTag[]): void {
    const src = this.#src;
    if (!this.#publishing || src === null || tags.length === 0) return;
    const pieces: Buffer[] = [];
    for (const tag of tags) {
      const { header, trailer } = tagFrame(tag.type, tag.timeMs, tag.body.length);
      pieces.push(header, tag.body, trailer);
    }
    src.push(Buffer.concat(pieces), noTime);
  }

  /** Ends the session at once: what libsrt has not sent yet is dropped (`flush` is RTMP's; SRT has no graceful end worth waiting for). */
  close(_flush = true): Promise<void> {
    this.#onClose = null;
    return this.#stop();
  }

  #fail(message: string): void {
    if (!this.#publishing) return;
    this.#publishing = false;
    const cb = this.#onClose;
    this.#onClose = null;
    void this.#stop();
    cb?.(new Error(maskUrls(message)));
  }

  async #stop(): Promise<void> {
    this.#publishing = false;
    // The last count, before the sink is gone.
    void this.bytesFlushed;
    const pipeline = this.#pipeline;
    this.#pipeline = null;
    this.#src = null;
    this.#sink = null;
    if (pipeline === null) return;
    const released = await pipeline.stop();
    if (!released) this.#opts.log.warn('srt target: the bus thread did not come back in time');
  }
}
