/**
 * A pure TypeScript ISO-BMFF (MP4 / QuickTime MOV) sample-index reader: for
 * each audio and video track, the codec configuration and every sample's
 * file offset, size, timestamps and keyframe flag, with the edit list
 * applied. The service muxes FLV from this itself, so loops join without
 * gaps and with timestamps it computed, not a demuxer's guess.
 *
 * The file may be hostile or truncated. Only top-level box headers and the
 * `moov` box are read, never the media data; every read is bounds-checked
 * against its box; every count that sizes an allocation is checked against
 * the bytes that must back it (or against the file size and a per-file
 * budget when, as with a constant stsz sample size, nothing backs it). Bad
 * input therefore ends in an Mp4Error, not a crash, a hang or an allocation
 * the size of a lie.
 */
import { open, type FileHandle } from 'node:fs/promises';

export class Mp4Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Mp4Error';
  }
}

export type Mp4Codec = 'h264' | 'hevc' | 'aac' | 'mp3' | 'opus' | 'ac3' | 'eac3' | 'other';

export interface Mp4Samples {
  readonly count: number;
  /** Absolute file offset, bytes (co64 can exceed 2^32, hence float64). */
  readonly offset: Float64Array;
  /** Bytes. */
  readonly size: Uint32Array;
  /** Decode time in timescale units, after the edit-list shift; may be negative. */
  readonly dts: Float64Array;
  /** Composition offset, pts - dts, in timescale units. */
  readonly cts: Int32Array;
  /** Timescale units, from stts. */
  readonly duration: Uint32Array;
  /** 1 = keyframe (every sample when stss is absent). */
  readonly sync: Uint8Array;
}

export interface Mp4Track {
  /** tkhd track_ID. */
  readonly id: number;
  /** From the hdlr of mdia; tracks with any other handler are skipped. */
  readonly kind: 'video' | 'audio';
  readonly codec: Mp4Codec;
  /** Sample entry type as read, e.g. 'avc1'. */
  readonly fourcc: string;
  /** mdhd timescale, units per second. */
  readonly timescale: number;
  /** Codec configuration: avcC box payload (AVCDecoderConfigurationRecord) for h264; AudioSpecificConfig bytes (from esds DecoderSpecificInfo, tag 0x05) for aac; null otherwise. */
  readonly config: Buffer | null;
  /** Pixels, from the visual sample entry; 0 for audio. */
  readonly width: number;
  readonly height: number;
  /** H.264 profile_idc / level_idc from avcC (null if not h264). */
  readonly avcProfile: number | null;
  readonly avcLevel: number | null;
  /** Hz: from the AudioSpecificConfig for AAC, else the sample entry; 0 for video. */
  readonly sampleRate: number;
  /** From the ASC channelConfiguration for AAC when nonzero, else the sample entry; 0 for video. */
  readonly channels: number;
  /** Samples in decode order, struct-of-arrays to keep memory small (hours-long files have ~10^6 samples). */
  readonly samples: Mp4Samples;
  /** Presentation duration after the edit list, timescale units: end of the last presented sample minus the first presented pts. */
  readonly duration: number;
}

export interface Mp4File {
  /** ftyp major brand ('isom', 'qt  ', …); '' when there is no ftyp. */
  readonly brand: string;
  /** Video and audio tracks only, in file order. */
  readonly tracks: readonly Mp4Track[];
  /** mvhd duration / mvhd timescale. */
  readonly movieDurationSeconds: number;
}

/** Largest `moov` accepted, bytes. A day-long file's index is tens of MiB. */
export const MAX_MOOV_BYTES = 256 * 1024 * 1024;

/**
 * Samples accepted across all tracks of one file. An indexed sample costs 29
 * bytes, so this caps the index at ~490 MB; it is still 97 h of 48 kHz AAC.
 */
export const MAX_SAMPLES = 1 << 24;

/** Top-level boxes looked at while searching for `moov`; real files have a handful. */
const MAX_TOP_LEVEL_BOXES = 10_000;

const TWO_32 = 2 ** 32;

// ---------------------------------------------------------------------------
// Bounds-checked reading inside the in-memory moov

/** Reads big-endian fields from `buf` between `pos` and `end`, refusing to step past `end`. */
class Cursor {
  constructor(
    private readonly buf: Buffer,
    public pos: number,
    readonly end: number,
    private readonly where: string,
  ) {}

  get remaining(): number {
    return this.end - this.pos;
  }

  private take(n: number): number {
    if (n > this.end - this.pos) throw new Mp4Error(`${this.where}: truncated`);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(): number {
    return this.buf.readUInt8(this.take(1));
  }
  u16(): number {
    return this.buf.readUInt16BE(this.take(2));
  }
  u32(): number {
    return this.buf.readUInt32BE(this.take(4));
  }
  i32(): number {
    return this.buf.readInt32BE(this.take(4));
  }
  f64(): number {
    return this.buf.readDoubleBE(this.take(8));
  }
  u64(): number {
    const hi = this.u32();
    const lo = this.u32();
    if (hi > 0x1f_ffff) throw new Mp4Error(`${this.where}: 64-bit value beyond 2^53`);
    return hi * TWO_32 + lo;
  }
  i64(): number {
    const hi = this.i32();
    const lo = this.u32();
    const v = hi * TWO_32 + lo;
    if (!Number.isSafeInteger(v)) throw new Mp4Error(`${this.where}: 64-bit value beyond 2^53`);
    return v;
  }
  skip(n: number): void {
    this.take(n);
  }
  /** A copy, so a small config never pins the whole moov in memory. */
  copy(n: number): Buffer {
    const at = this.take(n);
    return Buffer.from(this.buf.subarray(at, at + n));
  }
  /** A cursor over the next `n` bytes; this one moves past them. */
  sub(n: number, where: string): Cursor {
    const at = this.take(n);
    return new Cursor(this.buf, at, at + n, where);
  }
  /** Throws unless `count` entries of `entryBytes` fit in what is left. */
  expectEntries(count: number, entryBytes: number, what: string): void {
    if (count * entryBytes > this.remaining) {
      throw new Mp4Error(`${this.where}: claims ${count} ${what} but the box holds only ${Math.floor(this.remaining / entryBytes)}`);
    }
  }
}

/** A box inside the moov buffer; start..end is the payload, after the header. */
interface Box {
  readonly type: string;
  readonly start: number;
  readonly end: number;
}

/** Box types may be any four bytes; printable ones keep messages readable. */
function printable(type: string): string {
  return /^[\x20-\x7e]{4}$/.test(type) ? type : JSON.stringify(type);
}

/** Parses the header at `pos`; size 1 is a 64-bit size, size 0 runs to `end`. */
function boxAt(buf: Buffer, pos: number, end: number, where: string): Box {
  if (end - pos < 8) throw new Mp4Error(`${where}: truncated box header`);
  let size = buf.readUInt32BE(pos);
  const type = buf.toString('latin1', pos + 4, pos + 8);
  let header = 8;
  if (size === 1) {
    if (end - pos < 16) throw new Mp4Error(`${where}/${printable(type)}: truncated 64-bit box size`);
    const hi = buf.readUInt32BE(pos + 8);
    size = hi > 0x1f_ffff ? Infinity : hi * TWO_32 + buf.readUInt32BE(pos + 12);
    header = 16;
  } else if (size === 0) {
    size = end - pos;
  }
  if (size < header || size > end - pos) {
    throw new Mp4Error(`${where}/${printable(type)}: box size ${size} does not fit in its parent (${end - pos} bytes left)`);
  }
  return { type, start: pos + header, end: pos + size };
}

/**
 * The child boxes of a container payload. Fewer than 8 trailing bytes are
 * ignored: QuickTime ends some atom lists with a 4-byte zero terminator.
 */
function children(buf: Buffer, start: number, end: number, where: string): Box[] {
  const out: Box[] = [];
  for (let pos = start; end - pos >= 8; ) {
    const box = boxAt(buf, pos, end, where);
    out.push(box);
    pos = box.end;
  }
  return out;
}

function find(boxes: readonly Box[], type: string): Box | null {
  return boxes.find((b) => b.type === type) ?? null;
}

function need(boxes: readonly Box[], type: string, where: string): Box {
  const box = find(boxes, type);
  if (box === null) throw new Mp4Error(`${where}: no ${type} box`);
  return box;
}

/** A cursor past a full box's version and flags. */
function fullBox(buf: Buffer, box: Box, where: string): { version: number; c: Cursor } {
  const c = new Cursor(buf, box.start, box.end, where);
  const version = c.u8();
  c.skip(3);
  return { version, c };
}

// ---------------------------------------------------------------------------
// Top level: find ftyp and moov without reading the media data

async function readExactly(fh: FileHandle, into: Buffer, length: number, position: number): Promise<void> {
  for (let done = 0; done < length; ) {
    const { bytesRead } = await fh.read(into, done, length - done, position + done);
    if (bytesRead === 0) throw new Mp4Error(`file ended at offset ${position + done} while reading (truncated?)`);
    done += bytesRead;
  }
}

async function readTopLevel(fh: FileHandle, fileSize: number): Promise<{ brand: string; moov: Buffer }> {
  const head = Buffer.alloc(16);
  let brand = '';
  let pos = 0;
  for (let n = 0; fileSize - pos >= 8; n++) {
    if (n === MAX_TOP_LEVEL_BOXES) throw new Mp4Error(`no moov box among the first ${MAX_TOP_LEVEL_BOXES} top-level boxes`);
    const left = fileSize - pos;
    const got = Math.min(16, left);
    await readExactly(fh, head, got, pos);
    const type = head.toString('latin1', 4, 8);
    // Top-level types are all plain ASCII; this turns "not an MP4 at all"
    // into one clear message instead of a box size complaint.
    if (!/^[\x20-\x7e]{4}$/.test(type)) throw new Mp4Error(`not an MP4 file: no box type at offset ${pos}`);
    let size = head.readUInt32BE(0);
    let header = 8;
    if (size === 1) {
      const hi = left < 16 ? 0 : head.readUInt32BE(8);
      size = left < 16 ? 0 : hi > 0x1f_ffff ? Infinity : hi * TWO_32 + head.readUInt32BE(12);
      header = 16;
    } else if (size === 0) {
      size = left;
    }
    if (size < header) throw new Mp4Error(`${type} box at offset ${pos}: bad size ${size}`);
    if (type === 'moov' && size - header > MAX_MOOV_BYTES) {
      throw new Mp4Error(`moov box is ${size - header} bytes, more than the ${MAX_MOOV_BYTES} accepted`);
    }
    if (size > left) throw new Mp4Error(`${type} box at offset ${pos} runs past the end of the file (truncated?)`);
    if (type === 'ftyp' && brand === '' && size - header >= 4) {
      const b = Buffer.alloc(4);
      await readExactly(fh, b, 4, pos + header);
      brand = b.toString('latin1');
    } else if (type === 'moov') {
      const length = size - header;
      const moov = Buffer.allocUnsafe(length);
      await readExactly(fh, moov, length, pos + header);
      return { brand, moov };
    }
    pos += size;
  }
  throw new Mp4Error('no moov box (not an MP4 file, or truncated)');
}

// ---------------------------------------------------------------------------
// Sample entries and codec configuration

/** What a sample entry (stsd) says about its track. */
type EntryInfo = Pick<Mp4Track, 'fourcc' | 'codec' | 'config' | 'width' | 'height' | 'avcProfile' | 'avcLevel' | 'sampleRate' | 'channels'>;

const AAC_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/** MPEG-4 descriptor length: up to four 7-bit groups, high bit = more. */
function descriptorLength(c: Cursor): number {
  let len = 0;
  for (let i = 0; i < 4; i++) {
    const b = c.u8();
    len = len * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) break;
  }
  return len;
}

/** objectTypeIndication and DecoderSpecificInfo from an esds box. */
function parseEsds(buf: Buffer, box: Box, where: string): { oti: number; dsi: Buffer | null } {
  const { c } = fullBox(buf, box, where);
  if (c.u8() !== 0x03) throw new Mp4Error(`${where}: no ES_Descriptor`);
  const es = c.sub(descriptorLength(c), `${where} ES_Descriptor`);
  es.skip(2); // ES_ID
  const flags = es.u8();
  if ((flags & 0x80) !== 0) es.skip(2); // dependsOn_ES_ID
  if ((flags & 0x40) !== 0) es.skip(es.u8()); // URL
  if ((flags & 0x20) !== 0) es.skip(2); // OCR_ES_Id
  while (es.remaining > 0) {
    const tag = es.u8();
    const d = es.sub(descriptorLength(es), `${where} descriptor 0x${tag.toString(16)}`);
    if (tag !== 0x04) continue;
    const oti = d.u8();
    d.skip(12); // streamType, bufferSizeDB, maxBitrate, avgBitrate
    while (d.remaining > 0) {
      const inner = d.u8();
      const len = descriptorLength(d);
      if (inner === 0x05) return { oti, dsi: d.copy(len) };
      d.skip(len);
    }
    return { oti, dsi: null };
  }
  throw new Mp4Error(`${where}: no DecoderConfigDescriptor`);
}

/** Sample rate and channels from an AudioSpecificConfig (ISO 14496-3 1.6.2.1). */
function parseAsc(asc: Buffer, where: string): { sampleRate: number | null; channels: number } {
  let bit = 0;
  const bits = (n: number): number => {
    if (bit + n > asc.length * 8) throw new Mp4Error(`${where}: AudioSpecificConfig truncated`);
    let v = 0;
    for (let i = 0; i < n; i++, bit++) v = v * 2 + (((asc[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1);
    return v;
  };
  const rate = (): number | null => {
    const index = bits(4);
    return index === 0xf ? bits(24) : (AAC_RATES[index] ?? null);
  };
  let objectType = bits(5);
  if (objectType === 31) objectType = 32 + bits(6);
  let sampleRate = rate();
  const channels = bits(4);
  // Explicit SBR (HE-AAC v1/v2): the decoder outputs the extension rate,
  // which is what players report. Some writers omit it; keep the core rate.
  if ((objectType === 5 || objectType === 29) && asc.length * 8 - bit >= 4) {
    const ext = rate();
    if (ext !== null) sampleRate = ext;
  }
  return { sampleRate, channels };
}

function videoEntry(buf: Buffer, entry: Box, where: string): EntryInfo {
  const c = new Cursor(buf, entry.start, entry.end, where);
  c.skip(24); // reserved, data_reference_index, pre_defined, reserved
  const width = c.u16();
  const height = c.u16();
  c.skip(50); // resolutions, reserved, frame_count, compressorname, depth, pre_defined
  const base = { fourcc: entry.type, config: null, width, height, avcProfile: null, avcLevel: null, sampleRate: 0, channels: 0 };
  if (entry.type === 'hvc1' || entry.type === 'hev1') return { ...base, codec: 'hevc' };
  if (entry.type !== 'avc1' && entry.type !== 'avc3') return { ...base, codec: 'other' };
  const avcC = find(children(buf, c.pos, entry.end, where), 'avcC');
  if (avcC === null) throw new Mp4Error(`${where}: H.264 sample entry without avcC`);
  const rec = new Cursor(buf, avcC.start, avcC.end, `${where}/avcC`);
  const config = rec.copy(rec.remaining);
  if (config.length < 7) throw new Mp4Error(`${where}/avcC: too short (${config.length} bytes)`);
  return { ...base, codec: 'h264', config, avcProfile: config[1] ?? null, avcLevel: config[3] ?? null };
}

function audioEntry(buf: Buffer, entry: Box, where: string): EntryInfo {
  const c = new Cursor(buf, entry.start, entry.end, where);
  c.skip(8); // reserved, data_reference_index
  // ISO files always say 0; QuickTime sound descriptions 1 and 2 append fields.
  const version = c.u16();
  c.skip(6); // revision, vendor
  let channels = c.u16();
  c.skip(6); // samplesize, compression_id, packet_size
  let sampleRate = Math.floor(c.u32() / 65536);
  if (version === 1) c.skip(16);
  if (version === 2) {
    c.skip(4); // sizeOfStructOnly
    const rate = c.f64();
    sampleRate = Number.isFinite(rate) && rate > 0 && rate < TWO_32 ? Math.floor(rate) : 0;
    channels = c.u32();
    c.skip(20);
  }
  const base = { fourcc: entry.type, config: null, width: 0, height: 0, avcProfile: null, avcLevel: null, sampleRate, channels };
  switch (entry.type) {
    case '.mp3':
      return { ...base, codec: 'mp3' };
    case 'Opus':
      return { ...base, codec: 'opus' };
    case 'ac-3':
      return { ...base, codec: 'ac3' };
    case 'ec-3':
      return { ...base, codec: 'eac3' };
    case 'mp4a':
      break;
    default:
      return { ...base, codec: 'other' };
  }
  // QuickTime puts esds inside a 'wave' atom.
  const kids = children(buf, c.pos, entry.end, where);
  const wave = find(kids, 'wave');
  const esds = find(kids, 'esds') ?? (wave === null ? null : find(children(buf, wave.start, wave.end, `${where}/wave`), 'esds'));
  if (esds === null) return { ...base, codec: 'other' };
  const { oti, dsi } = parseEsds(buf, esds, `${where}/esds`);
  if (oti === 0x69 || oti === 0x6b) return { ...base, codec: 'mp3' };
  if (oti !== 0x40 && oti !== 0x66 && oti !== 0x67 && oti !== 0x68) return { ...base, codec: 'other' };
  if (dsi === null || dsi.length < 2) throw new Mp4Error(`${where}/esds: AAC without an AudioSpecificConfig`);
  const asc = parseAsc(dsi, `${where}/esds`);
  return {
    ...base,
    codec: 'aac',
    config: dsi,
    sampleRate: asc.sampleRate ?? sampleRate,
    channels: asc.channels !== 0 ? asc.channels : channels,
  };
}

function parseStsd(buf: Buffer, box: Box, kind: 'video' | 'audio', where: string): EntryInfo {
  const { c } = fullBox(buf, box, where);
  if (c.u32() === 0) throw new Mp4Error(`${where}: no sample entries`);
  // Only the first entry is used; parseSamples refuses samples that use another.
  const entry = boxAt(buf, c.pos, box.end, where);
  const entryWhere = `${where}/${printable(entry.type)}`;
  return kind === 'video' ? videoEntry(buf, entry, entryWhere) : audioEntry(buf, entry, entryWhere);
}

// ---------------------------------------------------------------------------
// Sample tables

/** Sample budget shared by the tracks of one file. */
interface Budget {
  left: number;
}

function sampleSizes(buf: Buffer, stbl: readonly Box[], where: string, fileSize: number, budget: Budget): Uint32Array {
  const claim = (count: number): void => {
    if (count > budget.left) throw new Mp4Error(`${where}: ${count} samples are more than the ${MAX_SAMPLES} accepted per file`);
    budget.left -= count;
  };
  const stsz = find(stbl, 'stsz');
  if (stsz !== null) {
    const { c } = fullBox(buf, stsz, `${where}/stsz`);
    const constant = c.u32();
    const count = c.u32();
    if (constant !== 0) {
      // Nothing in the box backs this count, so the file size has to.
      if (count * constant > fileSize) throw new Mp4Error(`${where}/stsz: ${count} samples of ${constant} bytes do not fit in the file`);
      claim(count);
      return new Uint32Array(count).fill(constant);
    }
    c.expectEntries(count, 4, 'samples');
    claim(count);
    const size = new Uint32Array(count);
    for (let i = 0, p = c.pos; i < count; i++, p += 4) size[i] = buf.readUInt32BE(p);
    return size;
  }
  const stz2 = find(stbl, 'stz2');
  if (stz2 === null) throw new Mp4Error(`${where}: no stsz or stz2 box`);
  const { c } = fullBox(buf, stz2, `${where}/stz2`);
  c.skip(3);
  const fieldBits = c.u8();
  const count = c.u32();
  if (fieldBits !== 4 && fieldBits !== 8 && fieldBits !== 16) throw new Mp4Error(`${where}/stz2: field size ${fieldBits} is not 4, 8 or 16`);
  c.expectEntries(Math.ceil((count * fieldBits) / 8), 1, 'bytes of sample sizes');
  claim(count);
  const size = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    if (fieldBits === 16) size[i] = buf.readUInt16BE(c.pos + i * 2);
    else if (fieldBits === 8) size[i] = buf.readUInt8(c.pos + i);
    else size[i] = (buf.readUInt8(c.pos + (i >> 1)) >> ((i & 1) === 0 ? 4 : 0)) & 0xf;
  }
  return size;
}

/** Expands stts into dts (from 0, before any shift) and duration. */
function decodeTimes(buf: Buffer, box: Box, count: number, where: string): { dts: Float64Array; duration: Uint32Array } {
  const { c } = fullBox(buf, box, where);
  const entries = c.u32();
  c.expectEntries(entries, 8, 'entries');
  const dts = new Float64Array(count);
  const duration = new Uint32Array(count);
  let i = 0;
  let t = 0;
  for (let e = 0, p = c.pos; e < entries && i < count; e++, p += 8) {
    const n = buf.readUInt32BE(p);
    const delta = buf.readUInt32BE(p + 4);
    for (let k = 0; k < n && i < count; k++, i++) {
      dts[i] = t;
      duration[i] = delta;
      t += delta;
    }
  }
  if (i < count) throw new Mp4Error(`${where}: covers ${i} of ${count} samples`);
  if (!Number.isSafeInteger(t)) throw new Mp4Error(`${where}: timestamps beyond 2^53`);
  return { dts, duration };
}

/** Expands ctts. Read as signed in both versions, as ffmpeg does: version-0 writers store negative offsets too. */
function compositionOffsets(buf: Buffer, box: Box | null, count: number, where: string): Int32Array {
  const cts = new Int32Array(count);
  if (box === null) return cts;
  const { c } = fullBox(buf, box, where);
  const entries = c.u32();
  c.expectEntries(entries, 8, 'entries');
  let i = 0;
  for (let e = 0, p = c.pos; e < entries && i < count; e++, p += 8) {
    const n = buf.readUInt32BE(p);
    const offset = buf.readInt32BE(p + 4);
    const stop = Math.min(count, i + n);
    cts.fill(offset, i, stop);
    i = stop;
  }
  if (i < count) throw new Mp4Error(`${where}: covers ${i} of ${count} samples`);
  return cts;
}

function syncFlags(buf: Buffer, box: Box | null, count: number, where: string): Uint8Array {
  const sync = new Uint8Array(count);
  if (box === null) return sync.fill(1);
  const { c } = fullBox(buf, box, where);
  const entries = c.u32();
  c.expectEntries(entries, 4, 'entries');
  for (let e = 0, p = c.pos; e < entries; e++, p += 4) {
    const n = buf.readUInt32BE(p);
    // Numbers are 1-based; one out of range names no sample and is harmless.
    if (n >= 1 && n <= count) sync[n - 1] = 1;
  }
  return sync;
}

/** Walks stsc over the chunk offsets (read in place, never copied) to place every sample. */
function sampleOffsets(buf: Buffer, stbl: readonly Box[], size: Uint32Array, where: string, fileSize: number): Float64Array {
  const count = size.length;
  const stsc = fullBox(buf, need(stbl, 'stsc', where), `${where}/stsc`).c;
  const stscEntries = stsc.u32();
  stsc.expectEntries(stscEntries, 12, 'entries');
  const co = find(stbl, 'stco') ?? find(stbl, 'co64');
  if (co === null) throw new Mp4Error(`${where}: no stco or co64 box`);
  const wide = co.type === 'co64';
  const coWhere = `${where}/${co.type}`;
  const coc = fullBox(buf, co, coWhere).c;
  const chunks = coc.u32();
  coc.expectEntries(chunks, wide ? 8 : 4, 'chunks');
  const chunkOffset = (chunk: number): number => {
    const p = coc.pos + chunk * (wide ? 8 : 4);
    if (!wide) return buf.readUInt32BE(p);
    const hi = buf.readUInt32BE(p);
    if (hi > 0x1f_ffff) throw new Mp4Error(`${coWhere}: chunk offset beyond 2^53`);
    return hi * TWO_32 + buf.readUInt32BE(p + 4);
  };

  const offset = new Float64Array(count);
  let sample = 0;
  let first = 0;
  for (let e = 0, p = stsc.pos; e < stscEntries && sample < count; e++, p += 12) {
    const entryFirst = buf.readUInt32BE(p);
    const perChunk = buf.readUInt32BE(p + 4);
    const description = buf.readUInt32BE(p + 8);
    if (e === 0 ? entryFirst !== 1 : entryFirst <= first) throw new Mp4Error(`${where}/stsc: entry ${e} starts at chunk ${entryFirst}, out of order`);
    first = entryFirst;
    if (description > 1) throw new Mp4Error(`${where}/stsc: samples use sample description ${description}; only the first is supported`);
    // Chunk numbers are 1-based; this run ends where the next entry starts.
    const nextFirst = e + 1 < stscEntries ? buf.readUInt32BE(p + 12) : chunks + 1;
    const last = Math.min(nextFirst - 1, chunks);
    for (let chunk = first; chunk <= last && sample < count; chunk++) {
      let at = chunkOffset(chunk - 1);
      for (let k = 0; k < perChunk && sample < count; k++, sample++) {
        const bytes = size[sample] ?? 0;
        if (at + bytes > fileSize) throw new Mp4Error(`${where}: sample ${sample} lies past the end of the file (truncated?)`);
        offset[sample] = at;
        at += bytes;
      }
    }
  }
  if (sample < count) throw new Mp4Error(`${where}: chunks hold ${sample} of ${count} samples`);
  return offset;
}

// ---------------------------------------------------------------------------
// Edit list

/**
 * The shift to add to every timestamp, and where presentation starts
 * (null without an edit list), both in track timescale units.
 *
 * Honoured exactly: one edit with media_time M (shift -M, so the first
 * presented sample has pts 0); leading empty edits totalling E movie units,
 * then a normal edit (shift +E - M, the track starts late). Anything richer
 * (several non-empty edits, a rate other than 1) is not honoured: only the
 * first non-empty edit's media_time is applied, every sample is kept, and
 * later edits are ignored. That covers what ffmpeg, x264 and phone
 * cameras write; real cut lists would need samples dropped or repeated.
 */
function editShift(buf: Buffer, trak: readonly Box[], movieTimescale: number, timescale: number, where: string): { shift: number; start: number | null } {
  const none = { shift: 0, start: null };
  const edts = find(trak, 'edts');
  if (edts === null) return none;
  const elst = find(children(buf, edts.start, edts.end, `${where}/edts`), 'elst');
  if (elst === null) return none;
  const elstWhere = `${where}/edts/elst`;
  const { version, c } = fullBox(buf, elst, elstWhere);
  const entries = c.u32();
  c.expectEntries(entries, version === 1 ? 20 : 12, 'entries');
  let empty = 0;
  for (let e = 0; e < entries; e++) {
    const segment = version === 1 ? c.u64() : c.u32();
    const mediaTime = version === 1 ? c.i64() : c.i32();
    c.skip(4); // media_rate
    if (mediaTime === -1) {
      empty += segment;
      continue;
    }
    if (mediaTime < 0) throw new Mp4Error(`${elstWhere}: media_time ${mediaTime} is negative`);
    const lead = Math.round((empty * timescale) / movieTimescale);
    if (!Number.isSafeInteger(lead)) throw new Mp4Error(`${elstWhere}: empty edit too long`);
    return { shift: lead - mediaTime, start: lead };
  }
  return none;
}

// ---------------------------------------------------------------------------
// Tracks and the file

function timescaleOf(buf: Buffer, box: Box, where: string): { timescale: number; duration: number } {
  const { version, c } = fullBox(buf, box, where);
  c.skip(version === 1 ? 16 : 8); // creation and modification times
  const timescale = c.u32();
  const duration = version === 1 ? c.u64() : c.u32();
  if (timescale === 0) throw new Mp4Error(`${where}: timescale is 0`);
  return { timescale, duration };
}

function parseTrak(buf: Buffer, trakBox: Box, movieTimescale: number, fileSize: number, budget: Budget, where: string): Mp4Track | null {
  const trak = children(buf, trakBox.start, trakBox.end, where);
  const mdia = need(trak, 'mdia', where);
  const mdiaWhere = `${where}/mdia`;
  const mdiaKids = children(buf, mdia.start, mdia.end, mdiaWhere);
  const hdlr = fullBox(buf, need(mdiaKids, 'hdlr', mdiaWhere), `${mdiaWhere}/hdlr`).c;
  hdlr.skip(4); // pre_defined (QuickTime: component type)
  const handler = hdlr.copy(4).toString('latin1');
  const kind = handler === 'vide' ? 'video' : handler === 'soun' ? 'audio' : null;
  if (kind === null) return null;

  const tkhd = fullBox(buf, need(trak, 'tkhd', where), `${where}/tkhd`);
  tkhd.c.skip(tkhd.version === 1 ? 16 : 8);
  const id = tkhd.c.u32();
  const { timescale } = timescaleOf(buf, need(mdiaKids, 'mdhd', mdiaWhere), `${mdiaWhere}/mdhd`);

  const minf = need(mdiaKids, 'minf', mdiaWhere);
  const minfWhere = `${mdiaWhere}/minf`;
  const stblBox = need(children(buf, minf.start, minf.end, minfWhere), 'stbl', minfWhere);
  const stblWhere = `${minfWhere}/stbl`;
  const stbl = children(buf, stblBox.start, stblBox.end, stblWhere);
  const entry = parseStsd(buf, need(stbl, 'stsd', stblWhere), kind, `${stblWhere}/stsd`);

  const size = sampleSizes(buf, stbl, stblWhere, fileSize, budget);
  const count = size.length;
  const { dts, duration } = decodeTimes(buf, need(stbl, 'stts', stblWhere), count, `${stblWhere}/stts`);
  const cts = compositionOffsets(buf, find(stbl, 'ctts'), count, `${stblWhere}/ctts`);
  const sync = syncFlags(buf, find(stbl, 'stss'), count, `${stblWhere}/stss`);
  const offset = sampleOffsets(buf, stbl, size, stblWhere, fileSize);

  const { shift, start } = editShift(buf, trak, movieTimescale, timescale, where);
  let firstPts = Infinity;
  let end = -Infinity;
  for (let i = 0; i < count; i++) {
    const d = (dts[i] ?? 0) + shift;
    dts[i] = d;
    const pts = d + (cts[i] ?? 0);
    if (pts < firstPts) firstPts = pts;
    const stop = pts + (duration[i] ?? 0);
    if (stop > end) end = stop;
  }
  // Samples before the edit's start (AAC priming) decode but are not shown.
  if (start !== null) firstPts = Math.max(firstPts, start);

  return {
    id,
    kind,
    timescale,
    ...entry,
    samples: { count, offset, size, dts, cts, duration, sync },
    duration: count === 0 ? 0 : Math.max(0, end - firstPts),
  };
}

function parseMoov(moov: Buffer, fileSize: number): { tracks: Mp4Track[]; movieDurationSeconds: number } {
  const top = children(moov, 0, moov.length, 'moov');
  if (find(top, 'mvex') !== null) throw new Mp4Error('fragmented MP4 is not supported');
  if (find(top, 'cmov') !== null) throw new Mp4Error('compressed moov is not supported');
  const mvhd = timescaleOf(moov, need(top, 'mvhd', 'moov'), 'moov/mvhd');
  const budget: Budget = { left: MAX_SAMPLES };
  const tracks: Mp4Track[] = [];
  top
    .filter((b) => b.type === 'trak')
    .forEach((b, i) => {
      const track = parseTrak(moov, b, mvhd.timescale, fileSize, budget, `moov/trak[${i}]`);
      if (track !== null) tracks.push(track);
    });
  return { tracks, movieDurationSeconds: mvhd.duration / mvhd.timescale };
}

/**
 * Reads the sample index of an MP4 or MOV file.
 *
 * @throws Mp4Error when the file is not an MP4, is truncated or malformed,
 *   is fragmented, or exceeds {@link MAX_MOOV_BYTES} / {@link MAX_SAMPLES}.
 *   File-system errors (ENOENT, EACCES) pass through unchanged.
 */
export async function readMp4(path: string): Promise<Mp4File> {
  const fh = await open(path, 'r');
  try {
    const { size: fileSize } = await fh.stat();
    const { brand, moov } = await readTopLevel(fh, fileSize);
    const { tracks, movieDurationSeconds } = parseMoov(moov, fileSize);
    return { brand, tracks, movieDurationSeconds };
  } finally {
    await fh.close();
  }
}

/** Seconds helper: track.duration / track.timescale. */
export function trackSeconds(t: Mp4Track): number {
  return t.duration / t.timescale;
}

/** The average frame (sample) duration of a track, seconds; null for an empty track. */
export function frameSeconds(t: Mp4Track): number | null {
  return t.samples.count > 0 && t.duration > 0 ? trackSeconds(t) / t.samples.count : null;
}
