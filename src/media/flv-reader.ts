/**
 * Reads an FLV byte stream back into tags: what a live source's flvmux hands
 * the worker (relay-source.ts), in buffers that may split or join tags
 * anywhere. The worker then re-stamps each tag onto its output's timeline
 * (live-feeder.ts) and publishes its body as it is (src/rtmp/publisher.ts).
 */
import { TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO, bodyOffset } from './flv.js';

export interface FlvTag {
  readonly type: typeof TAG_AUDIO | typeof TAG_VIDEO | typeof TAG_SCRIPT;
  /** DTS, ms (the tag header's 32-bit timestamp). */
  readonly timeMs: number;
  readonly body: Buffer;
}

const fileHeaderBytes = 9;
const tagHeaderBytes = 11;
const trailerBytes = 4;
/** A body larger than this is a broken stream, not a frame (FLV allows 16 MiB; no live frame comes close). */
const maxBodyBytes = 8 * 1024 * 1024;

export class FlvError extends Error {
  override readonly name = 'FlvError';
}

export class FlvReader {
  #pending: Buffer = Buffer.alloc(0);
  #headerDone = false;

  /** Appends `chunk` and returns every tag completed by it. Throws FlvError on a stream that is not FLV. */
  push(chunk: Buffer): FlvTag[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const tags: FlvTag[] = [];
    let at = 0;
    const buf = this.#pending;
    if (!this.#headerDone) {
      if (buf.length < fileHeaderBytes + trailerBytes) return tags;
      if (buf.toString('latin1', 0, 3) !== 'FLV') throw new FlvError('not an FLV stream');
      const headerSize = buf.readUInt32BE(5);
      if (headerSize < fileHeaderBytes || headerSize > 64) throw new FlvError(`bad FLV header size ${headerSize}`);
      if (buf.length < headerSize + trailerBytes) return tags;
      at = headerSize + trailerBytes;
      this.#headerDone = true;
    }
    while (buf.length - at >= tagHeaderBytes) {
      const type = buf[at] ?? 0;
      const size = buf.readUIntBE(at + 1, 3);
      if (size > maxBodyBytes) throw new FlvError(`FLV tag of ${size} bytes`);
      const end = at + tagHeaderBytes + size + trailerBytes;
      if (buf.length < end) break;
      const timeMs = (buf.readUIntBE(at + 4, 3) | ((buf[at + 7] ?? 0) << 24)) >>> 0;
      // Unknown tag types (encrypted, reserved) are skipped, not fatal.
      if (type === TAG_AUDIO || type === TAG_VIDEO || type === TAG_SCRIPT) {
        // A view, not a copy: `buf` is never written again (new input is concatenated into a new
        // Buffer). The view keeps `buf` alive until the output has sent the tag (its playout
        // delay, a quarter second), which costs less than copying every tag.
        tags.push({ type, timeMs, body: buf.subarray(at + tagHeaderBytes, at + tagHeaderBytes + size) });
      }
      at = end;
    }
    this.#pending = at === buf.length ? Buffer.alloc(0) : buf.subarray(at);
    return tags;
  }
}

/** What a tag is, as far as relaying needs to know. */
export type TagKind = 'video-config' | 'video-key' | 'video' | 'audio-config' | 'audio' | 'script';

export function tagKind(tag: FlvTag): TagKind {
  if (tag.type === TAG_SCRIPT) return 'script';
  const b0 = tag.body[0] ?? 0;
  if (tag.type === TAG_VIDEO) {
    // AVC (codec 7) packet type 0 is the sequence header; anything else is a frame.
    if ((b0 & 0x0f) === 7 && tag.body[1] === 0) return 'video-config';
    return b0 >> 4 === 1 ? 'video-key' : 'video';
  }
  // AAC (sound format 10) packet type 0 is the AudioSpecificConfig.
  if (b0 >> 4 === 10 && tag.body[1] === 0) return 'audio-config';
  return 'audio';
}

/**
 * A whole tag (header, body, trailer, as flv.ts builds them) as an FlvTag
 * at `timeMs`: its body is a view, not a copy. The timestamp in the header
 * is not read: the caller's time is the output's.
 */
export function viewTag(tag: Buffer, timeMs: number): FlvTag {
  return { type: tag[0] as FlvTag['type'], timeMs, body: tag.subarray(bodyOffset, tag.length - trailerBytes) };
}
