/**
 * What channels need from an RTMP origin, whether the service runs it
 * (ManagedOrigin, src/origin/nginx.ts) or it is somebody else's
 * (ExternalOrigin, src/origin/external.ts).
 */
import { badInput } from '../errors.js';

export interface PlayUrls {
  readonly rtmp: string;
  /** Null when the origin serves no HLS we know of. */
  readonly hls: string | null;
}

export interface Origin {
  /** Resolves once the origin accepts publishers and players. */
  start(): Promise<void>;
  /** Resolves once the origin has stopped; safe to call twice. */
  stop(): Promise<void>;
  /** Where a channel's pipeline pushes, e.g. rtmp://127.0.0.1:1935/live/<stream>. */
  publishUrl(stream: string): string;
  playUrls(stream: string): PlayUrls;
  /** Whether a publisher is on `stream` now; an origin that cannot tell says true. */
  isPublishing(stream: string): Promise<boolean>;
  /**
   * Resolves once `stream` is being published; rejects with START_FAILED
   * after `timeoutMs`, or with the signal's reason when aborted.
   */
  waitForPublish(stream: string, timeoutMs: number, signal?: AbortSignal): Promise<void>;
}

/** Stream names are ids the service makes; anything else is a bug upstream. */
export const STREAM_NAME = /^[A-Za-z0-9_-]{1,128}$/;

export function assertStreamName(stream: string): void {
  if (!STREAM_NAME.test(stream)) {
    throw badInput('stream', `${JSON.stringify(stream)} is not a stream name; use 1-128 of [A-Za-z0-9_-]`);
  }
}
