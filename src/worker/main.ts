/**
 * Worker process entry, forked by the supervisor (src/pool/worker-handle.ts)
 * with an IPC channel. One router for ToWorker; replies are FromWorker.
 *
 * Lifecycle: wait for 'init' → load GStreamer and the templates → reply
 * 'initCompleted' (or 'initFailed') → host pipelines and send a heartbeat
 * every interval → on 'shutdown', SIGTERM or a closed IPC channel (the
 * supervisor died, even by kill -9), stop every pipeline and exit.
 *
 * Exiting needs care: process.exit() joins the libuv threadpool, and a bus
 * poller blocked on an idle bus never returns, so exit would hang forever.
 * Every pipeline is stopped and its poller seen to return first; if one does
 * not, the process kills itself instead of exiting.
 */
import { createLogger } from '../log.js';
import { parseToWorker, type FromWorker, type WorkerInit } from '../pool/ipc.js';
import { PipelineHost } from './host.js';
import { busThreadMargin } from '../pool/options.js';
import { initNative } from '../gst/native.js';
import { loadTemplates } from '../gst/templates.js';

const log = createLogger({ part: 'worker', pid: process.pid });

let host: PipelineHost | null = null;
let heartbeat: NodeJS.Timeout | null = null;
let stopping: Promise<void> | null = null;

function send(msg: FromWorker): void {
  if (!process.connected || process.send === undefined) return;
  try {
    process.send(msg);
  } catch (err) {
    // The channel closed between the check and the write; 'disconnect' follows.
    log.debug('send failed', { err: String(err) });
  }
}

/** What libuv will really use: it reads UV_THREADPOOL_SIZE once, clamped to 1..1024, default 4. */
function threadpoolSize(): number {
  const n = Number.parseInt(process.env['UV_THREADPOOL_SIZE'] ?? '', 10);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : 4;
}

/**
 * The worker copies streams without decoding, so it cannot read the frame
 * rate; the stutter tolerance (two frames) assumes 25 fps, the rate of the
 * service's own test media and of most broadcast material. Reported in every
 * heartbeat so a reader knows what "stutter" was measured against.
 */
const frameDurationSeconds = 1 / 25;

function sendHeartbeat(): void {
  if (host === null) return;
  send({ type: 'heartbeat', rssBytes: process.memoryUsage.rss(), frameDurationSeconds, pipelines: host.stats() });
}

function init(cmd: WorkerInit): void {
  if (host !== null) {
    log.warn('second init ignored');
    return;
  }
  try {
    const { gstVersion } = initNative();
    const templates = loadTemplates();
    const threads = threadpoolSize();
    // GStreamer pipelines pin threads (threads.ts); fs and dns keep the margin.
    if (threads <= busThreadMargin) throw new Error(`UV_THREADPOOL_SIZE is ${threads}: no thread left for GStreamer pipelines beyond the ${busThreadMargin} kept for fs and dns`);
    host = new PipelineHost({ templates, maxPipelines: cmd.maxPipelines, threadBudget: threads - busThreadMargin, startTimeoutMs: cmd.startTimeoutMs, stallTimeoutMs: cmd.stallTimeoutMs, frameDurationSeconds, log: log.child({ worker: cmd.workerId }), send });
    heartbeat = setInterval(sendHeartbeat, cmd.heartbeatIntervalMs);
    send({ type: 'initCompleted', pid: process.pid, gstVersion, threadpoolSize: threads });
    log.info('worker ready', { worker: cmd.workerId, gstVersion, threads, maxPipelines: cmd.maxPipelines });
    sendHeartbeat();
  } catch (err) {
    log.error('worker init failed', { err: String(err) });
    send({ type: 'initFailed', error: (err as Error).message });
  }
}

function shutdown(reason: string): Promise<void> {
  stopping ??= (async () => {
    log.info('worker shutting down', { reason, pipelines: host?.size ?? 0 });
    if (heartbeat !== null) clearInterval(heartbeat);
    const stuck = host !== null ? await host.stopAll() : 0;
    if (stuck > 0) {
      log.error('bus threads still blocked; killing self instead of a hanging exit', { stuck });
      process.kill(process.pid, 'SIGKILL');
    }
    if (process.connected) process.disconnect();
    process.exit(0);
  })();
  return stopping;
}

process.on('message', (raw: unknown) => {
  const cmd = parseToWorker(raw);
  if (cmd === null) {
    log.warn('malformed command ignored');
    return;
  }
  switch (cmd.type) {
    case 'init':
      init(cmd);
      return;
    case 'start':
      if (stopping !== null) send({ type: 'pipeline', channelId: cmd.spec.channelId, state: 'error', error: 'worker is shutting down' });
      else if (host === null) send({ type: 'pipeline', channelId: cmd.spec.channelId, state: 'error', error: 'worker is not initialised' });
      else host.start(cmd.spec);
      return;
    case 'stop':
      if (host === null) send({ type: 'pipeline', channelId: cmd.channelId, state: 'stopped' });
      else void host.stop(cmd.channelId);
      return;
    case 'playlist':
      if (host !== null) void host.setPlaylist(cmd.channelId, cmd.items, cmd.loop, cmd.programme ?? null);
      return;
    case 'source':
      host?.setSource(cmd.channelId, cmd.source, cmd.mode);
      return;
    case 'playout':
      if (host !== null) host.playout(cmd.channelId, cmd.requestId, cmd.command);
      else send({ type: 'playout', channelId: cmd.channelId, event: { kind: 'refused', requestId: cmd.requestId, error: 'worker is not initialised' } });
      return;
    case 'fence':
      host?.setFence(cmd.untilMs);
      return;
    case 'shutdown':
      void shutdown('shutdown requested');
      return;
    default:
      cmd satisfies never;
  }
});

// The supervisor is gone (exit, crash or kill -9 all close the channel):
// nobody can place or stop our pipelines any more, so stop them ourselves.
process.on('disconnect', () => void shutdown('supervisor channel closed'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
// Ctrl-C reaches the whole process group. The supervisor decides what stops
// when; if it dies instead, 'disconnect' above still brings this one down.
process.on('SIGINT', () => undefined);
process.on('uncaughtException', (err) => {
  // State unknown, and a normal exit could hang on busy bus threads: die now.
  // The sockets close with the process; the supervisor replaces this worker.
  log.error('uncaught exception in worker', { err: err.stack ?? String(err) });
  process.kill(process.pid, 'SIGKILL');
});

if (process.send === undefined) {
  log.error('the worker must be forked with an IPC channel');
  process.exit(2);
}
