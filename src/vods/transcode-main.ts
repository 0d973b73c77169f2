/**
 * Transcoder process entry, forked by transcode() (transcode.ts) at nice 19
 * with an IPC channel. It takes one 'transcode' command, runs one GStreamer
 * pipeline to its end, reports 'progress' every second and then 'done' or
 * 'failed', and exits.
 *
 * The launch line is joined from the fixed templates pipelines/transcode-*.gst
 * with integers only; the paths and the video caps go in as element
 * properties after parsing.
 *
 * Exiting needs the same care as the worker (src/worker/main.ts): the bus
 * poller holds a libuv thread until it has seen the pipeline at NULL, and
 * process.exit() would wait for it forever. Pipeline.stop() (src/gst/native.ts)
 * owns that release; if it reports the thread still blocked, the process
 * kills itself instead of exiting.
 */
import { basename } from 'node:path';
import { createLogger } from '../log.js';
import { describeBusError } from '../gst/bus-errors.js';
import { initNative, Pipeline, type BusMessage } from '../gst/native.js';
import { loadTemplate, render } from '../gst/templates.js';
import { parseToTranscoder, type FromTranscoder, type TranscodeSpec } from './transcode.js';

const log = createLogger({ part: 'transcoder', pid: process.pid });

const PROGRESS_INTERVAL_MS = 1000;
/**
 * A file pipeline has no clock to wait on: its position moves whenever it
 * gets CPU time, even at nice 19. Standing still this long means a branch
 * waits for a track the input does not have (mp4mux waits for every pad).
 */
const STALL_MS = 120_000;

type Fragment = 'transcode-source' | 'transcode-video' | 'transcode-audio' | 'transcode-mux';

function loadFragment(name: Fragment): string {
  return loadTemplate(name);
}

/** The launch line: fixed text and integers only. */
function launchLine(spec: TranscodeSpec): string {
  const parts = [render(loadFragment('transcode-source'))];
  if (spec.video !== null) {
    const { kbps, gopFrames, preset } = spec.video;
    parts.push(render(loadFragment('transcode-video'), { kbps, gopFrames, preset }));
  }
  if (spec.audio !== null) parts.push(render(loadFragment('transcode-audio'), { bps: spec.audio.bps }));
  parts.push(render(loadFragment('transcode-mux')));
  return parts.join(' ');
}

/** Caps for `vcaps`, built from integers. Square pixels when resizing, so videoscale letterboxes instead of stretching. */
function videoCaps(v: NonNullable<TranscodeSpec['video']>): string {
  // x264enc would take 10-bit input and then fail to make High (8-bit) profile.
  const caps = ['video/x-raw', 'format=I420'];
  if (v.width !== null && v.height !== null) caps.push(`width=${v.width}`, `height=${v.height}`, 'pixel-aspect-ratio=1/1');
  if (v.fpsNum !== null && v.fpsDen !== null && v.fpsDen > 0) caps.push(`framerate=${v.fpsNum}/${v.fpsDen}`);
  return caps.join(',');
}

/** Caps for `acaps`: at most stereo and the source rate, or exactly what a conform job asks. */
function audioCaps(a: NonNullable<TranscodeSpec['audio']>): string {
  const caps = ['audio/x-raw', a.channels === null ? 'channels=(int)[1,2]' : `channels=(int)${a.channels}`];
  if (a.rate !== null) caps.push(`rate=(int)${a.rate}`);
  return caps.join(',');
}

let pipeline: Pipeline | null = null;
let finishing = false;
let progressTimer: NodeJS.Timeout | null = null;
let spec: TranscodeSpec | null = null;

/** Server paths out of messages: the client knows its file by name. */
function scrub(text: string): string {
  if (spec === null) return text;
  let out = text;
  for (const p of [spec.scratch, spec.output, spec.input]) out = out.split(p).join(basename(p));
  return out;
}

function send(msg: FromTranscoder, then?: () => void): void {
  if (!process.connected || process.send === undefined) {
    then?.();
    return;
  }
  process.send(msg, (err: Error | null) => {
    if (err !== null) log.debug('send failed', { err: String(err) });
    then?.();
  });
}

/** Stops the pipeline, reports once, waits for the bus thread, exits. */
function finish(msg: Extract<FromTranscoder, { type: 'done' | 'failed' }>): void {
  if (finishing) return;
  finishing = true;
  if (progressTimer !== null) clearInterval(progressTimer);
  // Sets NULL: filesink flushes and closes the output before 'done' leaves.
  const released = pipeline?.stop() ?? Promise.resolve(true);
  send(msg, () => {
    void released.then((free) => {
      if (!free) {
        log.error('bus thread still blocked; killing self instead of a hanging exit');
        process.kill(process.pid, 'SIGKILL');
        return;
      }
      if (process.connected) process.disconnect();
      process.exit(msg.type === 'done' ? 0 : 1);
    });
  });
}

function onBus(m: BusMessage): void {
  if (finishing) return;
  if (m.type === 'error') finish({ type: 'failed', error: scrub(describeBusError(m)) });
  else if (m.type === 'eos') finish({ type: 'done' });
}

function start(s: TranscodeSpec): void {
  spec = s;
  try {
    initNative();
    const p = Pipeline.parse(launchLine(s));
    pipeline = p;
    const props: Array<[element: string, property: string, value: string]> = [
      ['src', 'location', s.input],
      ['sink', 'location', s.output],
      ['mux', 'faststart-file', s.scratch],
    ];
    if (s.video !== null) props.push(['vcaps', 'caps', videoCaps(s.video)]);
    if (s.audio !== null) props.push(['acaps', 'caps', audioCaps(s.audio)]);
    for (const [name, property, value] of props) {
      const el = p.element(name);
      el.set(property, value);
      if (property !== 'caps' && el.get(property) !== value) throw new Error(`${name}: GStreamer did not accept the ${property}`);
    }
    p.pollBus(onBus);
    p.play();
  } catch (err) {
    finish({ type: 'failed', error: scrub((err as Error).message) });
    return;
  }

  let last = -1;
  let stillMs = 0;
  progressTimer = setInterval(() => {
    if (finishing || pipeline === null) return;
    const position = pipeline.queryPosition();
    if (position !== null && position > last) {
      last = position;
      stillMs = 0;
      send({ type: 'progress', positionSeconds: position, durationSeconds: pipeline.queryDuration() });
      return;
    }
    stillMs += PROGRESS_INTERVAL_MS;
    if (stillMs >= STALL_MS) {
      finish({ type: 'failed', error: `no progress for ${STALL_MS / 1000} s (does the input have every track the job names?)` });
    }
  }, PROGRESS_INTERVAL_MS);
}

process.on('message', (raw: unknown) => {
  const cmd = parseToTranscoder(raw);
  if (cmd === null) {
    finish({ type: 'failed', error: 'malformed transcode command' });
    return;
  }
  if (spec !== null) return; // one job per process
  start(cmd.spec);
});

// The parent is gone: nobody will rename or delete the output. Stop now.
process.on('disconnect', () => {
  if (!finishing) process.kill(process.pid, 'SIGKILL');
});
process.on('uncaughtException', (err) => {
  // A normal exit could hang on the bus thread; the parent sees the signal.
  log.error('uncaught exception in transcoder', { err: err.stack ?? String(err) });
  process.kill(process.pid, 'SIGKILL');
});

if (process.send === undefined) {
  log.error('the transcoder must be forked with an IPC channel');
  process.exit(2);
}
