/**
 * The endpoint nginx-rtmp posts on_play and on_play_done to. It is its own
 * HTTP listener on 127.0.0.1 with an ephemeral port, not a route of the API:
 * the API may listen on a public address, and these calls carry no API token.
 * Its path holds a random per-run secret, and peers other than loopback are
 * refused, so only our nginx (which reads the path from its generated
 * config) can reach it.
 *
 * Nothing in the body is trusted beyond a stream name, checked against the
 * stream-name pattern and then only used to look a channel up, and nginx's
 * numeric client id. Every well-formed call is answered 200 at once: a player
 * is never refused here, and nginx does not wait on our start.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import { RTMP_APP, RTMP_APP_NO_HLS } from '../origin/config.js';
import { STREAM_NAME } from '../origin/origin.js';

export interface PlayEvent {
  readonly kind: 'play' | 'play_done';
  /** The stream name, i.e. the channel id. */
  readonly stream: string;
  /** nginx's connection number of the player; /stat lists the same id. */
  readonly clientId: string;
  /** Which of our applications it asked: the one with HLS or the one without (src/origin/config.ts). */
  readonly hls: boolean;
}

export interface NotifyServer {
  /** What nginx.conf's on_play / on_play_done point at. */
  readonly url: string;
  close(): Promise<void>;
}

/** nginx-rtmp's form bodies are a few hundred bytes; anything larger is not from it. */
const maxBodyBytes = 8 * 1024;

const loopbackPeers = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

function readForm(req: IncomingMessage): Promise<URLSearchParams | null> {
  return new Promise((resolve) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > maxBodyBytes) {
        resolve(null);
        req.destroy();
      }
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', () => resolve(null));
  });
}

/** Parses one notification; null when it is not a play call of one of our applications. */
export function parsePlayForm(form: URLSearchParams): PlayEvent | null {
  const call = form.get('call');
  const stream = form.get('name') ?? '';
  const clientId = form.get('clientid') ?? '';
  const app = form.get('app');
  if (call !== 'play' && call !== 'play_done') return null;
  if ((app !== RTMP_APP && app !== RTMP_APP_NO_HLS) || !STREAM_NAME.test(stream) || !/^\d{1,20}$/.test(clientId)) return null;
  return { kind: call, stream, clientId, hls: app === RTMP_APP };
}

export async function startNotifyServer(onPlay: (ev: PlayEvent) => void, log: Logger): Promise<NotifyServer> {
  const path = `/origin-notify/${randomBytes(16).toString('hex')}`;
  const server: Server = createServer((req, res) => {
    const peer = req.socket.remoteAddress ?? '';
    if (!loopbackPeers.has(peer) || req.method !== 'POST' || req.url !== path) {
      res.writeHead(404).end();
      req.resume();
      return;
    }
    void readForm(req).then((form) => {
      const ev = form === null ? null : parsePlayForm(form);
      // 2xx lets the player in; what we cannot read is logged, not refused.
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      if (ev === null) log.warn('origin notification ignored', { call: form?.get('call') ?? null });
      else onPlay(ev);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
