/**
 * The URL rules for everything a client hands us: pull sources, push
 * targets, and the external origin's base URL. URLs end up as element
 * properties of GStreamer pipelines and in logs, so they are checked strictly
 * here, once, and masked before anyone prints them.
 */
import { VliveError } from '../errors.js';

/** How a live source is pulled; liveProtocolOf tells it from the URL. */
export type LiveProtocol = 'rtmp' | 'rtsp' | 'hls' | 'httpflv' | 'srt';
export const liveProtocols: ReadonlySet<string> = new Set<LiveProtocol>(['rtmp', 'rtsp', 'hls', 'httpflv', 'srt']);

/** Longest URL accepted anywhere, in characters. */
export const MAX_URL_LENGTH = 2048;

/**
 * Source schemes we know of, and whether a pipeline template exists for each.
 * Turning one on is a one-line change here once `pipelines/` can pull it;
 * until then the client gets "not supported yet" instead of "malformed".
 */
export const SOURCE_SCHEMES = {
  rtmp: true,
  rtmps: true,
  rtsp: true,
  rtsps: false,
  srt: true,
  http: true,
  https: true,
} as const satisfies Record<string, boolean>;

export type KnownSourceScheme = keyof typeof SOURCE_SCHEMES;
export type SourceScheme = { [K in KnownSourceScheme]: (typeof SOURCE_SCHEMES)[K] extends true ? K : never }[KnownSourceScheme];

/** Push targets are RTMP(S) only: the worker's own RTMP publisher is the one output path. */
export const PUSH_SCHEMES = ['rtmp', 'rtmps'] as const;
export type PushScheme = (typeof PUSH_SCHEMES)[number];

export interface ParsedUrl<S extends string> {
  /** The URL exactly as given (after validation); never re-serialised, so stream keys keep their encoding. */
  readonly url: string;
  readonly scheme: S;
  readonly host: string;
  /** The explicit port, or null for the scheme default. */
  readonly port: number | null;
}

// Printable ASCII minus the characters RFC 3986 never allows raw (space is
// below 0x21). Quotes and backslashes are refused too: they have no business
// in a stream URL and are what an injection into launch syntax would need.
const FORBIDDEN_CHAR = /[^\x21-\x7e]|["'`\\<>{}|^]/;

function fail(field: string, message: string): VliveError {
  return new VliveError('URL_NOT_ALLOWED', `${field}: ${message}`, field);
}

function describeChar(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  if (code <= 0x20 || (code >= 0x7f && code <= 0x9f) || /\s/u.test(ch)) {
    return `control or whitespace character U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  }
  if (code > 0x7e) return `non-ASCII character ${JSON.stringify(ch)} (percent-encode it, or use punycode for host names)`;
  return `character ${JSON.stringify(ch)}`;
}

/** Checks shared by every kind of URL; returns the parsed URL. */
function parseCommon(field: string, input: unknown, allowed: readonly string[], planned: readonly string[] = []): URL {
  if (typeof input !== 'string' || input.length === 0) throw fail(field, 'a URL is required');
  if (input.length > MAX_URL_LENGTH) throw fail(field, `URL is longer than ${MAX_URL_LENGTH} characters`);
  const bad = FORBIDDEN_CHAR.exec(input);
  if (bad !== null) throw fail(field, `URL contains a ${describeChar(bad[0])} at position ${bad.index}`);

  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw fail(field, 'not a valid absolute URL, e.g. rtmp://host/app/stream');
  }
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (!allowed.includes(scheme)) {
    const options = allowed.map((s) => `${s}://`).join(', ');
    const why = planned.includes(scheme) ? 'is not supported yet' : 'is not allowed here';
    throw fail(field, `scheme ${scheme}:// ${why}; use one of ${options}`);
  }
  // "rtmp:host/x" parses with an empty host for non-special schemes.
  if (!input.slice(url.protocol.length).startsWith('//') || url.hostname === '') {
    throw fail(field, 'URL has no host, e.g. rtmp://host/app/stream');
  }
  if (url.hash !== '') throw fail(field, 'URL must not have a #fragment');
  return url;
}

function pathSegments(url: URL): string[] {
  return url.pathname.split('/').filter((s) => s !== '');
}

function toParsed<S extends string>(input: string, url: URL): ParsedUrl<S> {
  return Object.freeze({
    url: input,
    scheme: url.protocol.slice(0, -1).toLowerCase() as S,
    host: url.hostname,
    port: url.port === '' ? null : Number(url.port),
  });
}

/** rtmp URLs name an application and a stream: rtmp://host[:port]/app[/inst]/stream. */
function requireAppAndStream(field: string, url: URL): void {
  if (pathSegments(url).length < 2) {
    throw fail(field, 'an RTMP URL needs an application and a stream name, e.g. rtmp://host/app/stream');
  }
}

/**
 * Validates the URL a virtual live pulls from.
 * @throws VliveError URL_NOT_ALLOWED naming the field `sourceUrl`.
 */
export function parseSourceUrl(input: unknown, field = 'sourceUrl'): ParsedUrl<SourceScheme> {
  const schemes = Object.entries(SOURCE_SCHEMES);
  const enabled = schemes.filter(([, on]) => on).map(([s]) => s);
  const planned = schemes.filter(([, on]) => !on).map(([s]) => s);
  const url = parseCommon(field, input, enabled, planned);
  if (url.protocol === 'rtmp:' || url.protocol === 'rtmps:') requireAppAndStream(field, url);
  return toParsed(input as string, url);
}

/**
 * How a source URL is pulled: by scheme, and for http(s) by path: a path
 * ending in .m3u8 is HLS, anything else HTTP-FLV (an endless FLV over HTTP).
 */
export function liveProtocolOf(source: ParsedUrl<SourceScheme>): LiveProtocol {
  switch (source.scheme) {
    case 'rtmp':
    case 'rtmps':
      return 'rtmp';
    case 'rtsp':
      return 'rtsp';
    case 'srt':
      return 'srt';
    case 'http':
    case 'https':
      return new URL(source.url).pathname.toLowerCase().endsWith('.m3u8') ? 'hls' : 'httpflv';
  }
}

/**
 * Validates an RTMP(S) URL a virtual live pushes to (e.g. a CDN ingest).
 * @throws VliveError URL_NOT_ALLOWED naming the field `pushUrl`.
 */
export function parsePushTarget(input: unknown, field = 'pushUrl'): ParsedUrl<PushScheme> {
  const url = parseCommon(field, input, PUSH_SCHEMES);
  requireAppAndStream(field, url);
  return toParsed(input as string, url);
}

/**
 * Validates an RTMP(S) application URL with no stream name, rtmp://host[:port]/app,
 * as used for an external origin; stream names are appended to it.
 */
export function parseRtmpBase(input: unknown, field: string): ParsedUrl<PushScheme> {
  const url = parseCommon(field, input, PUSH_SCHEMES);
  if (pathSegments(url).length < 1) throw fail(field, 'needs an application, e.g. rtmp://host/live');
  if (url.search !== '') throw fail(field, 'must not have a ?query');
  if (url.pathname.endsWith('/')) throw fail(field, 'must not end with "/"');
  return toParsed(input as string, url);
}

/**
 * A URL safe to log or return through the API: the password, the query and,
 * for RTMP, the stream key (last path segment) become `***`. Never throws;
 * anything unparseable is masked whole, since we cannot tell where its
 * secret is.
 */
export function maskUrl(input: string): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return '***';
  }
  if (url.host === '' && url.pathname === '') return '***';
  const scheme = url.protocol.toLowerCase();
  const user = url.username === '' ? '' : url.password === '' ? `${url.username}@` : `${url.username}:***@`;
  let path = url.pathname;
  if (scheme === 'rtmp:' || scheme === 'rtmps:') {
    const segments = path.split('/');
    // ['', app, key]: only mask when there is a key after the application.
    if (segments.filter((s) => s !== '').length >= 2) {
      const last = segments.length - 1;
      if (segments[last] === '') segments.splice(last, 1);
      segments[segments.length - 1] = '***';
      path = segments.join('/');
    }
  }
  const query = url.search === '' ? '' : '?***';
  return `${url.protocol}//${user}${url.host}${path}${query}`;
}
