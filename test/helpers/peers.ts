/**
 * Real remote peers for the online-source tests, each a child process on a
 * loopback port: an RTSP server (GStreamer's, test/fixtures/rtsp-server.py),
 * an SRT listener and an HTTP-FLV server (ffmpeg), and a TCP server that
 * accepts and then says nothing. They play the far end a channel pulls from;
 * the product never runs them.
 *
 * Children start through `setpriv --pdeathsig SIGKILL` (bench/children.ts),
 * so a test run that dies leaves none behind. stop() sends SIGTERM, then
 * SIGKILL after a grace, and resolves once the child has exited.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { spawnChild, type Child } from '../../bench/children.js';
import { repoPath } from '../../src/paths.js';
import { freePort } from './ports.js';
import { untilListening } from './rtmp-receiver.js';

export interface Peer {
  /** What a channel's sourceUrl should be to pull from this peer. */
  readonly url: string;
  /** Last stderr output, for assertion messages. */
  stderr(): string;
  /** SIGTERM, then SIGKILL after 3 s; resolves once it has exited. Safe to call twice. */
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 3_000;
const READY_TIMEOUT_MS = 10_000;

/**
 * python3-gi is a Debian package: it is importable by Debian's interpreter,
 * not by whatever python3 comes first on PATH (a pyenv shim, a venv).
 */
const PYTHON = '/usr/bin/python3';

interface Spawned {
  readonly child: Child;
  stderr(): string;
  stop(): Promise<void>;
}

function spawnPeer(cmd: string, args: readonly string[]): Spawned {
  const child = spawnChild(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  child.process.stderr?.setEncoding('utf8');
  child.process.stderr?.on('data', (c: string) => {
    tail = (tail + c).slice(-4000);
  });
  return {
    child,
    stderr: () => tail,
    stop: async () => {
      await child.stop(STOP_GRACE_MS);
    },
  };
}

/** Stops a peer that failed to come up and rethrows with what it said. */
async function failStart(peer: Spawned, what: string, err: unknown): Promise<never> {
  await peer.stop();
  throw new Error(`${what} did not come up: ${(err as Error).message}\n${peer.stderr()}`);
}

/**
 * Serves `file` (MP4, H.264 + AAC; or H.265 + MP3 with codecs 'hevc-mp3')
 * at rtsp://127.0.0.1:PORT/live without transcoding, over RTP on TCP or
 * UDP as the client asks, each client from the start of the file.
 * Resolves once the server listens.
 */
export async function startRtspServer(file: string, codecs: 'h264-aac' | 'hevc-mp3' = 'h264-aac'): Promise<Peer> {
  // Port 0: the server binds first and reports the port, so no other process can take it in between.
  const peer = spawnPeer(PYTHON, [repoPath('test', 'fixtures', 'rtsp-server.py'), '0', '/live', file, codecs]);
  try {
    const port = await readyLine(peer, READY_TIMEOUT_MS);
    return { url: `rtsp://127.0.0.1:${port}/live`, stderr: peer.stderr, stop: peer.stop };
  } catch (err) {
    return failStart(peer, 'the RTSP server', err);
  }
}

/** Resolves with the port of the fixture's `READY <port>` line; rejects if it exits or the deadline passes. */
function readyLine(peer: Spawned, timeoutMs: number): Promise<number> {
  const stdout = peer.child.process.stdout;
  if (stdout === null) return Promise.reject(new Error('no stdout pipe'));
  return new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: string): void => {
      buffered += chunk;
      const m = /^READY (\d+)$/m.exec(buffered);
      if (m !== null) finish(null, Number(m[1]));
    };
    const finish = (err: Error | null, port = 0): void => {
      clearTimeout(timer);
      stdout.off('data', onData);
      if (err === null) resolve(port);
      else reject(err);
    };
    const timer = setTimeout(() => finish(new Error(`no READY line within ${timeoutMs} ms`)), timeoutMs);
    stdout.setEncoding('utf8');
    stdout.on('data', onData);
    void peer.child.exited.then((exit) => finish(new Error(`it exited (code ${exit.code}, signal ${exit.signal})`)));
  });
}

/**
 * ffmpeg sends `file` in real time, looped, as MPEG-TS from an SRT listener
 * on 127.0.0.1:PORT; a channel connects to it as the caller. It serves one
 * caller and exits when that one leaves. Resolves once the UDP port is bound.
 */
export async function startSrtListener(file: string): Promise<Peer> {
  // A free TCP port number is only a good guess for UDP; the bind check below catches a clash.
  const port = await freePort();
  const peer = spawnPeer('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', file,
    '-c', 'copy', '-f', 'mpegts', `srt://127.0.0.1:${port}?mode=listener`,
  ]);
  try {
    // SRT says nothing when it listens, and probing a UDP port would be a caller: look at the socket table.
    await untilUdpBound(port, READY_TIMEOUT_MS, () => !peer.child.running);
    return { url: `srt://127.0.0.1:${port}`, stderr: peer.stderr, stop: peer.stop };
  } catch (err) {
    return failStart(peer, 'the SRT listener', err);
  }
}

/**
 * ffmpeg serves `file` in real time, looped, as FLV over HTTP at
 * http://127.0.0.1:PORT/live.flv, to one client, and exits when that one
 * leaves. Resolves once it listens (seen in the socket table: a test
 * connection would use up the one client).
 */
export async function startHttpFlvServer(file: string): Promise<Peer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/live.flv`;
  const peer = spawnPeer('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', file,
    '-c', 'copy', '-f', 'flv', '-listen', '1', url,
  ]);
  try {
    await untilListening(port, READY_TIMEOUT_MS, () => !peer.child.running);
    return { url, stderr: peer.stderr, stop: peer.stop };
  } catch (err) {
    return failStart(peer, 'the HTTP-FLV server', err);
  }
}

/** True once a UDP socket is bound to 127.0.0.1:port (Linux /proc/net/udp). */
async function udpBound(port: number): Promise<boolean> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const table = await readFile('/proc/net/udp', 'utf8');
  return table.split('\n').some((l) => l.trim().split(/\s+/)[1] === `0100007F:${hexPort}`);
}

async function untilUdpBound(port: number, timeoutMs: number, gaveUp: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await udpBound(port))) {
    if (gaveUp()) throw new Error('it exited');
    if (Date.now() > deadline) throw new Error(`nothing bound UDP port ${port} within ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

export interface SilentServer {
  readonly port: number;
  /** Connections accepted so far. */
  connections(): number;
  /** Closes the server and every connection it holds. */
  stop(): Promise<void>;
}

/**
 * A TCP server on 127.0.0.1 that accepts every connection and never sends
 * a byte: a source that is reachable but stalls, e.g. in the RTMP handshake.
 */
export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('listen(0) gave no port');
  return {
    port: address.port,
    connections: () => accepted,
    stop: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
