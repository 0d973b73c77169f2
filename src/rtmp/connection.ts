/**
 * One RTMP client connection on a plain Node socket, up to `connect`'s
 * answer: TCP (or TLS for rtmps://), the plain handshake (C0 C1 C2, which
 * nginx-rtmp, other servers and CDNs accept), Set Chunk Size, connect. Then
 * commands with their answers, messages out in batches (one write each), and
 * messages in. It answers the server's pings (nginx-rtmp drops a client that
 * does not) and acknowledges what it receives once per the server's window.
 *
 * The publisher (publisher.ts) and the player (player.ts) are the two
 * sessions built on it. No thread, no timer: everything happens on the
 * event loop that owns the socket.
 */
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { decode, encode, type Amf, type AmfObject } from './amf0.js';
import { holdUntilNextBatch, release } from './read-pacer.js';
import {
  ChunkReader,
  chunkedSize,
  writeMessages,
  MSG_ACK,
  MSG_COMMAND_AMF0,
  MSG_SET_CHUNK_SIZE,
  MSG_USER_CONTROL,
  MSG_WINDOW_ACK_SIZE,
  type RtmpMessage,
} from './chunks.js';
import { writeArena } from './write-arena.js';

const HANDSHAKE_BYTES = 1536;
/** Our chunk size: a typical frame is one or two chunks, within what servers accept. */
export const defaultChunkSize = 4096;
export const CSID_CONTROL = 2;
const CSID_COMMAND = 3;
const USER_CONTROL_STREAM_EOF = 1;
const USER_CONTROL_PING_REQUEST = 6;
const USER_CONTROL_PING_RESPONSE = 7;

export type RtmpErrorCode = 'CONNECT' | 'HANDSHAKE' | 'REFUSED' | 'PROTOCOL' | 'CLOSED' | 'TIMEOUT' | 'ENDED';

export class RtmpError extends Error {
  constructor(
    readonly code: RtmpErrorCode,
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

/** An onStatus message's info object, the fields we read. */
export interface StatusInfo {
  code?: string;
  level?: string;
  description?: string;
}

export function statusInfo(values: readonly Amf[]): StatusInfo {
  const info = values[3];
  if (info === null || typeof info !== 'object' || Array.isArray(info)) return {};
  const o = info as AmfObject;
  const out: StatusInfo = {};
  for (const k of ['code', 'level', 'description'] as const) {
    const v = o[k];
    if (typeof v === 'string') out[k] = v;
  }
  return out;
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

type Pending = { resolve: (v: Amf[]) => void; reject: (e: Error) => void };

export interface ConnectionHandlers {
  /** onStatus that no nextStatus() waits for, and other commands that answer no transaction of ours. */
  onCommand(values: Amf[], m: RtmpMessage): void;
  /** Audio, video and data messages. */
  onMedia(m: RtmpMessage): void;
  /** The server's Stream EOF for a stream we play: nginx-rtmp sends it when the publisher leaves. */
  onStreamEof?(streamId: number): void;
  /** The connection ended (not on close()). */
  onEnd(err: RtmpError): void;
}

export class RtmpConnection {
  readonly target: RtmpTarget;
  readonly #chunkSize: number;
  readonly #handlers: ConnectionHandlers;
  #socket: Socket | null = null;
  readonly #reader: ChunkReader;
  #nextTxn = 1;
  readonly #pending = new Map<number, Pending>();
  #received = 0;
  #ackedAt = 0;
  #ackWindow = 2_500_000;
  #handshake: { resolve: () => void; reject: (e: Error) => void; got: Buffer } | null = null;
  #ended: RtmpError | null = null;
  /** The session's wait for its stream's next onStatus (the answer to publish or play). */
  #status: { resolve: (info: StatusInfo) => void; reject: (e: Error) => void; skip: (info: StatusInfo) => boolean } | null = null;
  #bytesQueued = 0;
  #bytesFlushed = 0;
  #batched = false;
  /** A player between Play.Start and its first audio or video: still set-up, for acknowledgements. */
  #awaitingMedia = false;

  constructor(url: string, handlers: ConnectionHandlers, opts: { chunkSize?: number; maxMessageBytes?: number } = {}) {
    this.target = parseRtmpUrl(url);
    this.#handlers = handlers;
    this.#chunkSize = opts.chunkSize ?? defaultChunkSize;
    this.#reader = new ChunkReader(opts.maxMessageBytes);
  }

  get ended(): boolean {
    return this.#ended !== null;
  }

  /** Bytes handed to the kernel so far (write callbacks fired). */
  get bytesFlushed(): number {
    return this.#bytesFlushed;
  }

  /** Bytes written but not yet handed to the kernel: a peer that stops reading makes this grow. */
  get bytesPending(): number {
    return this.#bytesQueued - this.#bytesFlushed;
  }

  /**
   * From now on the socket is read in batches (read-pacer.ts): for a player
   * once its media is on the way out, where a period's delay costs nothing and
   * a read per TCP segment costs a wake-up each. Not during set-up, nor while
   * a start waits for the source's first keyframe.
   */
  batchReads(): void {
    this.#batched = true;
  }

  /** A player's play was sent: reads are acknowledged at once until media comes (see #onData). */
  awaitMedia(): void {
    this.#awaitingMedia = true;
  }

  /** Connects, shakes hands and sends `connect`; resolves on its _result. */
  async open(): Promise<void> {
    const t = this.target;
    await new Promise<void>((resolve, reject) => {
      // A one-byte high-water mark: a paused socket (batchReads) stops being read at
      // once. Node's sockets take the stream option, though @types/node does not list it.
      const lowWater = { readableHighWaterMark: 1 };
      // SNI names a host, never an address (RFC 6066; Node warns): an address is checked against the certificate's IP entries.
      const sni = isIP(t.host) === 0 ? { servername: t.host } : {};
      const socket = t.tls ? tlsConnect({ host: t.host, port: t.port, ...sni, ...lowWater }) : tcpConnect({ host: t.host, port: t.port, ...lowWater });
      this.#socket = socket;
      socket.setNoDelay(true);
      const onError = (err: NodeJS.ErrnoException): void => reject(new RtmpError('CONNECT', `cannot connect to ${t.host}:${t.port}: ${describeSocketError(err)}`));
      socket.once('error', onError);
      socket.once(t.tls ? 'secureConnect' : 'connect', () => {
        socket.off('error', onError);
        socket.on('error', (err: NodeJS.ErrnoException) => this.end(new RtmpError('CLOSED', `connection error: ${describeSocketError(err)}`)));
        socket.on('close', () => this.end(new RtmpError('CLOSED', 'the server closed the connection')));
        socket.on('data', (d: Buffer) => {
          this.#onData(d);
          if (this.#batched) holdUntilNextBatch(socket);
        });
        resolve();
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.#handshake = { resolve, reject, got: Buffer.alloc(0) };
      const c1 = Buffer.alloc(HANDSHAKE_BYTES);
      randomBytes(HANDSHAKE_BYTES - 8).copy(c1, 8); // time 0, zero version: the plain handshake
      this.#socket?.write(Buffer.concat([Buffer.from([3]), c1]));
    });
    this.write([{ csid: CSID_CONTROL, type: MSG_SET_CHUNK_SIZE, streamId: 0, timestamp: 0, payload: u32(this.#chunkSize) }]);
    const answer = await this.command('connect', [{ app: t.app, type: 'nonprivate', flashVer: 'FMLE/3.0 (compatible; vlive)', tcUrl: t.tcUrl }]);
    expectResult('connect', answer);
  }

  /** A command with a transaction id; resolves with the values of its _result or _error. */
  command(name: string, args: Amf[]): Promise<Amf[]> {
    const txn = this.#nextTxn++;
    return new Promise((resolve, reject) => {
      if (this.#ended !== null) {
        reject(this.#ended);
        return;
      }
      this.#pending.set(txn, { resolve, reject });
      this.write([{ csid: CSID_COMMAND, type: MSG_COMMAND_AMF0, streamId: 0, timestamp: 0, payload: encode(name, txn, ...args) }]);
    });
  }

  /**
   * Runs a session's set-up (open, createStream, publish or play) within
   * `ms`; on any failure the connection is cut, without telling the
   * handlers (the caller gets the error), and the error is thrown on.
   */
  async establish(ms: number, what: string, work: () => Promise<void>): Promise<void> {
    try {
      await within(work(), ms, what);
    } catch (err) {
      this.end(err instanceof RtmpError ? err : new RtmpError('PROTOCOL', (err as Error).message), false);
      throw err;
    }
  }

  /**
   * The next onStatus the server sends (publish and play answer with one),
   * passing over those `skip` accepts; rejects when the connection ends
   * first. Waiting here rather than in a loop of calls means a status that
   * comes in the same read as the one skipped is not missed.
   */
  nextStatus(skip: (info: StatusInfo) => boolean = () => false): Promise<StatusInfo> {
    return new Promise((resolve, reject) => {
      if (this.#ended !== null) reject(this.#ended);
      else this.#status = { resolve, reject, skip };
    });
  }

  /** createStream; resolves with the new stream's id. */
  async createStream(): Promise<number> {
    const created = await this.command('createStream', [null]);
    expectResult('createStream', created);
    const id = created[3];
    if (typeof id !== 'number') throw new RtmpError('PROTOCOL', 'createStream answered without a stream id');
    return id;
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
      this.#socket?.write(Buffer.from(hs.got.subarray(1, 1 + HANDSHAKE_BYTES))); // C2 echoes S1
      hs.resolve();
      d = hs.got.subarray(1 + 2 * HANDSHAKE_BYTES);
      if (d.length === 0) return;
    }
    let messages: RtmpMessage[];
    try {
      messages = this.#reader.push(d);
    } catch (err) {
      this.end(new RtmpError('PROTOCOL', (err as Error).message));
      return;
    }
    for (const m of messages) {
      if (this.#ended !== null) return;
      this.#onMessage(m);
    }
    // While set-up waits for an answer, every read is acknowledged at once. nginx-rtmp
    // writes each control message apart without TCP_NODELAY, so Nagle holds the rest of an
    // answer until our TCP ACK, which the kernel delays by 40 ms when we have nothing to
    // send: twice per session, ~85 ms of a start on loopback. An RTMP Acknowledgement is
    // something to send: its segment carries the ACK, and servers take early ones.
    const waiting = this.#pending.size > 0 || this.#status !== null || this.#awaitingMedia;
    if (waiting || this.#received - this.#ackedAt >= this.#ackWindow) {
      this.#ackedAt = this.#received;
      this.write([{ csid: CSID_CONTROL, type: MSG_ACK, streamId: 0, timestamp: 0, payload: u32(this.#received >>> 0) }]);
    }
  }

  #onMessage(m: RtmpMessage): void {
    switch (m.type) {
      case MSG_WINDOW_ACK_SIZE:
        if (m.payload.length >= 4) this.#ackWindow = Math.max(1, m.payload.readUInt32BE(0));
        return;
      case MSG_USER_CONTROL:
        if (m.payload.length >= 6 && m.payload.readUInt16BE(0) === USER_CONTROL_STREAM_EOF) {
          this.#handlers.onStreamEof?.(m.payload.readUInt32BE(2));
          return;
        }
        if (m.payload.length >= 6 && m.payload.readUInt16BE(0) === USER_CONTROL_PING_REQUEST) {
          const pong = Buffer.alloc(6);
          pong.writeUInt16BE(USER_CONTROL_PING_RESPONSE, 0);
          m.payload.copy(pong, 2, 2, 6);
          this.write([{ csid: CSID_CONTROL, type: MSG_USER_CONTROL, streamId: 0, timestamp: 0, payload: pong }]);
        }
        return;
      case MSG_COMMAND_AMF0:
        this.#onCommand(m);
        return;
      case 8:
      case 9:
        this.#awaitingMedia = false;
        this.#handlers.onMedia(m);
        return;
      case 18:
        this.#handlers.onMedia(m);
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
    if ((name === '_result' || name === '_error') && typeof txn === 'number' && this.#pending.has(txn)) {
      const p = this.#pending.get(txn);
      this.#pending.delete(txn);
      p?.resolve(values);
      return;
    }
    if (name === 'onStatus' && this.#status !== null) {
      const info = statusInfo(values);
      if (this.#status.skip(info)) return;
      const { resolve } = this.#status;
      this.#status = null;
      resolve(info);
      return;
    }
    this.#handlers.onCommand(values, m);
  }

  /**
   * Messages out in one write; `onFlushed` runs once all of them are in the
   * kernel. The bytes are laid out in the process's write arena (write-arena.ts).
   */
  write(messages: readonly RtmpMessage[], onFlushed?: () => void): void {
    const socket = this.#socket;
    if (socket === null || this.#ended !== null || messages.length === 0) return;
    const n = chunkedSize(messages, this.#chunkSize);
    const region = writeArena.take(n);
    writeMessages(messages, this.#chunkSize, region.buf);
    this.#bytesQueued += n;
    socket.write(region.buf, () => {
      region.release();
      this.#bytesFlushed += n;
      onFlushed?.();
    });
  }

  /** Ends the connection for `err`; tells the handlers once, unless close() ended it. */
  end(err: RtmpError, tell = true): void {
    if (this.#ended !== null) return;
    this.#ended = err;
    this.#handshake?.reject(err);
    this.#handshake = null;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    this.#status?.reject(err);
    this.#status = null;
    if (this.#socket !== null) release(this.#socket);
    this.#socket?.destroy();
    if (tell) this.#handlers.onEnd(err);
  }

  /**
   * Closes the connection. `flush` lets what was written leave first (a
   * graceful stop); without it the connection is cut at once (a fence).
   */
  close(flush: boolean): Promise<void> {
    const socket = this.#socket;
    if (socket === null || socket.destroyed || this.#ended !== null) {
      this.end(new RtmpError('CLOSED', 'closed'), false);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      socket.once('close', () => resolve());
      if (flush) {
        this.#ended = new RtmpError('CLOSED', 'closed');
        socket.end();
        // A peer that never reads would hold end() forever.
        setTimeout(() => socket.destroy(), 1000).unref();
      } else {
        this.end(new RtmpError('CLOSED', 'closed'), false);
      }
    });
  }
}

/** `work`, or a TIMEOUT RtmpError once `ms` have passed. */
async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RtmpError('TIMEOUT', `${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

/** The server said no to `what`: its code and description, in one coded error. */
export function refused(what: string, info: StatusInfo): RtmpError {
  return new RtmpError('REFUSED', `the server refused ${what}: ${info.code ?? 'no code'}${info.description ? ` (${info.description})` : ''}`);
}

function expectResult(what: string, values: readonly Amf[]): void {
  if (values[0] !== '_result') throw refused(what, statusInfo(values));
}
