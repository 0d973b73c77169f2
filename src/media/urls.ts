/**
 * The URL rules for everything a client hands us: pull sources, push
 * targets, and the external origin's base URL. URLs end up as element
 * properties of GStreamer pipelines and in logs, so they are checked strictly
 * here, once, and masked before anyone prints them.
 */
import { badInput, VliveError } from '../errors.js';

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

/** Push targets: RTMP(S), published by the worker itself, and SRT (caller, MPEG-TS) through a pipeline of its own. */
export const PUSH_SCHEMES = ['rtmp', 'rtmps', 'srt'] as const;
export type PushScheme = (typeof PUSH_SCHEMES)[number];
/** An external origin is RTMP(S). */
const ORIGIN_SCHEMES = ['rtmp', 'rtmps'] as const;

/**
 * The options an srt:// push target may carry in its query, which srtsink
 * reads itself: limits from libsrt (passphrase 10–79 characters, stream id at
 * most 512, key length 16, 24 or 32 bytes). The latency range is ours: below
 * 20 ms no retransmission fits, above 8 s a live stream is no longer live.
 */
export const srtTargetLimits = { passphraseMin: 10, passphraseMax: 79, latencyMsMin: 20, latencyMsMax: 8000, streamIdMax: 512, pbkeylens: [16, 24, 32] } as const;
const srtTargetKeys = ['passphrase', 'latency', 'pbkeylen', 'streamid', 'mode'] as const;

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
 * Validates a URL a virtual live pushes to (e.g. a CDN ingest): rtmp(s)://
 * with an application and a stream key, or srt://host:port with the options
 * of srtTargetKeys.
 * @throws VliveError URL_NOT_ALLOWED naming `field` for a URL we do not push
 *   to, BAD_USER_INPUT naming it for an srt:// option out of range or unknown.
 */
export function parsePushTarget(input: unknown, field = 'pushTargets'): ParsedUrl<PushScheme> {
  const url = parseCommon(field, input, PUSH_SCHEMES);
  if (url.protocol === 'srt:') checkSrtTarget(field, url);
  else requireAppAndStream(field, url);
  return toParsed(input as string, url);
}

/** srt://host:port[?options]: caller mode only; each option once, in its range. */
function checkSrtTarget(field: string, url: URL): void {
  if (url.port === '') throw fail(field, 'an srt:// target needs a port, e.g. srt://ingest.example:9000');
  if (url.pathname !== '' && url.pathname !== '/') throw fail(field, 'an srt:// target has no path; give the stream as ?streamid=…');
  if (url.username !== '' || url.password !== '') throw fail(field, 'an srt:// target has no user or password; give ?passphrase=…');
  const q = url.searchParams;
  const keys = [...q.keys()];
  const unknown = keys.find((k) => !(srtTargetKeys as readonly string[]).includes(k));
  if (unknown !== undefined) throw badInput(field, `srt:// option ${JSON.stringify(unknown)} is not supported; use ${srtTargetKeys.filter((k) => k !== 'mode').join(', ')}`);
  const twice = keys.find((k, i) => keys.indexOf(k) !== i);
  if (twice !== undefined) throw badInput(field, `srt:// option ${twice} is given twice`);
  const L = srtTargetLimits;
  const mode = q.get('mode');
  if (mode !== null && mode !== 'caller') throw badInput(field, 'srt:// targets connect as callers: mode can only be caller');
  const pass = q.get('passphrase');
  if (pass !== null && (pass.length < L.passphraseMin || pass.length > L.passphraseMax)) {
    throw badInput(field, `srt:// passphrase must be ${L.passphraseMin} to ${L.passphraseMax} characters`);
  }
  const latency = q.get('latency');
  if (latency !== null && !wholeInRange(latency, L.latencyMsMin, L.latencyMsMax)) {
    throw badInput(field, `srt:// latency must be a whole number of ms from ${L.latencyMsMin} to ${L.latencyMsMax}`);
  }
  const pbkeylen = q.get('pbkeylen');
  if (pbkeylen !== null) {
    if (!(L.pbkeylens as readonly number[]).some((n) => String(n) === pbkeylen)) throw badInput(field, `srt:// pbkeylen must be ${L.pbkeylens.join(', ')}`);
    if (pass === null) throw badInput(field, 'srt:// pbkeylen needs a passphrase');
  }
  const streamId = q.get('streamid');
  if (streamId !== null && (streamId === '' || streamId.length > L.streamIdMax)) throw badInput(field, `srt:// streamid must be 1 to ${L.streamIdMax} characters`);
}

function wholeInRange(text: string, min: number, max: number): boolean {
  if (!/^\d{1,9}$/.test(text)) return false;
  const n = Number(text);
  return n >= min && n <= max;
}

/**
 * Validates an RTMP(S) application URL with no stream name, rtmp://host[:port]/app,
 * as used for an external origin; stream names are appended to it.
 */
export function parseRtmpBase(input: unknown, field: string): ParsedUrl<PushScheme> {
  const url = parseCommon(field, input, ORIGIN_SCHEMES);
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
