/** The GraphQL the console sends; the fields are schema.graphql's. */

/** What a row of the channels page shows. */
export const channelRow = `
  id name sourceType status desiredState activeSource viewers errorString warnings
  worker ownerNodeId startedAt updatedAt snapUrl snapTakenAt snapStale hls onDemand
  reconnectAttempts nextAttemptAt
  pushTargets { position url status bytesSent errors lastError }
`;

export interface PushTargetView {
  position: number;
  url: string;
  status: 'CONNECTING' | 'UP' | 'RETRYING' | 'STOPPED';
  bytesSent: number;
  errors: number;
  lastError: string | null;
}

export type LiveStatus = 'STOPPED' | 'STARTING' | 'LIVING' | 'RECONNECTING' | 'ERROR';

export interface ChannelRowView {
  id: string;
  name: string;
  sourceType: 'VOD' | 'ONLINE';
  status: LiveStatus;
  desiredState: 'RUNNING' | 'STOPPED';
  activeSource: 'PRIMARY' | 'BACKUP' | 'SLATE';
  viewers: number;
  errorString: string | null;
  warnings: string[];
  worker: string | null;
  ownerNodeId: string | null;
  startedAt: string | null;
  updatedAt: string;
  snapUrl: string | null;
  snapTakenAt: string | null;
  snapStale: boolean;
  hls: boolean;
  onDemand: boolean;
  reconnectAttempts: number;
  nextAttemptAt: string | null;
  pushTargets: PushTargetView[];
}

export const listChannels = `query Channels { virtualLives { ${channelRow} } }`;

/** The batched subscription (10 ms batches): a restart wave of hundreds of channels is a few messages. */
export const statusEvents = `subscription Status($id: ID) {
  virtualLiveStatusChanges(id: $id) {
    id status previous errorString at warnings reconnectAttempts nextAttemptAt activeSource viewers
    virtualLive { ${channelRow} }
  }
}`;

export interface StatusEvent {
  id: string;
  status: LiveStatus;
  previous: LiveStatus | null;
  errorString: string | null;
  at: string;
  warnings: string[];
  reconnectAttempts: number;
  nextAttemptAt: string | null;
  activeSource: ChannelRowView['activeSource'];
  viewers: number;
  virtualLive: ChannelRowView | null;
}

/** What changes without a status event: push target counters and snapshots. */
export const eventlessDetails = `query Details { virtualLives { id snapUrl snapTakenAt snapStale pushTargets { position url status bytesSent errors lastError } } }`;

export const vodFields = `
  id name path sizeBytes container durationSeconds videoCodec videoProfile width height frameRate
  audioCodec audioSampleRate audioChannels copyable state prepareProgress prepareError createdAt
`;

export interface VodView {
  id: string;
  name: string;
  path: string;
  sizeBytes: number;
  container: string;
  durationSeconds: number;
  videoCodec: string | null;
  videoProfile: string | null;
  width: number | null;
  height: number | null;
  frameRate: number | null;
  audioCodec: string | null;
  audioSampleRate: number | null;
  audioChannels: number | null;
  copyable: boolean;
  state: 'READY' | 'PREPARING' | 'FAILED';
  prepareProgress: number;
  prepareError: string | null;
  createdAt: string;
}

export const listVods = `query Vods { vodResources { ${vodFields} } }`;

export const channelDetail = `query Channel($id: ID!) {
  virtualLive(id: $id) {
    ${channelRow}
    sourceUrl backupUrl failoverAfterFailures failoverAfterMs transcode loop connectTimeoutMs rtspTransport
    maxReconnectAttempts touchDurationSeconds idleDelaySeconds touchedAt stopReason startCount restartCount createdAt
    playUrls { rtmp hls }
    playlist { id name durationSeconds }
    items { index name live { durationSeconds } breaks { offsetSeconds } }
    outputProfile { width height frameRate audioSampleRate audioChannels }
    conform { index state progress error }
    slate { id name }
    recording { enabled segmentSeconds retainHours }
    snapshot { enabled intervalSeconds }
    recordings { url node startedAt durationSeconds sizeBytes }
    schedules { id action at cron timeZone nextRunAt lastRunAt lastResult }
    nextScheduledAction { action at }
  }
}`;

export interface ScheduleView {
  id: string;
  action: 'START' | 'STOP';
  at: string | null;
  cron: string | null;
  timeZone: string | null;
  nextRunAt: string | null;
  lastRunAt: string | null;
  lastResult: string | null;
}

export interface ChannelDetailView extends ChannelRowView {
  sourceUrl: string | null;
  backupUrl: string | null;
  failoverAfterFailures: number;
  failoverAfterMs: number;
  transcode: 'AUTO' | 'NEVER' | 'ALWAYS';
  loop: boolean;
  connectTimeoutMs: number;
  rtspTransport: 'TCP' | 'UDP';
  maxReconnectAttempts: number | null;
  touchDurationSeconds: number;
  idleDelaySeconds: number;
  touchedAt: string | null;
  stopReason: string | null;
  startCount: number;
  restartCount: number;
  createdAt: string;
  playUrls: { rtmp: string; hls: string | null };
  playlist: { id: string; name: string; durationSeconds: number }[];
  /** The whole list: VOD items and live items (an online source for a set time), in play order. */
  items: { index: number; name: string; live: { durationSeconds: number } | null; breaks: { offsetSeconds: number }[] }[];
  outputProfile: { width: number; height: number; frameRate: number; audioSampleRate: number; audioChannels: number } | null;
  /** Per VOD item (its position among the VOD items), with an output profile: as it is, or its rendition's state. */
  conform: { index: number; state: 'AS_IS' | 'WAITING' | 'CONFORMING' | 'READY' | 'FAILED'; progress: number; error: string | null }[];
  slate: { id: string; name: string } | null;
  recording: { enabled: boolean; segmentSeconds: number; retainHours: number };
  snapshot: { enabled: boolean; intervalSeconds: number };
  recordings: { url: string; node: string | null; startedAt: string; durationSeconds: number; sizeBytes: number }[];
  schedules: ScheduleView[];
  nextScheduledAction: { action: string; at: string } | null;
}

export const startChannel = `mutation Start($id: ID!) { startVirtualLive(id: $id) { ${channelRow} } }`;
export const stopChannel = `mutation Stop($id: ID!) { stopVirtualLive(id: $id) { ${channelRow} } }`;
export const createChannel = `mutation Create($input: CreateVirtualLiveInput!) { createVirtualLive(input: $input) { id } }`;
export const updateChannel = `mutation Update($id: ID!, $input: UpdateVirtualLiveInput!) { updateVirtualLive(id: $id, input: $input) { id } }`;
export const touchChannel = `mutation Touch($id: ID!) { touchVirtualLive(id: $id) { id } }`;
export const deleteChannel = `mutation Delete($id: ID!) { deleteVirtualLive(id: $id) }`;
export const addSchedule = `mutation AddSchedule($id: ID!, $input: ScheduleInput!) { addSchedule(virtualLiveId: $id, input: $input) { id } }`;
export const removeSchedule = `mutation RemoveSchedule($id: ID!) { removeSchedule(id: $id) }`;
export const registerVod = `mutation Register($input: RegisterVodResourceInput!) { registerVodResource(input: $input) { ${vodFields} } }`;

export const workersAndNodes = `query Fleet {
  workers { id pid state pipelines rssBytes restarts lastError cpuSeconds }
  nodes { id name apiUrl alive capacity running cpuLoad heartbeatAt startedAt }
}`;

export interface WorkerRow {
  id: string;
  pid: number | null;
  state: string;
  pipelines: number;
  rssBytes: number;
  restarts: number;
  lastError: string | null;
  cpuSeconds: number | null;
}

export interface NodeRow {
  id: string;
  name: string;
  apiUrl: string;
  alive: boolean;
  capacity: number;
  running: number;
  cpuLoad: number;
  heartbeatAt: string;
  startedAt: string;
}

/**
 * The item on air (issue #21's nowPlaying). Asked apart from the channel: on a
 * service whose schema has no such field yet the query alone is refused
 * (GRAPHQL_VALIDATION_FAILED) and the page shows the playlist without it.
 */
export const nowPlaying = `query NowPlaying($id: ID!) { virtualLive(id: $id) { nowPlaying { index startedAt endsAt name } } }`;

export interface NowPlayingView {
  index: number;
  startedAt: string;
  endsAt: string;
  /** The VOD item's name, or a live item's masked URL. */
  name: string;
}

/** A channel's wall-clock programme as stored (issue #22 item 1); null when it runs its playlist. */
export const channelProgramme = `query ChannelProgramme($id: ID!) {
  virtualLive(id: $id) {
    channelProgramme {
      timeZone dayStart updatedAt
      filler { id name }
      entries { start durationSeconds sourceUrl items { id name } breaks { id offsetSeconds durationSeconds } }
    }
  }
}`;

export interface ChannelProgrammeView {
  timeZone: string;
  dayStart: string;
  updatedAt: string;
  filler: { id: string; name: string }[];
  entries: {
    start: string;
    durationSeconds: number | null;
    /** Masked (password, query and stream key as ***): never to be sent back as it is. */
    sourceUrl: string | null;
    items: { id: string; name: string }[];
    breaks: { id: string; offsetSeconds: number; durationSeconds: number }[];
  }[];
}

export const setProgramme = `mutation SetProgramme($id: ID!, $input: ProgrammeInput!) { setProgramme(virtualLiveId: $id, input: $input) { id } }`;
export const clearProgramme = `mutation ClearProgramme($id: ID!) { clearProgramme(virtualLiveId: $id) { id } }`;

/** The guide of one channel between two instants. */
export const programmeGuide = `query Guide($id: ID!, $from: DateTime, $to: DateTime) {
  programme(id: $id, from: $from, to: $to) { start stop title kind index breaks { id at durationSeconds } }
}`;

export interface GuideEntryView {
  start: string;
  stop: string | null;
  title: string;
  kind: 'PLAYED' | 'ON_AIR' | 'PLANNED' | 'LIVE';
  index: number | null;
  breaks: { id: string; at: string; durationSeconds: number }[];
}
