/**
 * `npm run bench:loops`: are loops seamless in copy mode? The receiver check
 * of test/loops.test.ts, run on vlive and on `ffmpeg -re -stream_loop -1
 * -c copy` with the same five awkward files, so the difference is measured.
 *
 * Both sides run at once, on one origin (the product's ManagedOrigin):
 * vlive as a WorkerPool of one worker hosting the five looping channels, and
 * ffmpeg as five publishers. One ffprobe per stream listens for
 * (N + 2) loops of its file and bench/loop-check.ts judges what it got
 * against the file's own packets. What a side does wrong (DTS going back,
 * gaps, drift, a publisher that dies) is a result, not a failure: the exit
 * code is non-zero only when the run itself broke.
 *
 * Everything started here is stopped on the way out, Ctrl-C included.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../src/log.js';
import { ManagedOrigin } from '../src/origin/nginx.js';
import { repoPath, repoRoot } from '../src/paths.js';
import { WorkerPool, type PipelineEvent } from '../src/pool/pool.js';
import { Disposers, spawnChild, type Child } from './children.js';
import { judgeLoops, probeTracks, type LoopVerdict, type ProbedTracks } from './loop-check.js';
import { machineInfo, measuredTree, type MachineInfo, type MeasuredTree } from './machine.js';
import { run } from './media.js';
import { freePorts } from './net.js';

/** The shapes of test/loops.test.ts: 320x240 25 fps, H.264 with B-frames (libx264's default) + AAC, MP4 with edit lists. */
interface FileShape {
  /** Video length, seconds (also the audio-only file's length). */
  readonly videoSeconds: number;
  readonly audioSeconds: number;
  readonly video: boolean;
  readonly audio: boolean;
}

const fileSeconds = 0.6;
const files: Readonly<Record<string, FileShape>> = {
  'b-frames': { videoSeconds: fileSeconds, audioSeconds: fileSeconds, video: true, audio: true },
  'audio-longer': { videoSeconds: fileSeconds, audioSeconds: fileSeconds + 0.25, video: true, audio: true },
  'video-longer': { videoSeconds: fileSeconds + 0.25, audioSeconds: fileSeconds, video: true, audio: true },
  'audio-only': { videoSeconds: fileSeconds, audioSeconds: fileSeconds, video: false, audio: true },
  'video-only': { videoSeconds: fileSeconds, audioSeconds: fileSeconds, video: true, audio: false },
};

/** The longest track: what a sender that pads the shorter one repeats, so listening this long per loop sees N loops on either side. */
function periodSeconds(s: FileShape): number {
  return Math.max(s.video ? s.videoSeconds : 0, s.audio ? s.audioSeconds : 0);
}

const START_TIMEOUT_MS = 20_000;
const FFMPEG_STOP_GRACE_MS = 3_000;

type Side = 'vlive' | 'ffmpeg';

interface Row {
  readonly file: string;
  readonly side: Side;
  readonly stream: string;
  readonly listenSeconds: number;
  verdict: LoopVerdict | null;
  /** What happened besides the verdict: a publisher exiting, a pipeline error, a receiver failure. */
  readonly events: string[];
  /** ffmpeg side: the last of its stderr (-loglevel error). */
  stderr?: string;
}

const disposers = new Disposers();
const began = performance.now();
const elapsedSeconds = (): number => (performance.now() - began) / 1000;

function progress(msg: string): void {
  process.stdout.write(`[${elapsedSeconds().toFixed(0).padStart(3)} s] ${msg}\n`);
}

let interrupted = false;
/** Set once the run stops its channels: exits and 'stopped' events from then on are ours, not results. */
let tearingDown = false;
function onSignal(signal: NodeJS.Signals): void {
  if (interrupted) process.exit(130); // a second Ctrl-C: the kernel's parent-death signal takes the children down
  interrupted = true;
  progress(`${signal}: stopping everything this run started…`);
  void disposers
    .drain((name, err) => process.stderr.write(`bench:loops: cleanup of ${name} failed: ${String(err)}\n`))
    .finally(() => process.exit(130));
}

function loopsWanted(): number {
  const raw = process.env['LOOPS_N'];
  if (raw === undefined || raw === '') return 100;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`LOOPS_N must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** The origin's and the pool's state logs would bury the progress lines; only their errors are shown. */
function quietLogger(): Logger {
  const none = (): void => undefined;
  const log: Logger = {
    debug: none,
    info: none,
    warn: none,
    error: (msg, fields) => process.stderr.write(`bench:loops: ${msg} ${JSON.stringify(fields ?? {})}\n`),
    child: () => log,
  };
  return log;
}

/** The same ffmpeg arguments as test/helpers/media.ts makeMp4, for these shapes. */
async function makeFile(dir: string, name: string, s: FileShape): Promise<string> {
  const out = join(dir, `${name}.mp4`);
  const args = ['-hide_banner', '-loglevel', 'error', '-y'];
  if (s.video) args.push('-f', 'lavfi', '-t', String(s.videoSeconds), '-i', 'testsrc2=size=320x240:rate=25');
  if (s.audio) args.push('-f', 'lavfi', '-t', String(s.audioSeconds), '-i', 'sine=frequency=440:sample_rate=48000');
  if (s.video) args.push('-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-g', '25', '-keyint_min', '25', '-sc_threshold', '0');
  if (s.audio) args.push('-c:a', 'aac', '-ac', '2', '-b:a', '96k');
  args.push('-movflags', '+faststart', out);
  await run('ffmpeg', args, 120_000);
  return out;
}

/** Resolves on the channel's 'playing'; rejects on 'error', 'eos' or 'stopped' first, or after timeoutMs. */
function waitPlaying(pool: WorkerPool, channelId: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const on = (ev: PipelineEvent): void => {
      if (ev.channelId !== channelId || ev.state === 'starting') return;
      done();
      if (ev.state === 'playing') resolve();
      else reject(new Error(`pipeline ${ev.state}${ev.error === undefined ? '' : `: ${ev.error}`}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no 'playing' within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      pool.off('pipeline', on);
    };
    pool.on('pipeline', on);
  });
}

const message = (err: unknown): string => (err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err));

async function main(): Promise<void> {
  const n = loopsWanted();
  const names = Object.keys(files);
  const startedAt = new Date();
  const machine: MachineInfo = await machineInfo();
  const vlive = await measuredTree(repoRoot);
  const resultsDir = repoPath('bench', 'results');
  progress(`loop seamlessness: ${names.length} files × vlive and ffmpeg at once, ${n} loops each; results in ${resultsDir}`);

  const dir = await mkdtemp(join(tmpdir(), 'vlive-bench-loops-'));
  disposers.add('scratch dir', () => rm(dir, { recursive: true, force: true }));

  progress('making the files and probing them');
  const paths = await Promise.all(names.map((name) => makeFile(dir, name, files[name] as FileShape)));
  const fileTracks: ProbedTracks[] = await Promise.all(paths.map((p) => probeTracks(p)));

  const [rtmpPort, hlsPort] = (await freePorts(2)) as [number, number];
  await mkdir(join(dir, 'origin'), { recursive: true });
  const origin = new ManagedOrigin({ dataDir: join(dir, 'origin'), rtmpPort, hlsPort, logger: quietLogger() });
  disposers.add('origin', () => origin.stop());
  await origin.start();

  const pool = new WorkerPool({
    size: 1,
    maxPipelinesPerWorker: 8,
    handshakeTimeoutMs: 10_000,
    heartbeatIntervalMs: 1000,
    stopGraceMs: 3000,
    log: quietLogger(),
    env: { VLIVE_LOG_LEVEL: 'error' },
  });
  disposers.add('worker pool', () => pool.dispose());
  await pool.start();
  progress(`origin on 127.0.0.1:${rtmpPort}, one vlive worker ready`);

  const rows: Row[] = names.flatMap((file) => {
    const listenSeconds = Math.ceil(periodSeconds(files[file] as FileShape) * (n + 2));
    return (['vlive', 'ffmpeg'] as const).map((side) => ({ file, side, stream: `${side === 'vlive' ? 'vl' : 'ff'}-${file}`, listenSeconds, verdict: null, events: [] }));
  });
  const rowOf = (side: Side, file: string): Row => rows.find((r) => r.side === side && r.file === file) as Row;

  // Anything a vlive pipeline does after 'playing' is part of the result.
  const playing = new Set<string>();
  pool.on('pipeline', (ev) => {
    if (tearingDown || interrupted || !playing.has(ev.channelId) || ev.state === 'playing') return;
    const what = `pipeline ${ev.state} at ${elapsedSeconds().toFixed(1)} s${ev.error === undefined ? '' : `: ${ev.error}`}`;
    rowOf('vlive', ev.channelId).events.push(what);
    progress(`vlive ${ev.channelId}: ${what}`);
  });

  const publishers: Child[] = [];
  disposers.add('ffmpeg publishers', async () => {
    tearingDown = true;
    await Promise.all(publishers.map((c) => c.stop(FFMPEG_STOP_GRACE_MS)));
  });

  const startVlive = async (file: string, path: string): Promise<boolean> => {
    const row = rowOf('vlive', file);
    try {
      const ready = waitPlaying(pool, file, START_TIMEOUT_MS);
      await pool.startPipeline({ channelId: file, source: { kind: 'vod', items: [{ id: file, path }], loop: true }, targets: [origin.publishUrl(row.stream)] });
      await ready;
      playing.add(file);
      return true;
    } catch (err) {
      row.events.push(`did not start: ${message(err)}`);
      return false;
    }
  };

  const startFfmpeg = async (file: string, path: string): Promise<boolean> => {
    const row = rowOf('ffmpeg', file);
    const period = periodSeconds(files[file] as FileShape);
    const args = ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', path, '-c', 'copy', '-f', 'flv', origin.publishUrl(row.stream)];
    const child = spawnChild('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    publishers.push(child);
    let tail = '';
    child.process.stderr?.setEncoding('utf8');
    child.process.stderr?.on('data', (chunk: string) => {
      tail = (tail + chunk).slice(-4000);
      row.stderr = tail;
    });
    const spawnedAt = performance.now();
    void child.exited.then((exit) => {
      if (tearingDown || interrupted) return;
      const s = (performance.now() - spawnedAt) / 1000;
      const what = `ffmpeg exited (code ${exit.code}, signal ${exit.signal}) after ${s.toFixed(1)} s, in loop ≈${Math.floor(s / period) + 1}`;
      row.events.push(what);
      progress(`ffmpeg ${file}: ${what}`);
    });
    try {
      await Promise.race([
        origin.waitForPublish(row.stream, START_TIMEOUT_MS),
        child.exited.then(() => Promise.reject(new Error('ffmpeg exited before publishing'))),
      ]);
      return true;
    } catch (err) {
      row.events.push(`did not start: ${message(err)}`);
      return false;
    }
  };

  progress('starting 5 vlive channels and 5 ffmpeg publishers');
  const started = await Promise.all(
    names.flatMap((file, i) => {
      const path = paths[i] as string;
      return [startVlive(file, path).then((ok) => ({ side: 'vlive' as const, file, ok })), startFfmpeg(file, path).then((ok) => ({ side: 'ffmpeg' as const, file, ok }))];
    }),
  );
  for (const s of started) if (!s.ok) progress(`${s.side} ${s.file}: ${rowOf(s.side, s.file).events.at(-1) ?? 'did not start'}`);
  if (interrupted) return;

  const longest = Math.max(...rows.map((r) => r.listenSeconds));
  progress(`all up; receivers listening for ${Math.min(...rows.map((r) => r.listenSeconds))}–${longest} s`);
  const ticker = setInterval(() => progress(`  listening… (${longest} s in all)`), 15_000);
  try {
    await Promise.all(
      started.map(async ({ side, file, ok }) => {
        if (!ok) return;
        const row = rowOf(side, file);
        try {
          const received = await probeTracks(origin.publishUrl(row.stream), row.listenSeconds);
          if (interrupted) return;
          const i = names.indexOf(file);
          row.verdict = judgeLoops(received, fileTracks[i] ?? { video: [], audio: [] });
          progress(`${side} ${file}: ${row.verdict.loops} loops, max drift ${row.verdict.maxDriftMs.toFixed(1)} ms`);
        } catch (err) {
          if (interrupted) return;
          row.events.push(`receiver failed: ${message(err)}`);
          progress(`${side} ${file}: receiver failed: ${message(err)}`);
        }
      }),
    );
  } finally {
    clearInterval(ticker);
  }
  if (interrupted) return;

  progress('stopping');
  tearingDown = true;
  await disposers.drain((name, err) => process.stderr.write(`bench:loops: cleanup of ${name} failed: ${String(err)}\n`));

  const report = { startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), wallSeconds: Math.round(elapsedSeconds()), loopsWanted: n, mode: 'both sides at once, one origin', machine, vlive, files, rows };
  await mkdir(resultsDir, { recursive: true });
  await writeFile(join(resultsDir, 'loops-latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join(resultsDir, 'loops-latest.md'), renderMarkdown(report));
  progress(`done in ${report.wallSeconds} s: ${join(resultsDir, 'loops-latest.md')}`);
}

const ms = (x: number): string => (Math.round(x * 10) / 10).toFixed(1);

function renderMarkdown(r: { startedAt: string; wallSeconds: number; loopsWanted: number; machine: MachineInfo; vlive: MeasuredTree; rows: readonly Row[] }): string {
  const m = r.machine;
  const lines = [
    '# Loop seamlessness: vlive against `ffmpeg -re -stream_loop -1 -c copy`',
    '',
    `Run ${r.startedAt} (${r.wallSeconds} s); vlive ${r.vlive.commit ?? 'unknown'}${r.vlive.dirty === true ? ' (dirty: uncommitted changes to tracked files)' : ''}. ${m.cores} cores (${m.cpuModel}), Node ${m.node}, GStreamer ${m.gstreamer ?? '?'}, ffmpeg ${m.ffmpeg ?? '?'}, nginx ${m.nginx ?? '?'}.`,
    '',
    `Five 320x240 25 fps MP4 files made at run time (0.6 s; H.264 with B-frames + AAC, with edit lists), each looped ${r.loopsWanted} times by both sides at once, ` +
      'copied, to one nginx-rtmp origin (`src/origin/`): vlive as one worker of `WorkerPool` hosting the five channels, ffmpeg as five ' +
      '`ffmpeg -re -stream_loop -1 -i FILE -c copy -f flv rtmp://…` processes. `npm run bench:loops` (`LOOPS_N` loops, default 100).',
    '',
    '| file | side | loops seen | video DTS regressions | audio DTS regressions | largest video gap ms (frames) | largest audio gap ms | max A/V drift ms | drift at last loop ms | what happened |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const row of r.rows) {
    const v = row.verdict;
    const video = v?.video ?? null;
    const audio = v?.audio ?? null;
    const both = v !== null && video !== null && audio !== null;
    const notes = [...row.events];
    if (row.stderr !== undefined && row.stderr.trim() !== '') notes.push(`stderr: ${row.stderr.trim().split('\n')[0]?.slice(0, 120) ?? ''}`);
    if (v !== null && v.loops < r.loopsWanted) notes.push(`${v.loops} of ${r.loopsWanted} loops in ${row.listenSeconds} s`);
    const cells = [
      row.file,
      row.side,
      v === null ? '–' : String(v.loops),
      video === null ? '–' : String(video.regressions),
      audio === null ? '–' : String(audio.regressions),
      video === null ? '–' : `${ms(video.largestGapMs)} (${(video.frameMs > 0 ? video.largestGapMs / video.frameMs : 0).toFixed(1)})`,
      audio === null ? '–' : ms(audio.largestGapMs),
      both ? ms(v.maxDriftMs) : '–',
      both ? ms(v.lastDriftMs) : '–',
      notes.length === 0 ? '' : notes.join('; ').replace(/\|/g, '\\|'),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push(
    '',
    'Every figure is taken at the receiver: one ffprobe per stream reads the RTMP output from the origin for (N + 2) periods of its file ' +
      '(the longest track: 0.85 s for the uneven files, 0.6 s otherwise) and lists each packet\'s DTS and a CRC32 of its data, and `bench/loop-check.ts` ' +
      'compares that with ffprobe\'s packets of the file itself. ' +
      'A loop start is found by content: where the file\'s first packets (from DTS 0 on) reappear byte for byte, which copy mode guarantees, so the sender\'s timestamps are not trusted to say where loops begin; "loops seen" counts loops whose start was found on every track. ' +
      'DTS regressions count packets whose DTS is not above the previous one of the same track; a largest gap is the largest DTS step minus the track\'s usual step (the median: 40 ms of video, 21 ms of AAC after FLV\'s millisecond rounding, which alone makes 1 ms gaps), i.e. the stillness or silence a loop boundary adds, also given in video frames. ' +
      'A/V drift at loop k is (audio start − video start) minus the same difference in the file: 0 while the tracks stay in step; the table gives its largest magnitude over all loops seen and its signed value at the last one.',
    '',
  );
  return lines.join('\n');
}

process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
main()
  .catch((err: unknown) => {
    process.stderr.write(`bench:loops: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    if (interrupted) return;
    await disposers.drain((name, err) => process.stderr.write(`bench:loops: cleanup of ${name} failed: ${String(err)}\n`));
    process.exit(process.exitCode ?? 0);
  });
