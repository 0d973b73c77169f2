/**
 * FLV tags, built byte by byte, for VOD channels: the worker muxes FLV itself
 * so that it alone decides every timestamp (gap-free loops and playlists).
 *
 * Each tag is one Buffer laid out as in an FLV file: 11-byte header, body,
 * then the 4-byte previous-tag-size. The sample is read from the file
 * straight into the body; the output publishes the body as it is (a view,
 * flv-reader.ts's viewTag), and tests read whole tags back with FlvReader.
 */

export const TAG_AUDIO = 8;
export const TAG_VIDEO = 9;
export const TAG_SCRIPT = 18;

const headerBytes = 11;
const trailerBytes = 4;
/** FLV timestamps are 32-bit milliseconds (24 bits + an extension byte): about 49.7 days. */
const maxTimestamp = 0xffffffff;

/**
 * Allocates a tag with room for `bodyBytes`, writes its header and trailer,
 * and returns it with the offset where the body starts. Callers fill the body
 * (for media, by reading the sample straight from the file into it).
 */
function allocTag(type: number, timestampMs: number, bodyBytes: number): Buffer {
  if (!Number.isInteger(timestampMs) || timestampMs < 0 || timestampMs > maxTimestamp) {
    throw new RangeError(`FLV timestamp out of range: ${timestampMs}`);
  }
  if (bodyBytes > 0xffffff) throw new RangeError(`FLV tag body too large: ${bodyBytes} bytes`);
  const tag = Buffer.alloc(headerBytes + bodyBytes + trailerBytes);
  tag[0] = type;
  tag.writeUIntBE(bodyBytes, 1, 3);
  tag.writeUIntBE(timestampMs & 0xffffff, 4, 3);
  tag[7] = (timestampMs >>> 24) & 0xff;
  // Stream id (3 bytes) stays 0.
  tag.writeUInt32BE(headerBytes + bodyBytes, headerBytes + bodyBytes);
  return tag;
}

export const bodyOffset = headerBytes;

/** Bytes before the sample data in a video tag body: frame type + codec, AVC packet type, composition time. */
export const videoPrefixBytes = 5;
/** Bytes before the sample data in an AAC audio tag body: sound format byte + AAC packet type. */
export const aacPrefixBytes = 2;
/** Bytes before the sample data in an MP3 audio tag body. */
export const mp3PrefixBytes = 1;

/** Video tag (H.264 NAL units, length-prefixed as in MP4) with room for `sampleBytes`. */
export function videoTag(dtsMs: number, ctsMs: number, keyframe: boolean, sampleBytes: number): Buffer {
  const tag = allocTag(TAG_VIDEO, dtsMs, videoPrefixBytes + sampleBytes);
  tag[bodyOffset] = (keyframe ? 0x10 : 0x20) | 7; // 7 = AVC
  tag[bodyOffset + 1] = 1; // NALU
  tag.writeIntBE(ctsMs, bodyOffset + 2, 3);
  return tag;
}

/** A sequence header tag: codec byte, packet type 0, then the configuration record as is. */
function sequenceHeader(type: number, codecByte: number, prefixBytes: number, dtsMs: number, config: Buffer): Buffer {
  const tag = allocTag(type, dtsMs, prefixBytes + config.length);
  tag[bodyOffset] = codecByte;
  tag[bodyOffset + 1] = 0;
  config.copy(tag, bodyOffset + prefixBytes);
  return tag;
}

/** The AVC sequence header: the MP4's avcC record, which FLV carries unchanged. */
export function avcSequenceHeader(dtsMs: number, avcC: Buffer): Buffer {
  return sequenceHeader(TAG_VIDEO, 0x17, videoPrefixBytes, dtsMs, avcC);
}

/**
 * First byte of an audio tag body. For AAC the spec fixes 44 kHz, 16 bit,
 * stereo whatever the real values (decoders read the AudioSpecificConfig).
 */
export function audioFlags(codec: 'aac' | 'mp3', sampleRate: number, channels: number): number {
  if (codec === 'aac') return 0xaf;
  const rateBits = sampleRate >= 44_100 ? 3 : sampleRate >= 22_050 ? 2 : sampleRate >= 11_025 ? 1 : 0;
  return (2 << 4) | (rateBits << 2) | (1 << 1) | (channels > 1 ? 1 : 0);
}

export function audioTag(dtsMs: number, flags: number, aac: boolean, sampleBytes: number): Buffer {
  const prefix = aac ? aacPrefixBytes : mp3PrefixBytes;
  const tag = allocTag(TAG_AUDIO, dtsMs, prefix + sampleBytes);
  tag[bodyOffset] = flags;
  if (aac) tag[bodyOffset + 1] = 1; // raw AAC frame
  return tag;
}

export function aacSequenceHeader(dtsMs: number, audioSpecificConfig: Buffer): Buffer {
  return sequenceHeader(TAG_AUDIO, 0xaf, aacPrefixBytes, dtsMs, audioSpecificConfig);
}

/** AMF0 values the metadata needs. */
type AmfValue = number | boolean | string;

function amfString(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const out = Buffer.alloc(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
}

function amfValue(v: AmfValue): Buffer {
  if (typeof v === 'number') {
    const out = Buffer.alloc(9);
    out[0] = 0x00;
    out.writeDoubleBE(v, 1);
    return out;
  }
  if (typeof v === 'boolean') return Buffer.from([0x01, v ? 1 : 0]);
  return Buffer.concat([Buffer.from([0x02]), amfString(v)]);
}

/**
 * The onMetaData script tag. The publisher sends it as @setDataFrame, which
 * nginx-rtmp caches and hands to every late joiner with the sequence headers.
 */
export function metadataTag(meta: Readonly<Record<string, AmfValue>>): Buffer {
  const entries = Object.entries(meta);
  const parts: Buffer[] = [amfValue('onMetaData'), Buffer.from([0x08, 0, 0, 0, 0])];
  (parts[1] as Buffer).writeUInt32BE(entries.length, 1);
  for (const [k, v] of entries) parts.push(amfString(k), amfValue(v));
  parts.push(Buffer.from([0, 0, 0x09])); // object end
  return scriptTag(0, Buffer.concat(parts));
}

/** A script data tag at `timestampMs` around an AMF0 body (onMetaData, onCuePoint). */
export function scriptTag(timestampMs: number, body: Buffer): Buffer {
  const tag = allocTag(TAG_SCRIPT, timestampMs, body.length);
  body.copy(tag, bodyOffset);
  return tag;
}

/** The 9-byte FLV file header (audio and video flagged) and PreviousTagSize0: what a demuxer reads before the first tag. */
export function flvFileHeader(): Buffer {
  return Buffer.from([0x46, 0x4c, 0x56, 1, 0x05, 0, 0, 0, 9, 0, 0, 0, 0]);
}

/**
 * A tag around a body that exists already (a relayed or published tag): its
 * header and trailer, to be written before and after the body, so the body
 * itself is not copied here.
 */
export function tagFrame(type: number, timestampMs: number, bodyBytes: number): { header: Buffer; trailer: Buffer } {
  if (bodyBytes > 0xffffff) throw new RangeError(`FLV tag body too large: ${bodyBytes} bytes`);
  // allocTag checks the timestamp and lays out the header; its empty body and trailer are dropped.
  const header = allocTag(type, timestampMs, 0).subarray(0, headerBytes);
  header.writeUIntBE(bodyBytes, 1, 3);
  const trailer = Buffer.alloc(trailerBytes);
  trailer.writeUInt32BE(headerBytes + bodyBytes);
  return { header, trailer };
}
