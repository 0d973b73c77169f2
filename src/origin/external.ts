/**
 * An origin somebody else runs (another nginx-rtmp, a media server, a CDN
 * ingest). Nothing to start, and no way to ask whether a stream is live, so
 * it answers "publishing" and lets the pipeline's own errors speak.
 *
 * A channel's `hls` choice cannot change how somebody else's origin treats
 * the stream: every channel publishes to the one configured application
 * whatever its choice, and hls=false only means that no HLS URL is given out
 * for it (playUrls.hls is null). Whether that origin segments it is its own
 * configuration's business.
 */
import { VliveError } from '../errors.js';
import { parseRtmpBase } from '../media/urls.js';
import { assertStreamName, type Origin, type PlayUrls, type WaitOptions } from './origin.js';

export interface ExternalOriginOptions {
  /** RTMP application URL, e.g. rtmp://origin.example:1935/live; streams are appended as /<stream>. */
  readonly rtmpBaseUrl: string;
  /** Base URL that serves <stream>.m3u8, e.g. https://cdn.example/hls; no HLS when omitted. */
  readonly hlsBaseUrl?: string;
}

export class ExternalOrigin implements Origin {
  readonly #rtmpBase: string;
  readonly #hlsBase: string | null;

  constructor(options: ExternalOriginOptions) {
    this.#rtmpBase = parseRtmpBase(options.rtmpBaseUrl, 'rtmpBaseUrl').url;
    this.#hlsBase = options.hlsBaseUrl === undefined ? null : checkHlsBase(options.hlsBaseUrl);
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  /** The one configured application, whatever the stream's hls choice. */
  publishUrl(stream: string, _hls?: boolean): string {
    assertStreamName(stream);
    return `${this.#rtmpBase}/${stream}`;
  }

  playUrls(stream: string, hls = true): PlayUrls {
    assertStreamName(stream);
    return { rtmp: `${this.#rtmpBase}/${stream}`, hls: this.#hlsBase === null || !hls ? null : `${this.#hlsBase}/${stream}.m3u8` };
  }

  async isPublishing(stream: string): Promise<boolean> {
    assertStreamName(stream);
    return true;
  }

  async waitForPublish(stream: string, _timeoutMs: number, options: WaitOptions = {}): Promise<void> {
    assertStreamName(stream);
    options.signal?.throwIfAborted();
  }
}

function checkHlsBase(input: string): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new VliveError('URL_NOT_ALLOWED', 'hlsBaseUrl: not a valid absolute URL', 'hlsBaseUrl');
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '' || /\s/.test(input)) {
    throw new VliveError('URL_NOT_ALLOWED', 'hlsBaseUrl: must be an http(s) URL without query, e.g. https://cdn.example/hls', 'hlsBaseUrl');
  }
  return input.replace(/\/+$/, '');
}
