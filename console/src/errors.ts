/**
 * The API's error codes (README's Error codes table) as sentences for an
 * operator. The API's own message follows the sentence: it names the field
 * and the figure, which a table of sentences cannot.
 */
import { ApiError } from './api.js';

const sentences: Readonly<Record<string, string>> = {
  BAD_USER_INPUT: 'A value is missing, malformed or out of range.',
  NOT_FOUND: 'That channel, file or schedule no longer exists.',
  INVALID_STATE: 'That cannot be done in the channel’s current state.',
  PATH_OUTSIDE_MEDIA_ROOT: 'The file must be under the media root: no absolute path, no “..”.',
  MEDIA_UNREADABLE: 'The file is missing, unreadable, or not a media file.',
  MEDIA_UNSUPPORTED: 'This media can be neither copied nor transcoded for streaming.',
  MEDIA_NOT_READY: 'The file is still being prepared (or its preparation failed); wait until it is READY.',
  INCOMPATIBLE_MEDIA: 'Playlist items must share tracks, codecs, picture size and audio format.',
  URL_NOT_ALLOWED: 'That URL is malformed or its scheme is not allowed here.',
  RESOURCE_IN_USE: 'The file is still used by a channel.',
  CAPACITY_EXHAUSTED: 'The service has no room for another channel now.',
  START_FAILED: 'The channel could not start.',
  SHUTTING_DOWN: 'The service is stopping and takes no changes.',
  UNAUTHENTICATED: 'Sign in with a valid API token.',
  FORBIDDEN: 'Your token may only look: changes need an operator token.',
  RATE_LIMITED: 'Too many starts or stops just now; try again in a few seconds.',
  INTERNAL_SERVER_ERROR: 'The service failed inside; its log has the details.',
  GRAPHQL_VALIDATION_FAILED: 'A value has the wrong type.',
  GRAPHQL_PARSE_FAILED: 'The console sent a malformed request.',
  BAD_REQUEST: 'The request was refused as malformed.',
  QUERY_TOO_COMPLEX: 'The request asked for too much at once.',
};

/** "Sentence (API message)", for any error the console meets. */
export function explain(err: unknown): string {
  if (err instanceof ApiError) {
    const sentence = sentences[err.code] ?? 'The service refused the request.';
    return `${sentence} (${err.message})`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The field the API named, if any, to put the message beside its input. */
export function fieldOf(err: unknown): string | null {
  return err instanceof ApiError ? err.field : null;
}
