/**
 * An RTMP player: a relay's rtmp(s):// source, read on the worker's event
 * loop with no GStreamer pipeline and no thread (the pipeline it replaces,
 * rtmp2src ! flvdemux ! parsers ! flvmux ! appsink, woke about ten threads
 * per tag; bench/README.md). Each audio, video and onMetaData message comes
 * out as a media tag (an FLV tag's type, time and body), the shape in which
 * the GStreamer sources' FLV is read back, so the relay (live-feeder.ts)
 * does not care which one read it.
 *
 * The session: connection.ts up to connect, then createStream, play, and
 * the buffer length; media until the server says the stream ended
 * (nginx-rtmp sends Stream EOF when its publisher leaves, and also
 * NetStream.Play.UnpublishNotify with publish_notify on).
 * Aggregate messages (type 22) are not read: nginx-rtmp does not send them;
 * a server that does would show as a source with no media.
 */
import { decode, encode, type Amf } from './amf0.js';
import { MSG_AUDIO, MSG_COMMAND_AMF0, MSG_DATA_AMF0, MSG_USER_CONTROL, MSG_VIDEO, type MediaTag, type RtmpMessage } from './chunks.js';
import { CSID_CONTROL, refused, RtmpConnection, RtmpError, statusInfo } from './connection.js';

const CSID_STREAM_COMMAND = 8;
/** The buffer we ask the server to keep for us, ms (what ffmpeg asks for). */
const bufferMs = 3000;
const USER_CONTROL_SET_BUFFER_LENGTH = 3;
/** The largest message a source may send: a keyframe of a high-bitrate 4K stream fits. */
const maxMessageBytes = 32 << 20;

export interface PlayerOptions {
  readonly url: string;
  /** Connect through Play.Start must finish within this. */
  readonly timeoutMs: number;
  readonly onTag: (tag: MediaTag) => void;
  /** The session ended by itself after play() resolved: the stream ended, or the connection did. */
  readonly onEnd: (err: RtmpError) => void;
}

export class RtmpPlayer {
  readonly #opts: PlayerOptions;
  readonly #conn: RtmpConnection;
  /** Media is taken (from the play command on: it may come in the read that brings Play.Start). */
  #playing = false;
  /** play() resolved: an end from now on is the source's end, told through onEnd. */
  #started = false;
  /** batchReads() came before Play.Start. */
  #batchOnStart = false;

  constructor(opts: PlayerOptions) {
    this.#opts = opts;
    this.#conn = new RtmpConnection(
      opts.url,
      {
        onCommand: (values) => this.#onCommand(values),
        onMedia: (m) => this.#onMedia(m),
        onStreamEof: () => {
          if (this.#started) this.#conn.end(new RtmpError('ENDED', 'the live stream ended'));
        },
        onEnd: (err) => {
          this.#playing = false;
          if (this.#started) this.#opts.onEnd(err);
        },
      },
      { maxMessageBytes },
    );
  }

  /** Connects and plays; resolves on NetStream.Play.Start, rejects with a coded RtmpError. */
  async play(): Promise<void> {
    await this.#conn.establish(this.#opts.timeoutMs, 'no RTMP play', () => this.#session());
  }

  async #session(): Promise<void> {
    const conn = this.#conn;
    await conn.open();
    const id = await conn.createStream();
    // nginx-rtmp says Play.Reset first, then Play.Start.
    const status = conn.nextStatus((i) => i.code === 'NetStream.Play.Reset');
    // Media may follow Play.Start in the same read: take it from here on.
    this.#playing = true;
    conn.awaitMedia();
    const buffer = Buffer.alloc(10);
    buffer.writeUInt16BE(USER_CONTROL_SET_BUFFER_LENGTH, 0);
    buffer.writeUInt32BE(id, 2);
    buffer.writeUInt32BE(bufferMs, 6);
    conn.write([
      { csid: CSID_STREAM_COMMAND, type: MSG_COMMAND_AMF0, streamId: id, timestamp: 0, payload: encode('play', 0, null, conn.target.stream, -1000) },
      { csid: CSID_CONTROL, type: MSG_USER_CONTROL, streamId: 0, timestamp: 0, payload: buffer },
    ]);
    const info = await status;
    if (info.code !== 'NetStream.Play.Start') {
      this.#playing = false;
      throw refused('the play', info);
    }
    this.#started = true;
    if (this.#batchOnStart) this.#conn.batchReads();
  }

  /**
   * The socket is read in batches (read-pacer.ts) from Play.Start on, or
   * from now if that has come; set-up is never batched, its answers wait.
   */
  batchReads(): void {
    if (this.#started) this.#conn.batchReads();
    else this.#batchOnStart = true;
  }

  #onCommand(values: Amf[]): void {
    if (values[0] !== 'onStatus') return;
    const info = statusInfo(values);
    if (info.code === 'NetStream.Play.UnpublishNotify' || info.code === 'NetStream.Play.Stop' || info.code === 'NetStream.Play.Complete') {
      this.#conn.end(new RtmpError('ENDED', 'the live stream ended'));
    } else if (info.level === 'error') {
      this.#conn.end(new RtmpError('ENDED', `the server ended the play: ${info.code ?? 'no code'}`));
    }
  }

  #onMedia(m: RtmpMessage): void {
    if (!this.#playing) return;
    if (m.type === MSG_DATA_AMF0) {
      // Only onMetaData is media; |RtmpSampleAccess and the like are the server's own notes.
      let values: Amf[];
      try {
        values = decode(m.payload);
      } catch {
        return;
      }
      const at = values[0] === '@setDataFrame' ? 1 : 0;
      if (values[at] !== 'onMetaData') return;
      const body = at === 1 ? m.payload.subarray(encode('@setDataFrame').length) : m.payload;
      this.#opts.onTag({ type: MSG_DATA_AMF0, timeMs: m.timestamp, body });
      return;
    }
    if (m.payload.length === 0) return; // an empty audio or video message carries nothing
    this.#opts.onTag({ type: m.type === MSG_VIDEO ? MSG_VIDEO : MSG_AUDIO, timeMs: m.timestamp, body: m.payload });
  }

  /** Ends the session at once. */
  close(): Promise<void> {
    this.#playing = false;
    this.#started = false;
    return this.#conn.close(false);
  }
}
