/**
 * AMF0, the encoding of RTMP's commands and data messages: just the types a
 * publisher sends (numbers, booleans, strings, objects, null, ECMA arrays)
 * and reads back in a server's answers. Pure; imports nothing.
 */

export type Amf = number | boolean | string | null | undefined | AmfObject | Amf[];
export interface AmfObject {
  [key: string]: Amf;
}

const NUMBER = 0x00;
const BOOLEAN = 0x01;
const STRING = 0x02;
const OBJECT = 0x03;
const NULL = 0x05;
const UNDEFINED = 0x06;
const ECMA_ARRAY = 0x08;
const OBJECT_END = 0x09;
const STRICT_ARRAY = 0x0a;
const DATE = 0x0b;
const LONG_STRING = 0x0c;

export class AmfError extends Error {}

function utf8(s: string, long = false): Buffer {
  const body = Buffer.from(s, 'utf8');
  if (!long && body.length > 0xffff) throw new AmfError(`AMF0 string longer than 65535 bytes (${body.length})`);
  const head = Buffer.alloc(long ? 4 : 2);
  if (long) head.writeUInt32BE(body.length);
  else head.writeUInt16BE(body.length);
  return Buffer.concat([head, body]);
}

function properties(o: Readonly<AmfObject>): Buffer[] {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    parts.push(utf8(k), encodeOne(v));
  }
  parts.push(Buffer.from([0, 0, OBJECT_END]));
  return parts;
}

function encodeOne(v: Amf): Buffer {
  if (v === null) return Buffer.from([NULL]);
  if (v === undefined) return Buffer.from([UNDEFINED]);
  if (typeof v === 'number') {
    const b = Buffer.alloc(9);
    b[0] = NUMBER;
    b.writeDoubleBE(v, 1);
    return b;
  }
  if (typeof v === 'boolean') return Buffer.from([BOOLEAN, v ? 1 : 0]);
  if (typeof v === 'string') {
    const long = Buffer.byteLength(v) > 0xffff;
    return Buffer.concat([Buffer.from([long ? LONG_STRING : STRING]), utf8(v, long)]);
  }
  if (Array.isArray(v)) {
    const head = Buffer.alloc(5);
    head[0] = STRICT_ARRAY;
    head.writeUInt32BE(v.length, 1);
    return Buffer.concat([head, ...v.map(encodeOne)]);
  }
  return Buffer.concat([Buffer.from([OBJECT]), ...properties(v)]);
}

/** Values one after the other, as a command or data message's body. */
export function encode(...values: Amf[]): Buffer {
  return Buffer.concat(values.map(encodeOne));
}

/** An ECMA array (what onMetaData carries), with its count. */
export function encodeEcmaArray(o: Readonly<AmfObject>): Buffer {
  const head = Buffer.alloc(5);
  head[0] = ECMA_ARRAY;
  head.writeUInt32BE(Object.keys(o).length, 1);
  return Buffer.concat([head, ...properties(o)]);
}

class Cursor {
  at = 0;
  constructor(readonly buf: Buffer) {}
  need(n: number): void {
    if (this.at + n > this.buf.length) throw new AmfError(`AMF0 value cut short at byte ${this.at}`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.at++] ?? 0;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }
  text(n: number): string {
    this.need(n);
    const s = this.buf.toString('utf8', this.at, this.at + n);
    this.at += n;
    return s;
  }
}

function decodeProperties(c: Cursor, depth: number): AmfObject {
  const o: AmfObject = {};
  for (;;) {
    const key = c.text(c.u16());
    if (key === '') {
      if (c.u8() !== OBJECT_END) throw new AmfError('AMF0 object without its end marker');
      return o;
    }
    o[key] = decodeOne(c, depth + 1);
  }
}

function decodeOne(c: Cursor, depth: number): Amf {
  if (depth > 32) throw new AmfError('AMF0 nested too deep');
  const type = c.u8();
  switch (type) {
    case NUMBER: {
      c.need(8);
      const v = c.buf.readDoubleBE(c.at);
      c.at += 8;
      return v;
    }
    case BOOLEAN:
      return c.u8() !== 0;
    case STRING:
      return c.text(c.u16());
    case LONG_STRING:
      return c.text(c.u32());
    case OBJECT:
      return decodeProperties(c, depth);
    case ECMA_ARRAY:
      c.u32(); // the count is advisory; the end marker ends it
      return decodeProperties(c, depth);
    case STRICT_ARRAY: {
      const n = c.u32();
      const out: Amf[] = [];
      for (let i = 0; i < n; i += 1) out.push(decodeOne(c, depth + 1));
      return out;
    }
    case DATE: {
      c.need(10);
      const v = c.buf.readDoubleBE(c.at);
      c.at += 10;
      return v;
    }
    case NULL:
      return null;
    case UNDEFINED:
      return undefined;
    default:
      throw new AmfError(`AMF0 type 0x${type.toString(16)} is not supported`);
  }
}

/** Every value in a command or data message's body. */
export function decode(buf: Buffer): Amf[] {
  const c = new Cursor(buf);
  const out: Amf[] = [];
  while (c.at < buf.length) out.push(decodeOne(c, 0));
  return out;
}

/**
 * The name a data message starts with (onMetaData, onCuePoint…), read
 * without decoding the rest; null when it does not start with a short string.
 */
export function dataName(body: Buffer): string | null {
  if (body.length < 3 || body[0] !== STRING) return null;
  const length = body.readUInt16BE(1);
  return body.length < 3 + length ? null : body.toString('utf8', 3, 3 + length);
}
