/**
 * An RTMP publisher: the output of every channel to its origin. It replaces
 * `appsrc ! rtmp2sink`, which woke three threads per FLV tag (the appsrc
 * task, the sink's clock wait, the RTMP loop); here a channel costs no
 * thread at all, and a batch of tags is one writev on the worker's event
 * loop. bench/README.md has the measurements.
 *
 * The session: connection.ts up to connect, then createStream and publish,
 * then media messages until close.
 *
 * Media tags in (type, time, body: what an FLV tag holds, without its
 * header), RTMP messages out, the body as the payload, never copied. A data
 * tag (onMetaData) goes out as `@setDataFrame`, as publishers send it; an
 * onCuePoint goes as it is (worker/cue-points.ts).
 */
import { dataName, encode, type Amf } from './amf0.js';
import { MSG_AUDIO, MSG_COMMAND_AMF0, MSG_VIDEO, type MediaTag, type RtmpMessage } from './chunks.js';
import { refused, RtmpConnection, RtmpError, statusInfo } from './connection.js';

export { RtmpError } from './connection.js';

const CSID_AUDIO = 4;
const CSID_DATA = 5;
const CSID_VIDEO = 6;
const CSID_STREAM_COMMAND = 8;
const setDataFrame = encode('@setDataFrame');

export interface PublisherOptions {
  readonly url: string;
  /** Connect through Publish.Start must finish within this. */
  readonly timeoutMs: number;
  readonly chunkSize?: number;
}

export class RtmpPublisher {
  readonly #opts: PublisherOptions;
  readonly #conn: RtmpConnection;
  #streamId = 0;
  #publishing = false;
  #onClose: ((err: RtmpError) => void) | null = null;

  constructor(opts: PublisherOptions) {
    this.#opts = opts;
    this.#conn = new RtmpConnection(
      opts.url,
      {
        onCommand: (values) => this.#onCommand(values),
        onMedia: () => undefined,
        onEnd: (err) => {
          const was = this.#publishing;
          this.#publishing = false;
          if (was) this.#onClose?.(err);
        },
      },
      opts.chunkSize !== undefined ? { chunkSize: opts.chunkSize } : {},
    );
  }

  /** Bytes handed to the kernel so far: the proof that media leaves. */
  get bytesFlushed(): number {
    return this.#conn.bytesFlushed;
  }

  /** Bytes sent but not yet handed to the kernel: a growing figure is a slow or stuck origin. */
  get bytesPending(): number {
    return this.#conn.bytesPending;
  }

  get publishing(): boolean {
    return this.#publishing && !this.#conn.ended;
  }

  /** Called once when the session ends by itself after publish() resolved (not on close()). */
  onClose(cb: (err: RtmpError) => void): void {
    this.#onClose = cb;
  }

  /** Connects and publishes; resolves on NetStream.Publish.Start, rejects with a coded RtmpError. */
  async publish(): Promise<void> {
    await this.#conn.establish(this.#opts.timeoutMs, 'no RTMP publish', () => this.#session());
  }

  async #session(): Promise<void> {
    const conn = this.#conn;
    await conn.open();
    const id = await conn.createStream();
    this.#streamId = id;
    const status = conn.nextStatus();
    conn.write([{ csid: CSID_STREAM_COMMAND, type: MSG_COMMAND_AMF0, streamId: id, timestamp: 0, payload: encode('publish', 0, null, conn.target.stream, 'live') }]);
    const info = await status;
    if (info.code !== 'NetStream.Publish.Start') throw refused('the publish', info);
    this.#publishing = true;
  }

  #onCommand(values: Amf[]): void {
    if (values[0] !== 'onStatus') return;
    // After the publish: the server ending it (nginx's drop_idle_publisher, a kick…).
    const info = statusInfo(values);
    if (info.level === 'error' || info.code === 'NetStream.Unpublish.Success') {
      this.#conn.end(new RtmpError('CLOSED', `the server ended the publish: ${info.code ?? 'no code'}`));
    }
  }

  /** Sends media tags as messages, in one write. `onFlushed` runs once they are all in the kernel. */
  send(tags: readonly MediaTag[], onFlushed?: () => void): void {
    if (!this.publishing) return;
    const streamId = this.#streamId;
    const messages: RtmpMessage[] = tags.map(({ type, timeMs, body }) => {
      const timestamp = timeMs >>> 0;
      if (type === MSG_VIDEO) return { csid: CSID_VIDEO, type, streamId, timestamp, payload: body };
      if (type === MSG_AUDIO) return { csid: CSID_AUDIO, type, streamId, timestamp, payload: body };
      // A cue point is an event at its time, not the stream's metadata: it goes as it is, so the origin does not keep it as such.
      if (dataName(body) === 'onCuePoint') return { csid: CSID_DATA, type, streamId, timestamp, payload: body };
      return { csid: CSID_DATA, type, streamId, timestamp, payload: Buffer.concat([setDataFrame, body]) };
    });
    this.#conn.write(messages, onFlushed);
  }

  /**
   * Ends the session. `flush` lets what was sent leave first (a graceful
   * stop); without it, or before the publish started, the connection is
   * cut at once (a fence: the publish must be gone now).
   */
  close(flush = true): Promise<void> {
    this.#onClose = null;
    const graceful = flush && this.publishing;
    this.#publishing = false;
    return this.#conn.close(graceful);
  }
}
