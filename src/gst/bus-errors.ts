/**
 * Turns GStreamer bus errors into one line a person can act on, e.g.
 * "source: Resource not found: No such file "/media/x.mp4"" or
 * "target 0: Connection refused: Could not connect to 127.0.0.1: Connection refused".
 * URLs are masked: an RTMP path usually ends in a secret stream key.
 *
 * Part of src/gst/: imports only native.ts's types.
 */
import type { BusMessage } from './native.js';

/** Keeps scheme, host and port; the path (app/stream key) becomes "***". */
export function maskUrls(text: string): string {
  // An srt:// URL's secrets (passphrase, stream id) are in its query.
  return text.replace(/\b(rtmps?):\/\/([^/\s"']+)\/[^\s"']*/g, '$1://$2/***').replace(/\bsrt:\/\/([^?\s"']*)\?[^\s"']*/g, 'srt://$1?***');
}

/** Which part of the channel an element belongs to, by the names templates give them. */
function role(source: string): string {
  const sink = /^(?:sink|queue)(\d+)$/.exec(source);
  if (sink) return `target ${sink[1] ?? '?'}`;
  if (source === 'src' || source === 'demux' || source === 'vqueue' || source === 'aqueue') return 'source';
  if (source === 'mux' || source === 'fanout') return 'muxer';
  return source;
}

/**
 * GStreamer's debug string is "file.c(123): function (): /GstPipeline:…:" and
 * then, on the next lines, the useful detail (if any). Keep only the detail.
 */
function detail(debug: string | null): string | null {
  if (debug === null) return null;
  const rest = debug.split('\n').slice(1).join(' ').trim();
  return rest === '' ? null : rest;
}

export function describeBusError(m: Extract<BusMessage, { type: 'error' }>): string {
  const what = m.message.replace(/\.$/, '');
  const more = detail(m.debug);
  const text = more !== null && !what.includes(more) ? `${what}: ${more}` : what;
  return maskUrls(`${role(m.source)}: ${text}`);
}
