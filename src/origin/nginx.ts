/**
 * The managed origin: one nginx-rtmp process, a child of the service, bound
 * to 127.0.0.1 only. Channels publish to it over RTMP; players read RTMP or
 * HLS from it.
 *
 * It must never outlive the service, even when the service is SIGKILLed:
 * nginx is started through `setpriv --pdeathsig SIGKILL`, so the kernel
 * kills it when its parent goes. PR_SET_PDEATHSIG follows the *thread* that
 * forked, so start() must run on the main thread, not in a worker_thread.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VliveError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { originPaths, renderNginxConf, rtmpApp, type OriginPaths } from './config.js';
import { canConnect, httpGet } from './http.js';
import { assertStreamName, type Origin, type PlayUrls, type WaitOptions } from './origin.js';
import { nodelayLibrary, withNodelay } from './nodelay.js';
import { killOrphanNginx } from './orphan.js';
import { parseStatByApp, type StreamStat } from './stat.js';

const HOST = '127.0.0.1';


/** How old a shared /stat read may be before a new one is made. */
const statMaxAgeMs = 40;
export interface ManagedOriginOptions {
  /** The service's data directory; the origin lives in `<dataDir>/origin/`. */
  readonly dataDir: string;
  /** RTMP listen port on 127.0.0.1 (config key VLIVE_RTMP_PORT). */
  readonly rtmpPort: number;
  /** HTTP port for HLS and /stat on 127.0.0.1 (config key VLIVE_HLS_PORT). */
  readonly hlsPort: number;
  /** nginx binary. Default `nginx` from PATH. */
  readonly nginxBin?: string;
  /** Default 1 s. */
  readonly hlsFragmentSeconds?: number;
  /** Default 6 s. */
  readonly hlsPlaylistSeconds?: number;
  /** Write HLS for every stream (config key VLIVE_ORIGIN_HLS). Default true; false leaves RTMP only, and playUrls gives no HLS URL. */
  readonly hls?: boolean;
  /** How long start() waits for both ports. Default 10000 ms (nginx alone retries a busy port for 2.5 s). */
  readonly startTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL. Default 5000 ms. */
  readonly stopGraceMs?: number;
  readonly logger?: Logger;
  /**
   * Where nginx-rtmp posts on_play and on_play_done (a loopback URL with a
   * secret path, src/ondemand/notify.ts). Default: no notifications.
   */
  readonly notifyUrl?: string;
  /**
   * nginx is one process: when it dies while running (not through stop()),
   * start it again after this many ms. The channels' outputs see their
   * publish fail and reconnect by themselves. Default: no restart.
   */
  readonly restartDelayMs?: number;
  /**
   * Load the TCP_NODELAY preload into nginx (src/origin/nodelay.c), so that
   * frames reach players when written rather than after their ACKs. Default
   * true; without the built library nginx runs as shipped, with a warning.
   */
  readonly nodelay?: boolean;
}

export interface NginxExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Last lines nginx wrote to stderr. */
  readonly stderr: string;
}

/** idle → starting → running → stopping → stopped; starting/running → failed. */
export type OriginState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

const STATE_MOVES: Record<OriginState, readonly OriginState[]> = {
  idle: ['starting'],
  starting: ['running', 'failed', 'stopping'],
  running: ['stopping', 'failed'],
  stopping: ['stopped'],
  stopped: ['starting'],
  failed: ['starting', 'stopping'],
};

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`origin option ${name} must be a positive integer`);
  return value;
}

function checkPort(name: string, key: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw new Error(`${key} (${name}) must be a port 1-65535, got ${value}`);
  return value;
}

export class ManagedOrigin implements Origin {
  readonly paths: OriginPaths;
  readonly rtmpPort: number;
  readonly hlsPort: number;
  readonly #nginxBin: string;
  readonly #fragmentSeconds: number;
  readonly #playlistSeconds: number;
  readonly #hls: boolean;
  readonly #startTimeoutMs: number;
  readonly #stopGraceMs: number;
  readonly #log: Logger;
  readonly #restartDelayMs: number | null;
  #restartTimer: NodeJS.Timeout | null = null;
  readonly #notifyUrl: string | undefined;
  readonly #nodelay: boolean;

  #state: OriginState = 'idle';
  #child: ChildProcess | null = null;
  #exited: Promise<NginxExit> | null = null;
  #stderrTail = '';
  #stopping: Promise<void> | null = null;

  constructor(options: ManagedOriginOptions) {
    this.rtmpPort = checkPort('rtmpPort', 'VLIVE_RTMP_PORT', options.rtmpPort);
    this.hlsPort = checkPort('hlsPort', 'VLIVE_HLS_PORT', options.hlsPort);
    if (this.rtmpPort === this.hlsPort) throw new Error('VLIVE_RTMP_PORT and VLIVE_HLS_PORT must differ');
    this.paths = originPaths(resolvePath(options.dataDir));
    this.#nginxBin = options.nginxBin ?? 'nginx';
    this.#fragmentSeconds = positiveInt('hlsFragmentSeconds', options.hlsFragmentSeconds ?? 1);
    this.#playlistSeconds = positiveInt('hlsPlaylistSeconds', options.hlsPlaylistSeconds ?? 6);
    this.#hls = options.hls ?? true;
    this.#startTimeoutMs = positiveInt('startTimeoutMs', options.startTimeoutMs ?? 10_000);
    this.#stopGraceMs = positiveInt('stopGraceMs', options.stopGraceMs ?? 5_000);
    this.#log = options.logger ?? createLogger({ component: 'origin' });
    this.#restartDelayMs = options.restartDelayMs === undefined ? null : positiveInt('restartDelayMs', options.restartDelayMs);
    this.#notifyUrl = options.notifyUrl;
    this.#nodelay = options.nodelay ?? true;
  }

  get state(): OriginState {
    return this.#state;
  }

  /** The nginx pid while one runs. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  #moveTo(next: OriginState, fields: Record<string, unknown> = {}): void {
    const prev = this.#state;
    if (!STATE_MOVES[prev].includes(next)) throw new Error(`origin cannot go from ${prev} to ${next}`);
    this.#state = next;
    this.#log.info('origin state', { from: prev, to: next, ...fields });
  }

  async start(): Promise<void> {
    this.#moveTo('starting', { rtmpPort: this.rtmpPort, hlsPort: this.hlsPort, dir: this.paths.dir });
    try {
      await this.#prepareDir();
      const token = randomBytes(12).toString('hex');
      await writeFile(
        this.paths.conf,
        renderNginxConf({
          paths: this.paths,
          rtmpPort: this.rtmpPort,
          hlsPort: this.hlsPort,
          hlsFragmentSeconds: this.#fragmentSeconds,
          hlsPlaylistSeconds: this.#playlistSeconds,
          hls: this.#hls,
          instanceToken: token,
          ...(this.#notifyUrl !== undefined ? { notifyUrl: this.#notifyUrl } : {}),
        }),
      );
      if (this.#state !== 'starting') throw new Error('origin was stopped while starting');
      const exited = this.#spawn();
      const ready = this.#waitReady(token);
      const outcome = await Promise.race([ready.then(() => null), exited]);
      // stop() may have been called meanwhile; it owns the state from there.
      if (this.#state !== 'starting') throw new Error('origin was stopped while starting');
      if (outcome !== null) throw new Error(this.#explainStartFailure(outcome));
    } catch (err) {
      await this.#killNow();
      if (this.#state === 'starting') this.#moveTo('failed');
      throw err;
    }
    this.#moveTo('running', { pid: this.pid });
  }

  async #prepareDir(): Promise<void> {
    const p = this.paths;
    await mkdir(p.dir, { recursive: true });
    await killOrphanNginx(p.pid, p.conf, this.#log);
    // Playlists left from the last run would make dead streams look alive to HLS players.
    await rm(p.hls, { recursive: true, force: true });
    await Promise.all([p.logs, p.temp, p.hls].map((d) => mkdir(d, { recursive: true })));
  }

  #stat: { at: number; result: Promise<ReturnType<typeof parseStatByApp>> } | null = null;

  /** nginx's environment: the service's, with the TCP_NODELAY preload when asked for and built. */
  #env(): NodeJS.ProcessEnv {
    if (!this.#nodelay) return process.env;
    const env = withNodelay(process.env);
    if (env === null) this.#log.warn('origin runs without TCP_NODELAY: its preload is not built (scripts/build-nodelay.sh); players may get frames up to 40 ms late', { library: nodelayLibrary });
    return env ?? process.env;
  }

  #spawn(): Promise<NginxExit> {
    const p = this.paths;
    this.#stderrTail = '';
    const child = spawn(
      'setpriv',
      ['--pdeathsig', 'SIGKILL', '--', this.#nginxBin, '-c', p.conf, '-p', `${p.dir}/`, '-e', p.errorLog],
      // Its own process group: a Ctrl-C or a signal sent to the service's group must
      // not reach nginx behind the service's back; the service stops it in order.
      { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: this.#env() },
    );
    this.#child = child;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.#stderrTail = (this.#stderrTail + chunk).slice(-8192);
    });
    const exited = new Promise<NginxExit>((resolve) => {
      // 'error' (spawn failure, e.g. no setpriv) comes without 'exit'.
      child.once('error', (err) => resolve({ code: null, signal: null, stderr: `${this.#stderrTail}${err.message}` }));
      child.once('exit', (code, signal) => resolve({ code, signal, stderr: this.#stderrTail }));
    });
    this.#exited = exited;
    void exited.then((exit) => this.#onExit(exit));
    return exited;
  }

  #onExit(exit: NginxExit): void {
    this.#child = null;
    if (this.#state !== 'running') return;
    this.#log.error('origin nginx exited unexpectedly', { code: exit.code, signal: exit.signal, stderr: exit.stderr.slice(-1000) });
    this.#moveTo('failed');
    const delayMs = this.#restartDelayMs;
    if (delayMs === null) return;
    this.#log.info('restarting origin nginx', { delayMs });
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      this.start().catch((err: unknown) => this.#log.error('origin restart failed', { err: String(err) }));
    }, delayMs);
  }

  /**
   * Ready means: /vlive-instance returns our token (so the HTTP port is ours,
   * and nginx opens every listening socket before serving any) and the RTMP
   * port accepts a connection.
   */
  async #waitReady(token: string): Promise<void> {
    const deadline = Date.now() + this.#startTimeoutMs;
    while (Date.now() < deadline && this.#child !== null) {
      const res = await httpGet(`http://${HOST}:${this.hlsPort}/vlive-instance`, 1_000).catch(() => null);
      if (res?.body === token && (await canConnect(HOST, this.rtmpPort, 1_000))) return;
      await sleep(50);
    }
    if (this.#child === null) return new Promise(() => {}); // the exit branch of the race reports it
    throw new Error(
      `origin nginx did not answer on 127.0.0.1:${this.hlsPort} (VLIVE_HLS_PORT) and 127.0.0.1:${this.rtmpPort} (VLIVE_RTMP_PORT) within ${this.#startTimeoutMs} ms; see ${this.paths.errorLog}`,
    );
  }

  #explainStartFailure(exit: NginxExit): string {
    const text = exit.stderr;
    const busy = new Set([...text.matchAll(/bind\(\) to [^:]+:(\d+) failed \(98/g)].map((m) => Number(m[1])));
    const parts: string[] = [];
    if (busy.has(this.rtmpPort)) parts.push(`RTMP port 127.0.0.1:${this.rtmpPort} (VLIVE_RTMP_PORT) is already in use`);
    if (busy.has(this.hlsPort)) parts.push(`HLS port 127.0.0.1:${this.hlsPort} (VLIVE_HLS_PORT) is already in use`);
    if (parts.length > 0) return `origin nginx could not start: ${parts.join('; ')}`;
    if (/setpriv|ENOENT/.test(text) && exit.code === null) return `origin nginx could not be spawned: ${text.trim()}`;
    const emerg = text
      .split('\n')
      .filter((l) => /\[(emerg|alert|crit)\]/.test(l))
      .pop();
    const how = exit.signal === null ? `code ${exit.code}` : `signal ${exit.signal}`;
    return `origin nginx exited during start (${how}): ${(emerg ?? text.trim().split('\n').pop() ?? '').trim() || 'no message'}; see ${this.paths.errorLog}`;
  }

  /** SIGKILL and wait; for failed starts, where a graceful stop buys nothing. */
  async #killNow(): Promise<void> {
    const child = this.#child;
    if (child === null || this.#exited === null) return;
    child.kill('SIGKILL');
    await this.#exited;
  }

  async stop(): Promise<void> {
    if (this.#restartTimer !== null) clearTimeout(this.#restartTimer);
    this.#restartTimer = null;
    if (this.#state === 'idle' || this.#state === 'stopped') return;
    this.#stopping ??= this.#stop().finally(() => {
      this.#stopping = null;
    });
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#moveTo('stopping');
    const child = this.#child;
    const exited = this.#exited;
    if (child !== null && exited !== null) {
      // SIGTERM is nginx's fast shutdown (SIGQUIT would wait for players).
      child.kill('SIGTERM');
      const grace = new AbortController();
      const graceful = await Promise.race([
        exited.then(() => true),
        sleep(this.#stopGraceMs, false, { signal: grace.signal }).catch(() => false),
      ]);
      grace.abort(); // do not hold the event loop for the rest of the grace
      if (!graceful) {
        this.#log.warn('origin nginx ignored SIGTERM; sending SIGKILL', { graceMs: this.#stopGraceMs });
        child.kill('SIGKILL');
        await exited;
      }
    }
    this.#moveTo('stopped');
  }

  publishUrl(stream: string, hls = true): string {
    assertStreamName(stream);
    return `rtmp://${HOST}:${this.rtmpPort}/${rtmpApp(hls)}/${stream}`;
  }

  /** Players read from the application the stream is published to; only the HLS one writes playlists (none when the origin's HLS is off). */
  playUrls(stream: string, hls = true): PlayUrls {
    return { rtmp: this.publishUrl(stream, hls), hls: hls && this.#hls ? `http://${HOST}:${this.hlsPort}/hls/${stream}.m3u8` : null };
  }

  async isPublishing(stream: string, hls = true): Promise<boolean> {
    assertStreamName(stream);
    return (await this.streams(hls)).get(stream)?.publishing ?? false;
  }

  /**
   * One /stat read shared by every caller within statMaxAgeMs: when hundreds
   * of channels start together, each waiter polling nginx on its own would
   * cost hundreds of requests and XML parses per second.
   */
  #publishers(): Promise<ReturnType<typeof parseStatByApp>> {
    const now = Date.now();
    if (this.#stat && now - this.#stat.at < statMaxAgeMs) return this.#stat.result;
    const result = (async () => {
      const res = await httpGet(`http://${HOST}:${this.hlsPort}/stat`, 2_000);
      if (res.status !== 200) throw new Error(`origin /stat answered HTTP ${res.status}`);
      return parseStatByApp(res.body);
    })();
    this.#stat = { at: now, result };
    result.catch(() => {
      if (this.#stat?.result === result) this.#stat = null;
    });
    return result;
  }

  /** Every stream of the application with or without HLS, as /stat reports it (a read shared with isPublishing). */
  async streams(hls = true): Promise<ReadonlyMap<string, StreamStat>> {
    if (this.#state !== 'running') throw new Error(`origin is ${this.#state}, not running`);
    return (await this.#publishers()).get(rtmpApp(hls)) ?? new Map<string, StreamStat>();
  }

  /** The nginx client ids of each stream's players, as /stat reports them (see Origin.players). */
  async players(hls = true): Promise<ReadonlyMap<string, readonly string[]>> {
    return new Map([...(await this.streams(hls))].map(([stream, stat]) => [stream, stat.players]));
  }

  async waitForPublish(stream: string, timeoutMs: number, options: WaitOptions = {}): Promise<void> {
    assertStreamName(stream);
    const { hls = true, signal } = options;
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown = null;
    for (;;) {
      signal?.throwIfAborted();
      try {
        if (await this.isPublishing(stream, hls)) return;
        lastError = null;
      } catch (err) {
        // A slow or restarting origin is not yet a verdict; the deadline is.
        lastError = err;
      }
      if (Date.now() >= deadline) break;
      await sleep(50, undefined, signal === undefined ? {} : { signal }).catch(() => signal?.throwIfAborted());
    }
    const why = lastError instanceof Error ? ` (last check failed: ${lastError.message})` : '';
    throw new VliveError('START_FAILED', `stream ${stream} did not reach the origin within ${timeoutMs} ms${why}`);
  }
}
