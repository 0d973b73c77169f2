/**
 * The operator's console on the API's port: the page at `/`, its built
 * assets under `/console/`, what the page must know before it signs in
 * (`/console/info`), and the origin's HLS under `/hls/` so that the preview
 * player reads it from the page's own origin.
 *
 * Why a proxy rather than CORS on the origin: the origin's HLS port serves
 * anyone who reaches it, so a CORS header there would open it to every page
 * of every site; through the API port the playlist and fragments are behind
 * the same tokens as queries (a viewer token may watch), and the console's
 * Content-Security-Policy can stay at 'self'.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { authenticate, type TokenTable } from './auth.js';
import type { RouteHandler } from './server.js';

export interface ConsoleOptions {
  /** Folder of the built console (index.html, app.js, app.css), made by setup. */
  readonly assetsDir: string;
  readonly tokens: TokenTable;
  /** Base URL whose `<name>` is the origin's `/hls/<name>`; null when the origin serves no HLS. */
  readonly hlsBaseUrl: string | null;
  /** Where the Grafana dashboards are, for a link; null for none. */
  readonly grafanaUrl: string | null;
}

const assetTypes: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/** nginx-rtmp's names: `<stream>.m3u8` and `<stream>-<n>.ts`; stream names are channel ids. */
const hlsName = /^[A-Za-z0-9_-]{1,100}(\.m3u8|-\d{1,12}\.ts)$/;

/** Fragments and playlists both stay small; a larger answer is not the origin's HLS. */
const maxHlsBytes = 64 << 20;

/**
 * Only the service's own script and style run; the page has no inline script
 * or style. img-src allows blob: because thumbnails are fetched with the token
 * and shown from object URLs; media-src blob: because hls.js plays through
 * MediaSource. connect-src names the WebSocket of the host the page came from:
 * 'self' covers ws: only in browsers that implement CSP 3.
 */
function contentSecurityPolicy(req: IncomingMessage): string {
  const host = req.headers.host ?? '';
  const ws = /^[A-Za-z0-9.:[\]-]+$/.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob:",
    "media-src 'self' blob:",
    `connect-src 'self'${ws}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function securityHeaders(req: IncomingMessage): Record<string, string> {
  return {
    'content-security-policy': contentSecurityPolicy(req),
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export function consoleRoutes(opts: ConsoleOptions): RouteHandler {
  const grafanaUrl = opts.grafanaUrl !== null && /^https?:\/\//.test(opts.grafanaUrl) ? opts.grafanaUrl : null;

  async function asset(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const type = assetTypes[name];
    const body = type === undefined ? null : await readFile(join(opts.assetsDir, name)).catch(() => null);
    if (type === undefined || body === null) {
      // Missing after a checkout without setup: say what to run rather than a bare 404.
      const status = type === undefined ? 404 : 503;
      const error = type === undefined ? 'not found' : 'the console is not built: run `npm run setup`';
      return sendJson(res, status, { error }, securityHeaders(req));
    }
    res.writeHead(200, {
      'content-type': type,
      'content-length': String(body.length),
      // Rebuilt by setup under the same names; a revalidation is cheap on loopback.
      'cache-control': 'no-cache',
      ...securityHeaders(req),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  async function hls(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    try {
      authenticate(opts.tokens, req.headers.authorization);
    } catch (err) {
      return sendJson(res, 401, { error: (err as Error).message }, { 'www-authenticate': 'Bearer' });
    }
    if (opts.hlsBaseUrl === null || !hlsName.test(name)) return sendJson(res, 404, { error: 'not found' });
    const upstream = await fetch(`${opts.hlsBaseUrl}/${name}`, { signal: AbortSignal.timeout(10_000) }).catch(() => null);
    if (upstream === null) return sendJson(res, 502, { error: 'the origin does not answer' });
    if (!upstream.ok) {
      await upstream.body?.cancel();
      // 404 while a channel is not publishing (or has HLS off): the player retries.
      return sendJson(res, upstream.status === 404 ? 404 : 502, { error: `the origin answered ${upstream.status}` });
    }
    if (Number(upstream.headers.get('content-length') ?? 0) > maxHlsBytes) {
      await upstream.body?.cancel();
      return sendJson(res, 502, { error: 'the origin sent more than an HLS fragment holds' });
    }
    const body = Buffer.from(await upstream.arrayBuffer());
    res.writeHead(200, {
      'content-type': name.endsWith('.m3u8') ? 'application/vnd.apple.mpegurl' : 'video/mp2t',
      'content-length': String(body.length),
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  return async (req, res, url) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const path = url.pathname;
    if (path === '/' || path === '/index.html') {
      await asset(req, res, 'index.html');
      return true;
    }
    if (path === '/console/info') {
      // Read before signing in, so it says nothing a stranger could use.
      sendJson(res, 200, { tokens: opts.tokens !== null, grafanaUrl }, { 'cache-control': 'no-store' });
      return true;
    }
    if (path.startsWith('/console/')) {
      await asset(req, res, path.slice('/console/'.length));
      return true;
    }
    if (path.startsWith('/hls/')) {
      await hls(req, res, path.slice('/hls/'.length));
      return true;
    }
    return false;
  };
}
