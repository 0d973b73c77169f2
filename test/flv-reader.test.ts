/**
 * FlvReader turns a byte stream cut anywhere back into the tags flv.ts
 * built; tagKind tells sequence headers, keyframes and frames apart; and
 * viewTag reads a tag we built at another time without copying its body.
 * Pure: no GStreamer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aacSequenceHeader, audioFlags, audioTag, avcSequenceHeader, metadataTag, videoTag } from '../src/media/flv.js';
import { FlvError, FlvReader, tagKind, viewTag } from '../src/media/flv-reader.js';

const fileHeader = Buffer.from([0x46, 0x4c, 0x56, 1, 5, 0, 0, 0, 9, 0, 0, 0, 0]);

function stream(): { bytes: Buffer; times: number[]; kinds: string[] } {
  const tags = [
    metadataTag({ width: 320 }),
    avcSequenceHeader(0, Buffer.from([1, 0x64, 0, 0x1f, 0xff])),
    aacSequenceHeader(0, Buffer.from([0x12, 0x10])),
    videoTag(0, 40, true, 7),
    audioTag(10, audioFlags('aac', 48_000, 2), true, 5),
    videoTag(40, 0, false, 3),
    // Past 24 bits: the extension byte carries the top of the timestamp.
    videoTag(0x1234567, 0, false, 2),
  ];
  return { bytes: Buffer.concat([fileHeader, ...tags]), times: [0, 0, 0, 0, 10, 40, 0x1234567], kinds: ['script', 'video-config', 'audio-config', 'video-key', 'audio', 'video', 'video'] };
}

describe('FlvReader', () => {
  it('reads the same tags however the stream is cut', () => {
    const { bytes, times, kinds } = stream();
    for (const cut of [1, 2, 7, 11, 13, 64, bytes.length]) {
      const reader = new FlvReader();
      const got = [];
      for (let at = 0; at < bytes.length; at += cut) got.push(...reader.push(bytes.subarray(at, at + cut)));
      assert.deepEqual(got.map((t) => t.timeMs), times, `cut every ${cut} bytes`);
      assert.deepEqual(got.map(tagKind), kinds);
    }
  });

  it('views a tag we built at another time, its body byte for byte and not copied', () => {
    const original = videoTag(1000, 40, true, 4);
    original.fill(9, 16, 20);
    const [tag] = new FlvReader().push(Buffer.concat([fileHeader, original]));
    assert.ok(tag !== undefined);
    const view = viewTag(original, 0x01abcdef);
    assert.equal(view.timeMs, 0x01abcdef);
    assert.equal(view.type, tag.type);
    assert.deepEqual(view.body, tag.body);
    assert.equal(view.body.buffer, original.buffer, 'a view of the tag, not a copy');
  });

  it('refuses a stream that is not FLV and a tag too large to be a frame', () => {
    assert.throws(() => new FlvReader().push(Buffer.from('GET / HTTP/1.1\r\n\r\n')), FlvError);
    const huge = Buffer.from([9, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0]);
    assert.throws(() => new FlvReader().push(Buffer.concat([fileHeader, huge])), /FLV tag of/);
  });
});
