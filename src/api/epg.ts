/**
 * The programme guide over plain HTTP on the API's port, for IPTV apps and
 * guide grabbers: `/epg/xmltv` (XMLTV) and `/epg/json`, every channel or
 * `?channel=<id>`, with optional `from` and `to` (RFC 3339; defaults the last
 * 6 hours and the next 24).
 *
 * Tokens: when the service has them, any valid token (viewer or operator) as
 * `Authorization: Bearer …` or as `?token=…`, because an IPTV app takes a
 * URL and nothing else. A token in a URL ends up in the app's settings and
 * maybe in proxies' logs: give such an app a viewer token of its own.
 *
 * Refusals are JSON in GraphQL's error shape, with the code in
 * `extensions.code`: 401 UNAUTHENTICATED, 400 BAD_USER_INPUT (with
 * `extensions.field`), 404 NOT_FOUND.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { VliveError } from '../errors.js';
import type { ProgrammeGuide } from '../guide/programme.js';
import { renderJson, renderXmltv } from '../guide/xmltv.js';
import { checkId } from '../names.js';
import { authenticate, type TokenTable } from './auth.js';
import type { RouteHandler } from './server.js';

const statusOf: Partial<Record<VliveError['code'], number>> = { UNAUTHENTICATED: 401, BAD_USER_INPUT: 400, NOT_FOUND: 404 };

/** RFC 3339 with a zone, as the GraphQL DateTime takes it; anything else would be read by Date's lenient parser. */
const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;

function dateParam(url: URL, name: string): Date | null {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return null;
  return rfc3339.test(v) ? new Date(v) : new Date(NaN);
}

function refuse(res: ServerResponse, err: VliveError): void {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (err.code === 'UNAUTHENTICATED') headers['www-authenticate'] = 'Bearer';
  res.writeHead(statusOf[err.code] ?? 500, headers);
  res.end(JSON.stringify({ errors: [{ message: err.message, extensions: { code: err.code, ...(err.field !== undefined ? { field: err.field } : {}) } }] }));
}

export function epgRoutes(opts: { tokens: TokenTable; guide: Pick<ProgrammeGuide, 'read'> }): RouteHandler {
  return async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || (url.pathname !== '/epg/xmltv' && url.pathname !== '/epg/json')) return false;
    try {
      authenticate(opts.tokens, req.headers.authorization ?? url.searchParams.get('token') ?? undefined);
      const channel = url.searchParams.get('channel');
      const { window, programmes } = await opts.guide.read(channel === null ? null : checkId('channel', channel), dateParam(url, 'from'), dateParam(url, 'to'));
      const xml = url.pathname === '/epg/xmltv';
      const body = Buffer.from(xml ? renderXmltv(programmes, window) : renderJson(programmes, window), 'utf8');
      res.writeHead(200, {
        'content-type': xml ? 'application/xml; charset=utf-8' : 'application/json',
        'content-length': String(body.length),
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      if (!(err instanceof VliveError)) throw err;
      refuse(res, err);
    }
    return true;
  };
}
