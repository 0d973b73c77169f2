/**
 * Watches the origin's /stat (nginx-rtmp's rtmp_stat XML) while channels
 * start, and notes for each stream when the origin first reported
 *
 * - a publisher on it (`publishing`): the baseline's "started", the same
 *   condition vlive waits for before it says LIVING;
 * - media on it (stream `bytes_in` > 0): nginx-rtmp counts a stream's bytes
 *   only for audio/video messages, so this is the first packet at the origin.
 *
 * Times are on performance.now()'s clock, taken when the answer arrives:
 * late by at most one poll interval plus the answer's own time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RTMP_APP } from '../src/origin/config.js';
import { httpGet } from '../src/origin/http.js';
import { parseStat, type StreamStat } from '../src/origin/stat.js';

export class OriginWatch {
  readonly #statUrl: string;
  readonly #intervalMs: number;
  readonly #publishingAt = new Map<string, number>();
  readonly #mediaAt = new Map<string, number>();
  readonly #waiters = new Map<string, Set<(at: number) => void>>();
  #running = false;
  #loop: Promise<void> | null = null;
  #polls = 0;
  #failures = 0;

  constructor(hlsPort: number, intervalMs: number) {
    this.#statUrl = `http://127.0.0.1:${hlsPort}/stat`;
    this.#intervalMs = intervalMs;
  }

  /** One read of /stat, by stream name. */
  async read(): Promise<Map<string, StreamStat>> {
    const res = await httpGet(this.#statUrl, 5_000);
    if (res.status !== 200) throw new Error(`origin /stat answered HTTP ${res.status}`);
    return parseStat(res.body, RTMP_APP);
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      const started = performance.now();
      try {
        const streams = await this.read();
        // The answer reflects the origin somewhere between the request and now;
        // now is the late side, so latencies are never under-stated.
        this.#note(streams, performance.now());
        this.#polls++;
      } catch {
        this.#failures++;
      }
      const spent = performance.now() - started;
      await sleep(Math.max(0, this.#intervalMs - spent));
    }
  }

  #note(streams: Map<string, StreamStat>, at: number): void {
    for (const [name, s] of streams) {
      if (s.publishing && !this.#publishingAt.has(name)) {
        this.#publishingAt.set(name, at);
        for (const w of this.#waiters.get(name) ?? []) w(at);
        this.#waiters.delete(name);
      }
      if (s.bytesIn > 0 && !this.#mediaAt.has(name)) this.#mediaAt.set(name, at);
    }
  }

  /** When `stream` was first seen with media, or null. */
  mediaAt(stream: string): number | null {
    return this.#mediaAt.get(stream) ?? null;
  }

  get polls(): number {
    return this.#polls;
  }

  get failures(): number {
    return this.#failures;
  }

  /** Resolves with the time the origin first reported a publisher on `stream`; rejects after `timeoutMs`. */
  waitPublishing(stream: string, timeoutMs: number): Promise<number> {
    const seen = this.#publishingAt.get(stream);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const set = this.#waiters.get(stream) ?? new Set();
      this.#waiters.set(stream, set);
      const done = (at: number): void => {
        clearTimeout(timer);
        resolve(at);
      };
      const timer = setTimeout(() => {
        set.delete(done);
        reject(new Error(`stream ${stream} was not published at the origin within ${timeoutMs} ms`));
      }, timeoutMs);
      set.add(done);
    });
  }

  /** Resolves once every stream has shown media, or after `timeoutMs`, whichever comes first. */
  async waitMedia(streams: readonly string[], timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (streams.some((s) => !this.#mediaAt.has(s)) && performance.now() < deadline && this.#running) {
      await sleep(this.#intervalMs);
    }
  }
}
