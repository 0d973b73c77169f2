/**
 * One extra push target of a channel: the channel's stream read back from
 * the origin and forwarded, FLV as is, in a pipeline of its own
 * (pipelines/forward.gst). Kept apart from the channel's pipeline because
 * GStreamer's tee hands a branch's error back upstream: a dead CDN would
 * stop the whole channel. Here a failure stops this forwarder only; it is
 * started again after its own full-jitter backoff, for as long as the
 * channel plays, and its numbers add up across those restarts.
 */
import type { Logger } from '../log.js';
import type { TargetStats } from '../pool/pipeline-spec.js';
import { fullJitterBackoff } from '../pool/backoff.js';
import { describeBusError, maskUrls } from '../gst/bus-errors.js';
import { Pipeline, type GstElement } from '../gst/native.js';
import { outBytes, setRtmpLocation } from '../gst/rtmp2.js';
import { render, type Templates } from '../gst/templates.js';

/** Retry delays of a failed forwarder: 0.5 s doubling to 10 s, full jitter. */
const retryBackoff = { baseMs: 500, capMs: 10_000 };

export interface ForwardDeps {
  readonly channelId: string;
  readonly index: number;
  /** The channel's stream at the origin. */
  readonly from: string;
  readonly to: string;
  readonly templates: Templates;
  readonly log: Logger;
}

export class ForwardPipeline {
  readonly #deps: ForwardDeps;
  #pipeline: Pipeline | null = null;
  #sink: GstElement | null = null;
  #retry: NodeJS.Timeout | null = null;
  #attempt = 0;
  #stopped = false;
  /** Bytes of the forwarders before the running one. */
  #bytesBefore = 0;
  #bytesNow = 0;
  #errors = 0;
  #lastError: string | undefined;
  #state: NonNullable<TargetStats['state']> = 'connecting';

  constructor(deps: ForwardDeps) {
    this.#deps = deps;
  }

  start(): void {
    if (this.#stopped) return;
    this.#state = 'connecting';
    let pipeline: Pipeline;
    try {
      pipeline = Pipeline.parse(render(this.#deps.templates['forward']));
      const src = pipeline.element('src');
      const sink = pipeline.element('sink');
      setRtmpLocation(src, this.#deps.from, 'the origin');
      setRtmpLocation(sink, this.#deps.to, `target ${this.#deps.index}`);
      this.#sink = sink;
    } catch (err) {
      this.#failed(maskUrls((err as Error).message));
      return;
    }
    this.#pipeline = pipeline;
    pipeline.pollBus((m) => {
      if (this.#pipeline !== pipeline) return;
      if (m.type === 'error') this.#failed(describeBusError(m));
      else if (m.type === 'eos') this.#failed('the channel\'s stream at the origin ended');
    });
    pipeline.play();
  }

  /** Reads the sink's byte counter (called from the host's sampler). */
  sample(): void {
    const sink = this.#sink;
    if (sink === null || this.#pipeline === null) return;
    const b = outBytes(sink);
    if (b === null) return;
    if (b > this.#bytesNow && this.#state === 'connecting') {
      this.#state = 'up';
      this.#attempt = 0;
    }
    this.#bytesNow = b;
  }

  stats(): TargetStats {
    const t: TargetStats = { index: this.#deps.index, bytesSent: this.#bytesBefore + this.#bytesNow, errors: this.#errors, state: this.#state };
    if (this.#lastError !== undefined) t.lastError = this.#lastError;
    return t;
  }

  #halt(): void {
    const pipeline = this.#pipeline;
    this.#pipeline = null;
    this.#sink = null;
    this.#bytesBefore += this.#bytesNow;
    this.#bytesNow = 0;
    void pipeline?.stop();
  }

  #failed(message: string): void {
    this.#halt();
    if (this.#stopped) return;
    this.#errors += 1;
    this.#lastError = `target ${this.#deps.index}: ${message}`.slice(0, 500);
    this.#state = 'retrying';
    const wait = fullJitterBackoff(this.#attempt, retryBackoff);
    this.#attempt += 1;
    this.#deps.log.warn('push target failed; retrying on its own', { channel: this.#deps.channelId, target: this.#deps.index, error: this.#lastError, waitMs: wait });
    this.#retry = setTimeout(() => {
      this.#retry = null;
      this.start();
    }, wait);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#retry !== null) clearTimeout(this.#retry);
    this.#retry = null;
    this.#halt();
  }
}
