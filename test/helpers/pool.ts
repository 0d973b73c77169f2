/** A started WorkerPool of real workers, and waiting on its events with a deadline instead of sleeps. */
import type { SourceEvent } from '../../src/pool/pipeline-spec.js';
import { WorkerPool, type PipelineEvent, type WorkerPoolOptions } from '../../src/pool/pool.js';

/**
 * Starts a pool of real worker processes (dist/src/worker/main.js, with
 * GStreamer): one worker of 4 slots, a 10 s handshake, heartbeats every
 * 500 ms and a 2 s stop grace unless `opts` says otherwise. The caller
 * disposes it; a pool that fails to start is disposed here.
 */
export async function startWorkerPool(opts: Partial<WorkerPoolOptions> & Pick<WorkerPoolOptions, 'log'>): Promise<WorkerPool> {
  const pool = new WorkerPool({ size: 1, maxPipelinesPerWorker: 4, handshakeTimeoutMs: 10_000, heartbeatIntervalMs: 500, stopGraceMs: 2000, ...opts });
  try {
    await pool.start();
  } catch (err) {
    await pool.dispose();
    throw err;
  }
  return pool;
}

/** Resolves with the first event of `channelId` in one of `states`; rejects after timeoutMs. */
export function waitPipeline(pool: WorkerPool, channelId: string, states: PipelineEvent['state'][], timeoutMs: number): Promise<PipelineEvent> {
  return new Promise((resolve, reject) => {
    const on = (ev: PipelineEvent): void => {
      if (ev.channelId !== channelId || !states.includes(ev.state)) return;
      done();
      resolve(ev);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`channel ${channelId}: no ${states.join('/')} within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      pool.off('pipeline', on);
    };
    pool.on('pipeline', on);
  });
}

/** The next source event of this kind from a relay's output (see SourceEvent). */
export function waitSource(pool: WorkerPool, channelId: string, kind: SourceEvent['kind'], timeoutMs: number): Promise<SourceEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pool.off('source', on);
      reject(new Error(`channel ${channelId}: no ${kind} source event within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (ev: { channelId: string; event: SourceEvent }): void => {
      if (ev.channelId !== channelId || ev.event.kind !== kind) return;
      clearTimeout(timer);
      pool.off('source', on);
      resolve(ev.event);
    };
    pool.on('source', on);
  });
}
