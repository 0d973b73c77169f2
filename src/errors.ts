/**
 * Every error a client can see. The code is what GraphQL puts in
 * `extensions.code`; README.md documents each one in its error table, and
 * test/errors-documented.test.ts fails when a code here is missing there.
 */
export const errorCodes = {
  BAD_USER_INPUT: 'A field is missing, malformed, too long, or out of range.',
  NOT_FOUND: 'No virtual live, VOD resource or schedule has that id.',
  INVALID_STATE: 'The operation does not fit the current state, e.g. deleting a running channel.',
  PATH_OUTSIDE_MEDIA_ROOT: 'A VOD path is absolute, climbs out with `..`, or leads out through a symlink.',
  MEDIA_UNREADABLE: 'The VOD file is missing, unreadable, or not a media file GStreamer can parse.',
  MEDIA_UNSUPPORTED: 'The media can be neither copied nor transcoded into FLV.',
  MEDIA_NOT_READY: 'A VOD resource is still being transcoded (PREPARING) or its transcode FAILED, or, for a channel with an output profile, an item is still being conformed to it (or its conform FAILED), so the channel cannot play it yet.',
  WRONG_SOURCE_TYPE: 'The operation needs another kind of channel: skip, jump, cut-in and return need a VOD file or playlist, not an online source.',
  INCOMPATIBLE_MEDIA: 'Playlist items differ in tracks, codecs, picture size or audio format (a channel without an output profile), an item of a channel with one lacks video or audio, or a live cut-in source has other tracks (audio, video) than the playlist, so they cannot share one publish session.',
  SOURCE_UNREACHABLE: 'A live cut-in source could not be opened, or sent no keyframe within the channel connect timeout; the playlist plays on.',
  URL_NOT_ALLOWED: 'A URL is malformed or its scheme is not allowed in that place; a webhook URL also when its host is a loopback, private or reserved address (unless VLIVE_WEBHOOK_ALLOW_PRIVATE=on) or carries credentials.',
  RESOURCE_IN_USE: 'A VOD resource is still used by a virtual live.',
  CAPACITY_EXHAUSTED: 'The worker pool has no room for another pipeline.',
  START_FAILED: 'The pipeline could not start or its output never reached the origin.',
  SHUTTING_DOWN: 'The service is stopping and takes no more mutations.',
  UNAUTHENTICATED: 'No API token, or one that is not valid, was presented.',
  FORBIDDEN: 'The token is valid but its role does not allow the operation (viewers cannot change anything).',
  RATE_LIMITED: 'Too many starts or stops for one token, or too many subscriptions on one connection; retry later.',
  INTERNAL_SERVER_ERROR: 'A fault inside the service; the log has the details.',
} as const;

export type ErrorCode = keyof typeof errorCodes;

/** Codes that GraphQL itself (Apollo) or the HTTP layer gives; documented beside ours. */
export const protocolErrorCodes = {
  GRAPHQL_PARSE_FAILED: 'The query is not valid GraphQL syntax.',
  GRAPHQL_VALIDATION_FAILED: 'The query does not fit schema.graphql.',
  BAD_REQUEST: 'The HTTP request is malformed: not JSON, too large, or without a query.',
  QUERY_TOO_COMPLEX: 'The query nests deeper or selects more fields than the API allows.',
} as const;

/** An error meant for the client, with a stable code. */
export class VliveError extends Error {
  readonly code: ErrorCode;
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, field?: string) {
    super(message);
    this.name = 'VliveError';
    this.code = code;
    this.field = field;
  }
}

export const badInput = (field: string, message: string): VliveError =>
  new VliveError('BAD_USER_INPUT', `${field}: ${message}`, field);

export const notFound = (what: string, id: string): VliveError =>
  new VliveError('NOT_FOUND', `${what} ${JSON.stringify(id)} does not exist`);
