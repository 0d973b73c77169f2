/**
 * RTMP's chunk stream: messages cut into chunks on the way out, and chunks
 * put back together into messages on the way in. Pure byte work; the
 * publisher (publisher.ts) owns the socket.
 *
 * Out: every message starts with a full (type 0) header, so no state is kept
 * between messages beyond the chunk size; continuation chunks are type 3. A
 * timestamp past 0xFFFFFF ms (4.66 hours, which a 24/7 channel passes) goes
 * in the extended timestamp field, repeated in every continuation chunk as
 * FFmpeg and librtmp do and nginx-rtmp expects.
 */

export interface RtmpMessage {
  readonly csid: number;
  readonly type: number;
  readonly streamId: number;
  readonly timestamp: number;
  readonly payload: Buffer;
}

/**
 * One audio, video or data message as the publisher sends it and the player
 * hands it out: an FLV tag's type, time and body, with no FLV header around
 * it (media/flv-reader.ts's FlvTag has the same shape).
 */
export interface MediaTag {
  readonly type: typeof MSG_AUDIO | typeof MSG_VIDEO | typeof MSG_DATA_AMF0;
  /** ms; RTMP carries 32 bits of it. */
  readonly timeMs: number;
  readonly body: Buffer;
}

export const MSG_SET_CHUNK_SIZE = 1;
export const MSG_ABORT = 2;
export const MSG_ACK = 3;
export const MSG_USER_CONTROL = 4;
export const MSG_WINDOW_ACK_SIZE = 5;
export const MSG_SET_PEER_BANDWIDTH = 6;
export const MSG_AUDIO = 8;
export const MSG_VIDEO = 9;
export const MSG_DATA_AMF0 = 18;
export const MSG_COMMAND_AMF0 = 20;

const EXTENDED = 0xffffff;

export class ChunkError extends Error {}

function basicHeaderByte(fmt: number, csid: number): number {
  if (csid < 2 || csid > 63) throw new ChunkError(`chunk stream id ${csid} needs a longer basic header; use 2..63`);
  return (fmt << 6) | csid;
}

/** A message's timestamp as sent: whole ms, 32 bits. */
const wireTimestamp = (m: RtmpMessage): number => Math.max(0, Math.floor(m.timestamp)) >>> 0;

/** Bytes of one message once cut into chunks. */
function chunkedLength(m: RtmpMessage, chunkSize: number): number {
  const ext = wireTimestamp(m) >= EXTENDED ? 4 : 0;
  const continuations = Math.max(0, Math.ceil(m.payload.length / chunkSize) - 1);
  return 12 + ext + m.payload.length + continuations * (1 + ext);
}

/** Writes one message's chunks into `out` at `at`; returns where they end. */
function writeChunks(m: RtmpMessage, chunkSize: number, out: Buffer, at: number): number {
  const ts = wireTimestamp(m);
  const extended = ts >= EXTENDED;
  const len = m.payload.length;
  out[at] = basicHeaderByte(0, m.csid);
  out.writeUIntBE(extended ? EXTENDED : ts, at + 1, 3);
  out.writeUIntBE(len, at + 4, 3);
  out[at + 7] = m.type;
  out.writeUInt32LE(m.streamId, at + 8);
  at += 12;
  if (extended) at = out.writeUInt32BE(ts, at);
  at += m.payload.copy(out, at, 0, Math.min(chunkSize, len));
  for (let from = chunkSize; from < len; from += chunkSize) {
    out[at++] = (3 << 6) | m.csid;
    if (extended) at = out.writeUInt32BE(ts, at);
    at += m.payload.copy(out, at, from, Math.min(from + chunkSize, len));
  }
  return at;
}

/** Bytes the messages take once cut into chunks. */
export function chunkedSize(messages: readonly RtmpMessage[], chunkSize: number): number {
  let total = 0;
  for (const m of messages) total += chunkedLength(m, chunkSize);
  return total;
}

/**
 * Writes the chunks of messages, in order, into `out` (at least
 * chunkedSize() long) for one socket write. Why one copy rather than the
 * payloads as they are behind small header buffers: a socket write per
 * piece (a header, a slice, a continuation byte…) cost more than copying a
 * batch's few tens of KiB once: −18 % of CPU in the one-process probe, no
 * change the service's bench could resolve (bench/README.md).
 */
export function writeMessages(messages: readonly RtmpMessage[], chunkSize: number, out: Buffer): number {
  let at = 0;
  for (const m of messages) at = writeChunks(m, chunkSize, out, at);
  return at;
}

/** The chunks of messages as a new buffer. */
export function chunkMessages(messages: readonly RtmpMessage[], chunkSize: number): Buffer {
  const out = Buffer.allocUnsafe(chunkedSize(messages, chunkSize));
  const n = writeMessages(messages, chunkSize, out);
  if (n !== out.length) throw new ChunkError(`chunked ${n} bytes where ${out.length} were counted`);
  return out;
}

interface InStream {
  timestamp: number;
  delta: number;
  length: number;
  type: number;
  streamId: number;
  extended: boolean;
  parts: Buffer[];
  have: number;
}

/**
 * Reassembles a peer's chunks into messages. Feed it bytes as they come;
 * it keeps what it cannot parse yet. The peer's chunk size follows its Set
 * Chunk Size messages, which the reader applies itself.
 */
export class ChunkReader {
  #chunkSize = 128;
  #pending: Buffer = Buffer.alloc(0);
  readonly #streams = new Map<number, InStream>();
  /** Largest message accepted: a server's answers are small, so anything huge is a broken peer. */
  readonly #maxMessage: number;

  constructor(maxMessageBytes = 1 << 20) {
    this.#maxMessage = maxMessageBytes;
  }

  /** Every whole message the new bytes complete. Throws ChunkError on a malformed stream. */
  push(data: Buffer): RtmpMessage[] {
    this.#pending = this.#pending.length === 0 ? data : Buffer.concat([this.#pending, data]);
    const out: RtmpMessage[] = [];
    for (;;) {
      const used = this.#one(this.#pending, out);
      if (used === 0) break;
      this.#pending = this.#pending.subarray(used);
    }
    return out;
  }

  /** Parses one chunk at the start of `b`; returns the bytes it used, 0 when more are needed. */
  #one(b: Buffer, out: RtmpMessage[]): number {
    if (b.length < 1) return 0;
    const fmt = (b[0] ?? 0) >> 6;
    let csid = (b[0] ?? 0) & 0x3f;
    let at = 1;
    if (csid === 0) {
      if (b.length < 2) return 0;
      csid = 64 + (b[1] ?? 0);
      at = 2;
    } else if (csid === 1) {
      if (b.length < 3) return 0;
      csid = 64 + (b[1] ?? 0) + (b[2] ?? 0) * 256;
      at = 3;
    }
    const headerBytes = [11, 7, 3, 0][fmt] ?? 0;
    if (b.length < at + headerBytes) return 0;
    let st = this.#streams.get(csid);
    if (st === undefined) {
      if (fmt !== 0) throw new ChunkError(`chunk stream ${csid} begins with a type ${fmt} header`);
      st = { timestamp: 0, delta: 0, length: 0, type: 0, streamId: 0, extended: false, parts: [], have: 0 };
      this.#streams.set(csid, st);
    }
    const starting = st.have === 0;
    let tsField = 0;
    if (fmt <= 2) tsField = b.readUIntBE(at, 3);
    if (fmt <= 1) {
      st.length = b.readUIntBE(at + 3, 3);
      st.type = b[at + 6] ?? 0;
      if (st.length > this.#maxMessage) throw new ChunkError(`a ${st.length}-byte message is larger than a peer's answer can be`);
    }
    if (fmt === 0) st.streamId = b.readUInt32LE(at + 7);
    at += headerBytes;
    if (fmt <= 2) st.extended = tsField === EXTENDED;
    if (st.extended) {
      if (b.length < at + 4) return 0;
      if (fmt <= 2) tsField = b.readUInt32BE(at);
      at += 4;
    }
    const take = Math.min(this.#chunkSize, st.length - st.have);
    if (b.length < at + take) return 0;
    if (starting) {
      if (fmt === 0) st.timestamp = tsField;
      else if (fmt === 1 || fmt === 2) {
        st.delta = tsField;
        st.timestamp += tsField;
      } else st.timestamp += st.delta;
    }
    st.parts.push(b.subarray(at, at + take));
    st.have += take;
    at += take;
    if (st.have === st.length) {
      const payload = st.parts.length === 1 ? Buffer.from(st.parts[0] ?? []) : Buffer.concat(st.parts);
      st.parts = [];
      st.have = 0;
      const m: RtmpMessage = { csid, type: st.type, streamId: st.streamId, timestamp: st.timestamp, payload };
      if (m.type === MSG_SET_CHUNK_SIZE && payload.length >= 4) {
        const size = payload.readUInt32BE(0) & 0x7fffffff;
        if (size < 1) throw new ChunkError('peer set a chunk size of 0');
        this.#chunkSize = size;
      }
      out.push(m);
    }
    return at;
  }
}
