/**
 * An independent RTMP receiver that keeps every tag: `ffmpeg -listen 1`
 * accepts one publisher on a free port and writes the FLV byte stream it
 * receives to a file as it is (`-f data -c copy`: ffmpeg's own RTMP code
 * turns the messages into FLV tags, script data included), and flvmeta (the
 * Debian package `flvmeta`) reads the file back, tag by tag.
 *
 * Why not rtmp-receiver.ts's ffprobe: its FLV demuxer folds script data into
 * the stream's metadata, so a data message at a given time (onCuePoint)
 * never shows as a packet. nginx-rtmp does not hand such messages to its
 * players either, so this one is a push target of the channel.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { run } from './media.js';
import { freePort } from './ports.js';
import { untilListening } from './rtmp-receiver.js';

/** One tag as flvmeta's JSON full dump gives it. */
export interface FlvmetaTag {
  readonly type: 'audio' | 'video' | 'scriptData';
  /** The tag's timestamp (DTS), ms. */
  readonly timestamp: number;
  readonly videoData?: { readonly frameType?: string; readonly AVCData?: { readonly packetType?: string } };
  /** Script data: its name (onMetaData, onCuePoint) and its object, as flvmeta names them. */
  readonly scriptDataObject?: { readonly name?: string; readonly metadata?: Record<string, unknown> };
}

export class FlvReceiver {
  readonly url: string;
  readonly file: string;
  readonly #child: ChildProcess;
  readonly #closed: Promise<number | null>;
  #stderr = '';

  private constructor(port: number, file: string) {
    this.url = `rtmp://127.0.0.1:${port}/live/cues`;
    this.file = file;
    this.#child = spawn('ffmpeg', ['-v', 'error', '-listen', '1', '-f', 'data', '-i', this.url, '-map', '0', '-c', 'copy', '-f', 'data', '-y', file], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.#child.stderr?.setEncoding('utf8');
    this.#child.stderr?.on('data', (c: string) => (this.#stderr = (this.#stderr + c).slice(-4000)));
    this.#closed = new Promise((resolve) => this.#child.once('close', (code) => resolve(code)));
  }

  /** Starts ffmpeg on a free port, writing into `dir`; resolves once it listens. */
  static async start(dir: string, listenTimeoutMs = 5000): Promise<FlvReceiver> {
    const port = await freePort();
    const r = new FlvReceiver(port, join(dir, `received-${port}.flv`));
    try {
      await untilListening(port, listenTimeoutMs, () => r.#child.exitCode !== null);
    } catch (err) {
      await r.stop();
      throw new Error(`ffmpeg did not listen on ${port}: ${(err as Error).message} ${r.#stderr}`);
    }
    return r;
  }

  /** Ends the reception (SIGINT, so ffmpeg closes the file properly) unless the publisher already ended it. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGINT');
    await this.#closed;
  }

  /** Every tag of the file, in order (after stop()). */
  async tags(): Promise<FlvmetaTag[]> {
    const { stdout } = await run('flvmeta', ['-F', '-j', this.file], 20_000);
    return (JSON.parse(stdout) as { tags: FlvmetaTag[] }).tags;
  }

  get stderr(): string {
    return this.#stderr;
  }
}
