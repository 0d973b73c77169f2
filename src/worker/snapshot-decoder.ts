/**
 * Decodes one H.264 keyframe into a JPEG in a one-shot pipeline
 * (pipelines/snapshot-decode.gst). At most `concurrency` run at once per
 * worker: each holds a bus thread for its few milliseconds, and hundreds of
 * channels on one interval would otherwise take every thread at once.
 */
import { Pipeline } from '../gst/native.js';
import { render, type Templates } from '../gst/templates.js';

const decodeTimeoutMs = 5000;

/** The appsrc caps for a keyframe, from the tap's own caps: integers and the codec_data's hex only. */
export function keyframeCaps(caps: Readonly<Record<string, unknown>>): string {
  const codecData = caps['codec_data'];
  if (!Buffer.isBuffer(codecData)) throw new Error('the stream has no H.264 codec_data');
  const int = (k: string): number | null => (typeof caps[k] === 'number' && Number.isInteger(caps[k]) ? (caps[k] as number) : null);
  const size = int('width') !== null && int('height') !== null ? `,width=(int)${int('width')},height=(int)${int('height')}` : '';
  return `video/x-h264,stream-format=(string)avc,alignment=(string)au${size},codec_data=(buffer)${codecData.toString('hex')}`;
}

export class SnapshotDecoder {
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(
    private readonly templates: Templates,
    private readonly concurrency = 2,
  ) {}

  async decode(keyframe: Buffer, caps: string, out: string): Promise<void> {
    if (this.#running >= this.concurrency) await new Promise<void>((r) => this.#waiting.push(r));
    this.#running += 1;
    try {
      await this.#run(keyframe, caps, out);
    } finally {
      this.#running -= 1;
      this.#waiting.shift()?.();
    }
  }

  #run(keyframe: Buffer, caps: string, out: string): Promise<void> {
    const pipeline = Pipeline.parse(render(this.templates['snapshot-decode']));
    const src = pipeline.element('src');
    src.set('caps', caps);
    pipeline.element('sink').set('location', out);
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err: Error | null): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        void pipeline.stop();
        if (err === null) resolve();
        else reject(err);
      };
      const timer = setTimeout(() => finish(new Error('decoding the keyframe timed out')), decodeTimeoutMs);
      pipeline.pollBus((m) => {
        if (m.type === 'eos') finish(null);
        else if (m.type === 'error') finish(new Error(m.message));
      });
      pipeline.play();
      src.push(keyframe, 0n);
    });
  }
}
