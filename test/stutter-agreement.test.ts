/**
 * The worker's stutter metric (vlive_channel_stutter_seconds_total) agrees
 * with what an independent receiver judges, at rest and under load: a real
 * worker publishes a looping file to ffprobe (through an RTMP push target),
 * then its event loop is frozen for 600 ms (SIGSTOP, the extreme case of a
 * busy loop) while the receiver listens. Both are judged by the one
 * definition in src/media/stutter.ts: the worker on each batch as it
 * reaches the kernel, the receiver on each packet as it arrives.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../src/log.js';
import { stutterReport } from '../src/media/stutter.js';
import { WorkerPool } from '../src/pool/pool.js';
import { makeMp4 } from './helpers/media.js';
import { waitPipeline } from './helpers/pool.js';
import { RtmpReceiver } from './helpers/rtmp-receiver.js';

const frame = 1 / 25;

function receiverStutter(rx: RtmpReceiver, fromMs: number): number {
  const video = rx.packets.filter((p) => p.kind === 'video' && p.dts !== null && p.atMs >= fromMs);
  return stutterReport(
    video.map((p) => ({ wallSeconds: p.atMs / 1000, dtsSeconds: p.dts ?? 0 })),
    frame,
  ).stutterSeconds;
}

test('the worker counts the stutter a receiver sees: none at rest, the same stall when its event loop freezes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vlive-stutter-'));
  const pool = new WorkerPool({ size: 1, maxPipelinesPerWorker: 4, handshakeTimeoutMs: 10_000, heartbeatIntervalMs: 500, stopGraceMs: 3000, log: createLogger({ test: 'stutter-agreement' }) });
  t.after(async () => {
    await pool.dispose();
    await rm(dir, { recursive: true, force: true });
  });
  await pool.start();
  const file = await makeMp4(dir, { seconds: 4, width: 320, height: 240, fps: 25 });

  const run = async (id: string, freezeMs: number): Promise<{ worker: number; receiver: number }> => {
    const rx = await RtmpReceiver.start();
    t.after(() => rx.close());
    const playing = waitPipeline(pool, id, ['playing', 'error'], 15_000);
    await pool.startPipeline({ channelId: id, source: { kind: 'vod', items: [{ id: 'f', path: file }], loop: true }, targets: [rx.url] });
    assert.equal((await playing).state, 'playing');
    await new Promise((r) => setTimeout(r, 4000));
    if (freezeMs > 0) {
      const pid = pool.workers()[0]?.pid;
      assert.ok(pid !== null && pid !== undefined);
      process.kill(pid, 'SIGSTOP');
      await new Promise((r) => setTimeout(r, freezeMs));
      process.kill(pid, 'SIGCONT');
    }
    await new Promise((r) => setTimeout(r, 3000));
    const stopped = waitPipeline(pool, id, ['stopped'], 10_000);
    await pool.stopPipeline(id);
    await stopped;
    // The receiver's first second is the connect burst; the worker's meter starts at its first batch.
    return { worker: pool.channelCounters(id)?.stutterSeconds ?? -1, receiver: receiverStutter(rx, 1000) };
  };

  const rest = await run('rest', 0);
  t.diagnostic(`at rest: worker ${rest.worker.toFixed(3)} s, receiver ${rest.receiver.toFixed(3)} s`);
  assert.ok(rest.worker >= 0 && rest.worker < 0.05, `worker at rest: ${rest.worker}`);
  assert.ok(rest.receiver < 0.05, `receiver at rest: ${rest.receiver}`);

  const frozen = await run('frozen', 600);
  t.diagnostic(`frozen 600 ms: worker ${frozen.worker.toFixed(3)} s, receiver ${frozen.receiver.toFixed(3)} s`);
  // A 600 ms freeze stalls a two-frame player for about 600 - 80 - 40 ms (less the batch lead).
  assert.ok(frozen.worker > 0.35 && frozen.worker < 0.65, `worker: ${frozen.worker}`);
  assert.ok(Math.abs(frozen.worker - frozen.receiver) < 0.12, `worker ${frozen.worker} s vs receiver ${frozen.receiver} s`);
});
