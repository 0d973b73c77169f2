/**
 * Pipeline.stop() (src/gst/native.ts), the one bus-thread release protocol
 * of the worker and the transcoder, on real GStreamer pipelines: it resolves
 * true once the bus poller has handed its threadpool thread back, whether it
 * is called from inside the bus callback, from outside while the bus is busy
 * or idle, or on a pipeline nobody polls; and the threads really come back:
 * more polled pipelines than libuv has threads, all stopped, leave the pool
 * free for a file read.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { initNative, Pipeline, type BusMessage } from '../src/gst/native.js';

/** A live source that runs until stopped; its bus is quiet once it plays. */
const live = 'videotestsrc is-live=true ! video/x-raw,width=64,height=48,framerate=25/1 ! fakesink';

/** Polls the bus into `seen` and plays; resolves once the pipeline is PLAYING. */
function playing(p: Pipeline, seen: BusMessage[] = []): Promise<void> {
  return new Promise((resolve) => {
    p.pollBus((m) => {
      seen.push(m);
      if (m.type === 'state-changed' && m.source.startsWith('pipeline') && m.newState === 'GST_STATE_PLAYING') resolve();
    });
    p.play();
  });
}

function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}

describe('Pipeline.stop', () => {
  initNative();

  it('resolves true on a pipeline nobody polls, and the same promise twice', async () => {
    const p = Pipeline.parse(live);
    p.play();
    const first = p.stop();
    assert.equal(p.stop(), first);
    assert.equal(await first, true);
  });

  it('resolves true from outside the callback on an idle bus, and delivers nothing after it', async () => {
    const p = Pipeline.parse(live);
    const seen: BusMessage[] = [];
    await within(5000, 'PLAYING', playing(p, seen));
    // The bus has gone quiet: the poller blocks in gst_bus_timed_pop.
    await new Promise((r) => setTimeout(r, 300));
    const before = seen.length;
    assert.equal(await within(3000, 'release', p.stop()), true);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(seen.length, before, 'no message reaches the callback after stop()');
  });

  it('resolves true when called inside the bus callback', async () => {
    const p = Pipeline.parse('videotestsrc num-buffers=5 ! fakesink');
    // Wrapped: a promise resolved with a promise would be flattened into its result.
    const { released } = await within(
      5000,
      'eos',
      new Promise<{ released: Promise<boolean> }>((resolve) => {
        p.pollBus((m) => {
          if (m.type === 'eos') resolve({ released: p.stop() });
        });
        p.play();
      }),
    );
    assert.equal(await within(1000, 'release', released), true);
  });

  it('gives every thread back: more polled pipelines than threads, stopped, leave the pool free', async () => {
    const threads = Number.parseInt(process.env['UV_THREADPOOL_SIZE'] ?? '4', 10);
    const n = Math.min(threads, 64) + 2;
    const pipelines = Array.from({ length: n }, () => Pipeline.parse(live));
    // Only `threads` pollers can run at once; the others wait for a thread.
    for (const p of pipelines) {
      p.pollBus(() => undefined);
      p.play();
    }
    await new Promise((r) => setTimeout(r, 300));
    const released = await within(10_000, 'every release', Promise.all(pipelines.map((p) => p.stop())));
    assert.deepEqual(released, pipelines.map(() => true));
    // A threadpool still held by blocked pollers would never run this read.
    const self = await within(2000, 'a file read after the stops', readFile(fileURLToPath(import.meta.url)));
    assert.ok(self.length > 0);
  });
});
