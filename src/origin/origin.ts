/**
 * What channels need from an RTMP origin, whether the service runs it
 * (ManagedOrigin, src/origin/nginx.ts) or it is somebody else's
 * (ExternalOrigin, src/origin/external.ts).
 */
import { badInput } from '../errors.js';

export interface PlayUrls {
  readonly rtmp: string;
  /** Null when the origin serves no HLS we know of, or the stream has HLS off. */
  readonly hls: string | null;
}

/**
 * Every method that names a stream takes its `hls` choice too: at the managed
 * origin it decides the RTMP application the stream lives in (src/origin/config.ts),
 * so a channel is published, read back and counted where it really is. It
 * defaults to true, where every stream lived before HLS became a choice; the
 * channel domain always passes its channel's value (its PublishPoint port
 * makes it required).
 */
export interface Origin {
  /** Resolves once the origin accepts publishers and players. */
  start(): Promise<void>;
  /** Resolves once the origin has stopped; safe to call twice. */
  stop(): Promise<void>;
  /** Where a channel's pipeline pushes, e.g. rtmp://127.0.0.1:1935/live/<stream>. */
  publishUrl(stream: string, hls?: boolean): string;
  playUrls(stream: string, hls?: boolean): PlayUrls;
  /** Whether a publisher is on `stream` now; an origin that cannot tell says true. */
  isPublishing(stream: string, hls?: boolean): Promise<boolean>;
  /**
   * Resolves once `stream` is being published; rejects with START_FAILED
   * after `timeoutMs`, or with the signal's reason when aborted.
   */
  waitForPublish(stream: string, timeoutMs: number, options?: WaitOptions): Promise<void>;
  /**
   * The players of every stream in the application with or without HLS, as
   * the origin's client ids. Absent on an origin that cannot tell (an
   * external one); on-demand channels then go by notifications and touches.
   */
  players?(hls?: boolean): Promise<ReadonlyMap<string, readonly string[]>>;
}

export interface WaitOptions {
  /** Default true (see Origin). */
  readonly hls?: boolean;
  readonly signal?: AbortSignal;
}

/** Stream names are ids the service makes; anything else is a bug upstream. */
export const STREAM_NAME = /^[A-Za-z0-9_-]{1,128}$/;

export function assertStreamName(stream: string): void {
  if (!STREAM_NAME.test(stream)) {
    throw badInput('stream', `${JSON.stringify(stream)} is not a stream name; use 1-128 of [A-Za-z0-9_-]`);
  }
}
