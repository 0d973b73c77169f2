/**
 * One extra push target of a channel (a CDN, another platform), published
 * by the worker itself: it is sent the very batches that target 0, the
 * origin, gets (rtmp-output.ts), so it costs one socket and no thread, and
 * reads nothing back from the origin. An srt:// target is the same, with
 * its sessions in a small pipeline each (srt-session.ts) instead of a socket.
 *
 * Why not a GStreamer forwarder (rtmp2src ! rtmp2sink, as before): each cost
 * two threads and a second origin connection, and rtmp2sink posts nothing
 * after a failed connect, so a stopped forwarder never released its bus
 * thread. A target that refused every retry leaked a pipeline, a thread and
 * an origin connection per attempt (issue #18).
 *
 * A target fails alone: a refusal, a closed socket or a target that stops
 * reading (more than maxPendingBytes unsent) ends only its own session,
 * which is started again after its own full-jitter backoff, for as long as
 * the channel plays. Its numbers add up across those sessions.
 *
 * Each session is a fresh publish, as a player expects: the last metadata and
 * sequence headers first, then media from the next keyframe on, with
 * timestamps from 0.
 */
import type { Logger } from '../log.js';
import type { TargetStats } from '../pool/pipeline-spec.js';
import { fullJitterBackoff } from '../pool/backoff.js';
import { maskUrls } from '../gst/bus-errors.js';
import { tagKind } from '../media/flv-reader.js';
import { dataName } from '../rtmp/amf0.js';
import { MSG_VIDEO, type MediaTag } from '../rtmp/chunks.js';
import { BitrateWindow } from './bitrate-window.js';

/** Retry delays of a failed target: 0.5 s doubling to 10 s, full jitter. */
const retryBackoff = { baseMs: 500, capMs: 10_000 };
/** A session that lasted this long was a success: the next failure starts the backoff afresh. */
const healthyAfterMs = 30_000;
/** A target that leaves this much unsent is not keeping up (about 10 s at 6 Mbit/s): its session is cut. */
export const maxPendingBytes = 8 * 1024 * 1024;

/**
 * One session of a target, what PushTarget drives: an RtmpPublisher for
 * rtmp(s)://, an SrtSession (srt-session.ts) for srt://.
 */
export interface TargetSession {
  /** Resolves once media may be sent; rejects when the session cannot start. */
  publish(): Promise<void>;
  readonly publishing: boolean;
  /** Bytes that left for the target (handed to the kernel, or sent by libsrt). */
  readonly bytesFlushed: number;
  /** Bytes sent to the session but not gone yet: a peer that does not keep up makes this grow. */
  readonly bytesPending: number;
  /** Called once when the session fails after publish() resolved. */
  onClose(cb: (err: Error) => void): void;
  send(tags: readonly MediaTag[]): void;
  close(flush: boolean): Promise<void>;
}

export interface PushTargetDeps {
  readonly channelId: string;
  /** The target's position in the channel's list (0 is the origin). */
  readonly index: number;
  /** A new session, for each attempt. */
  readonly open: () => TargetSession;
  readonly log: Logger;
}

/** What a session starts with: the newest of each, as the channel last sent them. */
interface Headers {
  meta: MediaTag | null;
  video: MediaTag | null;
  audio: MediaTag | null;
}

export class PushTarget {
  readonly #deps: PushTargetDeps;
  readonly #headers: Headers = { meta: null, video: null, audio: null };
  /** The channel has sent video: a session joins at a keyframe, not at any tag. */
  #sawVideo = false;
  #publisher: TargetSession | null = null;
  /** Output time that is 0 in this session; null until it joined the channel's media. */
  #offsetMs: number | null = null;
  #upSince = 0;
  #retry: NodeJS.Timeout | null = null;
  #attempt = 0;
  #stopped = false;
  /** Bytes of the sessions before the running one. */
  #bytesBefore = 0;
  #errors = 0;
  #lastError: string | undefined;
  #state: NonNullable<TargetStats['state']> = 'connecting';
  readonly #bitrate = new BitrateWindow();

  constructor(deps: PushTargetDeps) {
    this.#deps = deps;
  }

  /** Opens a session; media follows from the next keyframe the channel sends. */
  start(): void {
    if (this.#stopped || this.#publisher !== null) return;
    this.#state = 'connecting';
    this.#offsetMs = null;
    const publisher = this.#deps.open();
    this.#publisher = publisher;
    publisher.onClose((err) => this.#failed(publisher, err.message));
    publisher.publish().then(
      () => {
        if (this.#publisher === publisher) this.#upSince = performance.now();
      },
      (err: unknown) => this.#failed(publisher, (err as Error).message),
    );
  }

  /** One batch of the channel's output, as it leaves for target 0. */
  feed(batch: readonly MediaTag[]): void {
    for (const tag of batch) this.#remember(tag);
    const publisher = this.#publisher;
    if (publisher === null || !publisher.publishing) return;
    if (this.#offsetMs === null && !this.#join(publisher, batch)) return;
    const offset = this.#offsetMs ?? 0;
    const out: MediaTag[] = [];
    for (const tag of batch) if (tag.timeMs >= offset) out.push({ type: tag.type, timeMs: tag.timeMs - offset, body: tag.body });
    if (out.length > 0) publisher.send(out);
    if (publisher.bytesPending > maxPendingBytes) {
      this.#failed(publisher, `the target does not keep up: ${Math.round(publisher.bytesPending / 1024)} KiB unsent`);
    }
  }

  stats(): TargetStats {
    const bytesSent = this.#bytesBefore + (this.#publisher?.bytesFlushed ?? 0);
    // Across sessions the count only grows, so a retry shows as the window's bitrate falling, not as a reset.
    const bitrateBps = this.#bitrate.sample(performance.now(), bytesSent);
    // UP means bytes flow: a joined session that has sent nothing yet (srtsink still connecting) is not up.
    const state = this.#state === 'up' && (this.#publisher?.bytesFlushed ?? 0) === 0 ? 'connecting' : this.#state;
    const t: TargetStats = { index: this.#deps.index, bytesSent, errors: this.#errors, bitrateBps, state };
    if (this.#lastError !== undefined) t.lastError = this.#lastError;
    return t;
  }

  /** Ends the target: what was sent leaves first (`flush`), or the session is cut at once (a fence). */
  stop(flush: boolean): Promise<void> {
    this.#stopped = true;
    if (this.#retry !== null) clearTimeout(this.#retry);
    this.#retry = null;
    return this.#close(flush);
  }

  #remember(tag: MediaTag): void {
    if (tag.type === MSG_VIDEO) this.#sawVideo = true;
    const kind = tagKind(tag);
    // A cue point is an event of its moment: a new session starts with the metadata, not with the last cue.
    if (kind === 'script') {
      if (dataName(tag.body) !== 'onCuePoint') this.#headers.meta = tag;
    } else if (kind === 'video-config') this.#headers.video = tag;
    else if (kind === 'audio-config') this.#headers.audio = tag;
  }

  /**
   * Starts the session's media at the batch's first keyframe (its first tag
   * for a channel without video), after the headers, all at time 0. False
   * while the batch holds no such point.
   */
  #join(publisher: TargetSession, batch: readonly MediaTag[]): boolean {
    const at = batch.find((t) => (this.#sawVideo ? tagKind(t) === 'video-key' : tagKind(t) === 'audio'));
    if (at === undefined) return false;
    this.#offsetMs = at.timeMs;
    const { meta, video, audio } = this.#headers;
    const first = [meta, video, audio].filter((t): t is MediaTag => t !== null).map((t) => ({ type: t.type, timeMs: 0, body: t.body }));
    publisher.send(first);
    this.#state = 'up';
    return true;
  }

  #close(flush: boolean): Promise<void> {
    const publisher = this.#publisher;
    this.#publisher = null;
    if (publisher === null) return Promise.resolve();
    this.#bytesBefore += publisher.bytesFlushed;
    return publisher.close(flush);
  }

  #failed(publisher: TargetSession, message: string): void {
    if (this.#publisher !== publisher || this.#stopped) return;
    if (this.#upSince > 0 && performance.now() - this.#upSince >= healthyAfterMs) this.#attempt = 0;
    this.#upSince = 0;
    void this.#close(false);
    this.#errors += 1;
    this.#lastError = maskUrls(`target ${this.#deps.index}: ${message}`).slice(0, 500);
    this.#state = 'retrying';
    const wait = fullJitterBackoff(this.#attempt, retryBackoff);
    this.#attempt += 1;
    this.#deps.log.warn('push target failed; retrying on its own', { channel: this.#deps.channelId, target: this.#deps.index, error: this.#lastError, waitMs: wait });
    this.#retry = setTimeout(() => {
      this.#retry = null;
      this.start();
    }, wait);
  }
}
