/**
 * An independent RTMP receiver for tests: `ffprobe -listen 1` accepts one
 * publisher on a free port and prints every packet as it arrives (or, made
 * with play(), ffprobe plays a stream from an origin the same way). The code
 * under test is judged by what ffprobe sees, with arrival times, so tests can
 * check codecs, resolution, DTS order across loops and real-time pace.
 *
 * ffprobe writes with stdio, which is block-buffered into a pipe; `stdbuf
 * -oL` makes it line-buffered so packets show up when they arrive.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { freePort } from './ports.js';

export interface ReceivedPacket {
  readonly kind: 'video' | 'audio' | 'data';
  /** Seconds; null when ffprobe printed N/A. */
  readonly dts: number | null;
  readonly key: boolean;
  /** Milliseconds since the first packet arrived. */
  readonly atMs: number;
  /** Date.now() at arrival: compares arrivals at two receivers. */
  readonly wallMs: number;
  /** Payload bytes; frames copied from one stream into another keep theirs. */
  readonly size: number | null;
  /** CRC32 of the payload (play() with `hashes`), so copied frames can be told apart by content; null otherwise. */
  readonly hash: string | null;
}

export interface ReceivedStream {
  readonly kind: string;
  readonly codec: string;
  readonly width: number | null;
  readonly height: number | null;
}

export interface ReceiverEnd {
  readonly code: number | null;
  /** Only known once the publisher ended the stream: ffprobe prints streams last. */
  readonly streams: ReceivedStream[];
  readonly stderr: string;
}

function fields(line: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of line.split('|').slice(1)) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}

function num(v: string | undefined): number | null {
  if (v === undefined || v === 'N/A') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/** True once 127.0.0.1:port is in LISTEN state (Linux /proc/net/tcp, state 0A). */
export async function listening(port: number): Promise<boolean> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const table = await readFile('/proc/net/tcp', 'utf8');
  return table.split('\n').some((l) => {
    const cols = l.trim().split(/\s+/);
    return cols[1]?.endsWith(`:${hexPort}`) === true && cols[3] === '0A';
  });
}

/**
 * Resolves once something listens on 127.0.0.1:port. Servers that announce
 * nothing leave no event to wait on, so this polls the socket table.
 */
export async function untilListening(port: number, timeoutMs: number, gaveUp: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await listening(port))) {
    if (gaveUp()) throw new Error('the server exited');
    if (Date.now() > deadline) throw new Error(`nothing listened within ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

/**
 * Each place where a DTS list fails to rise, as [before, after]. FLV wants
 * every track's DTS strictly rising: ffmpeg's reader and many players take a
 * repeated one as out of order, not only one that goes back.
 */
export function nonIncreasing(xs: readonly number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 1; i < xs.length; i++) {
    const a = xs[i - 1];
    const b = xs[i];
    if (a !== undefined && b !== undefined && b <= a) out.push([a, b]);
  }
  return out;
}

export class RtmpReceiver {
  readonly url: string;
  readonly packets: ReceivedPacket[] = [];
  readonly streams: ReceivedStream[] = [];
  readonly ended: Promise<ReceiverEnd>;
  readonly #child: ChildProcess;
  #firstAt: number | null = null;
  #stderr = '';
  #waiters = new Set<() => void>();

  /** listen: accept one publisher at `url`; else play `url` as a player would. hashes: a CRC32 of each packet's payload. */
  private constructor(url: string, listen: boolean, hashes = false) {
    this.url = url;
    this.#child = spawn(
      'stdbuf',
      [
        '-oL', 'ffprobe', '-v', 'error', ...(listen ? ['-listen', '1'] : []), '-i', this.url,
        ...(hashes ? ['-show_data_hash', 'CRC32'] : []),
        '-show_entries', `packet=codec_type,dts_time,flags,size${hashes ? ',data_hash' : ''}:stream=codec_type,codec_name,width,height`,
        '-of', 'compact',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let partial = '';
    this.#child.stdout?.setEncoding('utf8');
    this.#child.stdout?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.#line(line);
      this.#notify();
    });
    this.#child.stderr?.setEncoding('utf8');
    this.#child.stderr?.on('data', (c: string) => (this.#stderr = (this.#stderr + c).slice(-4000)));
    this.ended = new Promise((resolve) => {
      this.#child.once('close', (code) => {
        this.#notify();
        resolve({ code, streams: this.streams, stderr: this.#stderr });
      });
    });
  }

  /** Starts ffprobe on a free port and resolves once it listens. */
  static async start(listenTimeoutMs = 5000): Promise<RtmpReceiver> {
    const r = new RtmpReceiver(`rtmp://127.0.0.1:${await freePort()}/live/test`, true);
    const port = Number(new URL(r.url).port);
    // ffprobe says nothing when it starts listening, so look at the socket table.
    try {
      await untilListening(port, listenTimeoutMs, () => r.#child.exitCode !== null);
    } catch (err) {
      await r.close();
      throw new Error(`ffprobe did not listen on ${port}: ${(err as Error).message} ${r.#stderr}`);
    }
    return r;
  }

  /** Plays `url` (an origin's stream): a player beside the code under test, with arrival times (and payload hashes with `hashes`). */
  static play(url: string, opts: { hashes?: boolean } = {}): RtmpReceiver {
    return new RtmpReceiver(url, false, opts.hashes === true);
  }

  #line(line: string): void {
    if (line.startsWith('packet|')) {
      const f = fields(line);
      const now = Date.now();
      this.#firstAt ??= now;
      const type = f.get('codec_type');
      this.packets.push({
        kind: type === 'video' || type === 'audio' ? type : 'data',
        dts: num(f.get('dts_time')),
        key: (f.get('flags') ?? '').includes('K'),
        atMs: now - this.#firstAt,
        wallMs: now,
        size: num(f.get('size')),
        hash: f.get('data_hash') ?? null,
      });
    } else if (line.startsWith('stream|')) {
      const f = fields(line);
      this.streams.push({
        kind: f.get('codec_type') ?? '?',
        codec: f.get('codec_name') ?? '?',
        width: num(f.get('width')),
        height: num(f.get('height')),
      });
    }
  }

  #notify(): void {
    for (const w of this.#waiters) w();
  }

  /** DTS values of one kind, in arrival order. */
  dts(kind: 'video' | 'audio'): number[] {
    return this.packets.flatMap((p) => (p.kind === kind && p.dts !== null ? [p.dts] : []));
  }

  /**
   * Resolves when `pred` holds, checked on every batch of packets (no
   * polling); rejects when ffprobe exits first or after `timeoutMs`.
   */
  until(pred: (r: RtmpReceiver) => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (pred(this)) finish(null);
        else if (this.#child.exitCode !== null || this.#child.signalCode !== null) {
          finish(new Error(`receiver ended before ${what}: ${this.#stderr}`));
        }
      };
      const finish = (err: Error | null): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        if (err === null) resolve();
        else reject(err);
      };
      const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${this.packets.length} packets)`)), timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /** Kills ffprobe (if still running) and waits for it to go. */
  async close(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
    await this.ended;
  }
}
