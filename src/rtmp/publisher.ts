/**
 * An RTMP publisher on a plain Node socket: the output of every channel to
 * its origin. It replaces `appsrc ! rtmp2sink`, which woke three threads
 * per FLV tag (the appsrc task, the sink's clock wait, the RTMP loop); here
 * a channel costs no thread at all, and a batch of tags is one writev on
 * the worker's event loop. bench/README.md has the measurements.
 *
 * The session: TCP (or TLS for rtmps://), the plain handshake (C0 C1 C2,
 * which nginx-rtmp and CDNs accept from publishers), Set Chunk Size, connect,
 * createStream, publish; then media messages until close. Answers the
 * server's pings (nginx-rtmp drops a publisher that does not) and
 * acknowledges what it receives.
 *
 * FLV tags in, RTMP messages out: a tag's body is the message payload and
 * its header gives the type and the timestamp, so the feeders stay FLV
 * muxers and need not know which sink they feed. A script tag (onMetaData)
 * goes out as `@setDataFrame`, as publishers send it.
 */
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { decode, encode, type Amf, type AmfObject } from './amf0.js';
import {
  ChunkReader,
  chunkMessage,
  MSG_ACK,
  MSG_AUDIO,
  MSG_COMMAND_AMF0,
  MSG_DATA_AMF0,
  MSG_SET_CHUNK_SIZE,
  MSG_USER_CONTROL,
  MSG_VIDEO,
  MSG_WINDOW_ACK_SIZE,
  type RtmpMessage,
} from './chunks.js';

const HANDSHAKE_BYTES = 1536;
/** Our chunk size: large enough that a typical frame is one or two chunks, within what servers accept. */
export const defaultChunkSize = 4096;
const CSID_CONTROL = 2;
const CSID_COMMAND = 3;
const CSID_DATA = 5;
const CSID_AUDIO = 4;
const CSID_VIDEO = 6;
const USER_CONTROL_PING_REQUEST = 6;
const USER_CONTROL_PING_RESPONSE = 7;
const FLV_HEADER = 11;
const setDataFrame = encode('@setDataFrame');

export class RtmpError extends Error {
  constructor(
    readonly code: 'CONNECT' | 'HANDSHAKE' | 'REFUSED' | 'PROTOCOL' | 'CLOSED' | 'TIMEOUT',
    message: string,
  ) {
    super(message);
  }
}

export interface RtmpTarget {
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  readonly app: string;
  readonly stream: string;
  readonly tcUrl: string;
}

/** rtmp://host[:port]/app/stream[?query] (the stream name keeps the query, as servers expect). */
export function parseRtmpUrl(url: string): RtmpTarget {
  const u = new URL(url);
  const tls = u.protocol === 'rtmps:';
  if (!tls && u.protocol !== 'rtmp:') throw new RtmpError('CONNECT', `not an rtmp(s):// URL: ${u.protocol}`);
  const path = u.pathname.replace(/^\/+/, '');
  const slash = path.indexOf('/');
  if (slash <= 0 || slash === path.length - 1) throw new RtmpError('CONNECT', 'an RTMP URL needs /app/stream');
  const app = decodeURIComponent(path.slice(0, slash));
  const stream = decodeURIComponent(path.slice(slash + 1)) + u.search;
  const port = u.port === '' ? (tls ? 443 : 1935) : Number(u.port);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return { tls, host, port, app, stream, tcUrl: `${u.protocol}//${u.host}/${app}` };
}

export interface PublisherOptions {
  readonly url: string;
  /** Handshake through Publish.Start must finish within this. */
  readonly timeoutMs: number;
  readonly chunkSize?: number;
}

type Pending = { resolve: (v: Amf[]) => void; reject: (e: Error) => void };

export class RtmpPublisher {
  readonly #target: RtmpTarget;
  readonly #opts: PublisherOptions;
  readonly #chunkSize: number;
  #socket: Socket | null = null;
  readonly #reader = new ChunkReader();
  #nextTxn = 1;
  readonly #pending = new Map<number, Pending>();
  #publishStatus: Pending | null = null;
  #streamId = 0;
  #received = 0;
  #ackedAt = 0;
  #ackWindow = 2_500_000;
  #handshake: { resolve: () => void; reject: (e: Error) => void; got: Buffer } | null = null;
  #publishing = false;
  #closed: RtmpError | null = null;
  #bytesQueued = 0;
  #bytesFlushed = 0;
  #onClose: ((err: RtmpError) => void) | null = null;

  constructor(opts: PublisherOptions) {
    this.#opts = opts;
    this.#target = parseRtmpUrl(opts.url);
    this.#chunkSize = opts.chunkSize ?? defaultChunkSize;
  }

  /** Bytes handed to the kernel so far (write callbacks fired): the proof that media leaves. */
  get bytesFlushed(): number {
    return this.#bytesFlushed;
  }

  /** Bytes given to send() but not yet handed to the kernel: a growing figure is a slow or stuck origin. */
  get bytesPending(): number {
    return this.#bytesQueued - this.#bytesFlushed;
  }

  get publishing(): boolean {
    return this.#publishing && this.#closed === null;
  }

  /** Called once when the session ends for any reason after publish() resolved (not on close()). */
  onClose(cb: (err: RtmpError) => void): void {
    this.#onClose = cb;
  }

  /** Connects and publishes; resolves on NetStream.Publish.Start, rejects with a coded RtmpError. */
  async publish(): Promise<void> {
    const t = this.#target;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RtmpError('TIMEOUT', `no RTMP publish within ${this.#opts.timeoutMs} ms`)), this.#opts.timeoutMs);
    });
    try {
      await Promise.race([this.#session(t), timeout]);
    } catch (err) {
      this.#destroy(err instanceof RtmpError ? err : new RtmpError('PROTOCOL', (err as Error).message));
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async #session(t: RtmpTarget): Promise<void> {
    await this.#open(t);
    await this.#shake();
    this.#write([{ csid: CSID_CONTROL, type: MSG_SET_CHUNK_SIZE, streamId: 0, timestamp: 0, payload: u32(this.#chunkSize) }]);
    const connected = await this.#command('connect', [
      { app: t.app, type: 'nonprivate', flashVer: 'FMLE/3.0 (compatible; vlive)', tcUrl: t.tcUrl },
    ]);
    expectResult('connect', connected);
    const created = await this.#command('createStream', [null]);
    expectResult('createStream', created);
    const id = created[3];
    if (typeof id !== 'number') throw new RtmpError('PROTOCOL', 'createStream answered without a stream id');
    this.#streamId = id;
    const status = new Promise<Amf[]>((resolve, reject) => (this.#publishStatus = { resolve, reject }));
    this.#write([{ csid: CSID_DATA + 3, type: MSG_COMMAND_AMF0, streamId: id, timestamp: 0, payload: encode('publish', 0, null, t.stream, 'live') }]);
    const info = statusInfo(await status);
    if (info.code !== 'NetStream.Publish.Start') {
      throw new RtmpError('REFUSED', `the origin refused the publish: ${info.code ?? 'no code'}${info.description ? ` (${info.description})` : ''}`);
    }
    this.#publishing = true;
  }

  #open(t: RtmpTarget): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = t.tls ? tlsConnect({ host: t.host, port: t.port, servername: t.host }) : tcpConnect({ host: t.host, port: t.port });
      this.#socket = socket;
      socket.setNoDelay(true);
      const onError = (err: NodeJS.ErrnoException): void => reject(new RtmpError('CONNECT', `cannot connect to ${t.host}:${t.port}: ${describeSocketError(err)}`));
      socket.once('error', onError);
      socket.once(t.tls ? 'secureConnect' : 'connect', () => {
        socket.off('error', onError);
        socket.on('error', (err: NodeJS.ErrnoException) => this.#destroy(new RtmpError('CLOSED', `connection error: ${describeSocketError(err)}`)));
        socket.on('close', () => this.#destroy(new RtmpError('CLOSED', 'the origin closed the connection')));
        socket.on('data', (d: Buffer) => this.#onData(d));
        resolve();
      });
    });
  }

  #shake(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#handshake = { resolve, reject, got: Buffer.alloc(0) };
      const c1 = Buffer.alloc(HANDSHAKE_BYTES);
      randomBytes(HANDSHAKE_BYTES - 8).copy(c1, 8); // time 0, zero version: the plain handshake
      this.#socket?.write(Buffer.concat([Buffer.from([3]), c1]));
    });
  }

  #onData(d: Buffer): void {
    this.#received += d.length;
    const hs = this.#handshake;
    if (hs !== null) {
      hs.got = Buffer.concat([hs.got, d]);
      if (hs.got.length < 1 + 2 * HANDSHAKE_BYTES) return;
      if (hs.got[0] !== 3) {
        hs.reject(new RtmpError('HANDSHAKE', `the server speaks RTMP version ${hs.got[0]}, not 3`));
        return;
      }
      this.#handshake = null;
      const s1 = hs.got.subarray(1, 1 + HANDSHAKE_BYTES);
      this.#socket?.write(Buffer.from(s1)); // C2 echoes S1
      hs.resolve();
      d = hs.got.subarray(1 + 2 * HANDSHAKE_BYTES);
      if (d.length === 0) return;
    }
    let messages: RtmpMessage[];
    try {
      messages = this.#reader.push(d);
    } catch (err) {
      this.#destroy(new RtmpError('PROTOCOL', (err as Error).message));
      return;
    }
    for (const m of messages) this.#onMessage(m);
    if (this.#received - this.#ackedAt >= this.#ackWindow) {
      this.#ackedAt = this.#received;
      this.#write([{ csid: CSID_CONTROL, type: MSG_ACK, streamId: 0, timestamp: 0, payload: u32(this.#received >>> 0) }]);
    }
  }

  #onMessage(m: RtmpMessage): void {
    switch (m.type) {
      case MSG_WINDOW_ACK_SIZE:
        if (m.payload.length >= 4) this.#ackWindow = Math.max(1, m.payload.readUInt32BE(0));
        return;
      case MSG_USER_CONTROL:
        if (m.payload.length >= 6 && m.payload.readUInt16BE(0) === USER_CONTROL_PING_REQUEST) {
          const pong = Buffer.alloc(6);
          pong.writeUInt16BE(USER_CONTROL_PING_RESPONSE, 0);
          m.payload.copy(pong, 2, 2, 6);
          this.#write([{ csid: CSID_CONTROL, type: MSG_USER_CONTROL, streamId: 0, timestamp: 0, payload: pong }]);
        }
        return;
      case MSG_COMMAND_AMF0:
        this.#onCommand(m);
        return;
      default:
        return;
    }
  }

  #onCommand(m: RtmpMessage): void {
    let values: Amf[];
    try {
      values = decode(m.payload);
    } catch {
      return; // a command we cannot read is one we did not ask for
    }
    const [name, txn] = values;
    if ((name === '_result' || name === '_error') && typeof txn === 'number') {
      const p = this.#pending.get(txn);
      if (p === undefined) return;
      this.#pending.delete(txn);
      p.resolve(values);
      return;
    }
    if (name === 'onStatus') {
      const info = statusInfo(values);
      if (this.#publishStatus !== null) {
        const p = this.#publishStatus;
        this.#publishStatus = null;
        p.resolve(values);
        return;
      }
      // After the publish: the origin ending it (nginx's drop_idle_publisher, a second publisher's kick…).
      if (info.level === 'error' || info.code === 'NetStream.Unpublish.Success') {
        this.#destroy(new RtmpError('CLOSED', `the origin ended the publish: ${info.code ?? 'no code'}`));
      }
    }
  }

  #command(name: string, args: Amf[]): Promise<Amf[]> {
    const txn = this.#nextTxn++;
    return new Promise((resolve, reject) => {
      this.#pending.set(txn, { resolve, reject });
      this.#write([{ csid: CSID_COMMAND, type: MSG_COMMAND_AMF0, streamId: 0, timestamp: 0, payload: encode(name, txn, ...args) }]);
    });
  }

  #write(messages: readonly RtmpMessage[], onFlushed?: () => void): void {
    const socket = this.#socket;
    if (socket === null || this.#closed !== null || messages.length === 0) return;
    const pieces: Buffer[] = [];
    let bytes = 0;
    for (const m of messages) {
      for (const piece of chunkMessage(m, this.#chunkSize)) {
        bytes += piece.length;
        pieces.push(piece);
      }
    }
    this.#bytesQueued += bytes;
    // Corked, the pieces leave in one writev; the last one's callback fires
    // once all of them are in the kernel.
    socket.cork();
    const last = pieces.length - 1;
    pieces.forEach((piece, i) => {
      if (i < last) socket.write(piece);
      else {
        socket.write(piece, () => {
          this.#bytesFlushed += bytes;
          onFlushed?.();
        });
      }
    });
    socket.uncork();
  }

  /**
   * Sends FLV tags (header, body, previous-tag-size each) as media messages,
   * in one write. `onFlushed` runs once they are all in the kernel.
   */
  send(tags: readonly Buffer[], onFlushed?: () => void): void {
    if (!this.#publishing || this.#closed !== null) return;
    const messages: RtmpMessage[] = [];
    for (const tag of tags) {
      const type = tag[0] ?? 0;
      const size = tag.readUIntBE(1, 3);
      const timestamp = (tag.readUIntBE(4, 3) | ((tag[7] ?? 0) << 24)) >>> 0;
      const body = tag.subarray(FLV_HEADER, FLV_HEADER + size);
      if (type === MSG_VIDEO) messages.push({ csid: CSID_VIDEO, type, streamId: this.#streamId, timestamp, payload: body });
      else if (type === MSG_AUDIO) messages.push({ csid: CSID_AUDIO, type, streamId: this.#streamId, timestamp, payload: body });
      else if (type === MSG_DATA_AMF0) {
        messages.push({ csid: CSID_DATA, type, streamId: this.#streamId, timestamp, payload: Buffer.concat([setDataFrame, body]) });
      }
    }
    this.#write(messages, onFlushed);
  }

  #destroy(err: RtmpError): void {
    if (this.#closed !== null) return;
    this.#closed = err;
    const wasPublishing = this.#publishing;
    this.#publishing = false;
    this.#handshake?.reject(err);
    this.#handshake = null;
    this.#publishStatus?.reject(err);
    this.#publishStatus = null;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    this.#socket?.destroy();
    if (wasPublishing) this.#onClose?.(err);
  }

  /**
   * Ends the session. `flush` lets what was sent leave first (a graceful
   * stop); without it the connection is cut at once (a fence: the publish
   * must be gone now).
   */
  close(flush = true): Promise<void> {
    const socket = this.#socket;
    this.#onClose = null;
    if (socket === null || socket.destroyed) {
      this.#destroy(new RtmpError('CLOSED', 'closed'));
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      socket.once('close', () => resolve());
      // Nothing to flush before the publish started: a handshake in flight is just cut.
      if (flush && this.#publishing && this.#closed === null) {
        this.#publishing = false;
        socket.end();
        // A peer that never reads would hold end() forever.
        setTimeout(() => socket.destroy(), 1000).unref();
      } else {
        this.#destroy(new RtmpError('CLOSED', 'closed'));
      }
    });
  }
}

/** Socket errors in the words GStreamer and curl use, with the code for searches. */
function describeSocketError(err: NodeJS.ErrnoException): string {
  const words: Record<string, string> = {
    ECONNREFUSED: 'Connection refused',
    ECONNRESET: 'Connection reset by peer',
    ETIMEDOUT: 'Connection timed out',
    EHOSTUNREACH: 'No route to host',
    ENETUNREACH: 'Network is unreachable',
    ENOTFOUND: 'Host not found',
    EPIPE: 'Broken pipe',
  };
  const w = err.code !== undefined ? words[err.code] : undefined;
  return w !== undefined ? `${w} (${err.code})` : err.message;
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

function statusInfo(values: readonly Amf[]): { code?: string; level?: string; description?: string } {
  const info = values[3];
  if (info === null || typeof info !== 'object' || Array.isArray(info)) return {};
  const o = info as AmfObject;
  const pick = (k: string): string | undefined => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  const out: { code?: string; level?: string; description?: string } = {};
  const code = pick('code');
  const level = pick('level');
  const description = pick('description');
  if (code !== undefined) out.code = code;
  if (level !== undefined) out.level = level;
  if (description !== undefined) out.description = description;
  return out;
}

function expectResult(what: string, values: readonly Amf[]): void {
  if (values[0] === '_result') return;
  const info = statusInfo(values);
  throw new RtmpError('REFUSED', `the origin refused ${what}: ${info.code ?? 'no code'}${info.description ? ` (${info.description})` : ''}`);
}
