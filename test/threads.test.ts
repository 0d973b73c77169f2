/**
 * The worker's thread reservations (src/worker/threads.ts): channels are
 * counted by the GStreamer threads they may pin, so VOD channels and rtmp://
 * relays are not limited by the threadpool while GStreamer-backed ones are.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PipelineSpec } from '../src/pool/pipeline-spec.js';
import { ThreadBook, threadsFor } from '../src/worker/threads.js';

const vod: PipelineSpec = { channelId: 'v', source: { kind: 'vod', items: [{ id: 'a', path: '/m/a.mp4' }], loop: true }, targets: ['rtmp://o/live/v'] };
const live = (protocol: 'rtmp' | 'rtsp', transcode: 'never' | 'always' = 'never'): PipelineSpec => ({
  channelId: 'l',
  source: { kind: 'live', label: 'primary', protocol, url: 'rtmp://s/app/x', connectTimeoutMs: 5000, rtspTransport: 'tcp', transcode },
  targets: ['rtmp://o/live/l'],
});

test('what each kind of channel may pin', () => {
  assert.equal(threadsFor(vod), 0);
  assert.equal(threadsFor({ ...vod, targets: ['rtmp://o/live/v', 'rtmp://cdn/a/k', 'rtmp://cdn/b/k'] }), 0, 'push targets are the worker’s own sockets');
  assert.equal(threadsFor({ ...vod, tap: { url: 'rtmp://o/live/v', hasVideo: true, hasAudio: true, recording: null, snapshot: { file: '/s/v.jpg', intervalSeconds: 5 } } }), 2, 'a tap');
  assert.equal(threadsFor({ ...vod, targets: ['rtmp://o/live/v', 'srt://cdn:9000?streamid=k', 'srt://cdn2:9000'] }), 2, 'an srt:// target is a pipeline: its bus');
  assert.equal(threadsFor(live('rtmp')), 2, 'room for a second source of any kind');
  assert.equal(threadsFor(live('rtmp', 'always')), 4);
  assert.equal(threadsFor(live('rtsp')), 4);
});

test('a start beyond the budget is refused and holds nothing; releases give room back', () => {
  const book = new ThreadBook(5);
  assert.ok(book.reserve('a', 4));
  assert.ok(!book.reserve('b', 2));
  assert.equal(book.used, 4);
  for (let i = 0; i < 1000; i++) assert.ok(book.reserve(`vod${i}`, 0), 'VOD channels need no thread');
  book.release('a');
  assert.ok(book.reserve('b', 2));
  assert.ok(book.reserve('a', 3));
  assert.equal(book.used, 5);
  assert.ok(book.reserve('a', 1), 'a new reservation for the same channel replaces its old one');
  assert.equal(book.used, 3);
});
