/**
 * Resolvers for schema.graphql. They translate between GraphQL shapes and
 * the domain, and mask stream keys on the way out; the rules live in the
 * domain modules.
 */
import { GraphQLScalarType, Kind } from 'graphql';
import type { StatusChange } from '../channels/events.js';
import type { CreateInput, UpdateInput } from '../channels/input.js';
import { checkId } from '../names.js';
import { breaksOf, playlistOf } from '../channels/repository.js';
import { parseBreaks } from '../channels/ad-breaks.js';
import { conformOf } from '../channels/conform.js';
import { parseProfileKey } from '../media/output-profile.js';
import { entryView, wholeList } from '../channels/live-items.js';
import { isActive } from '../channels/status.js';
import type { ChannelRecord } from '../channels/repository.js';
import type { ChannelService } from '../channels/service.js';
import { notFound } from '../errors.js';
import { maskUrl } from '../media/urls.js';
import { readCpuSeconds } from '../procfs.js';
import type { TranscodeInput, VodRegistry } from '../vods/registry.js';
import { requireOperator, type Principal } from './auth.js';
import { apiLimits, RateLimiter } from './limits.js';
import { statusChangeBatches, statusChanges } from './subscriptions.js';
import { playoutResolvers } from './playout-resolvers.js';
import { webhookResolvers } from './webhook-resolvers.js';
import { programmeResolvers } from './programme-resolvers.js';
import type { ProgrammeGuide } from '../guide/programme.js';
import type { WebhookOutbox } from '../webhooks/outbox.js';
import type { NodeView } from '../cluster/leases.js';
import type { StatusEvents } from '../channels/events.js';
import type { OnDemand } from '../ondemand/manager.js';
import type { ScheduleInput } from '../schedule/input.js';
import type { Scheduler } from '../schedule/scheduler.js';
import { formatTimeOfDay, type ProgrammeInput } from '../schedule/programme-input.js';
import type { ProgrammeService } from '../schedule/programme-service.js';

export interface WorkerView {
  id: string;
  pid: number | null;
  state: string;
  pipelines: number;
  rssBytes: number;
  restarts: number;
  lastError: string | null;
}

export interface ApiDeps {
  channels: ChannelService;
  vods: VodRegistry;
  events: StatusEvents;
  workers: () => WorkerView[];
  /** touchVirtualLive; optional so that tests of the HTTP layer can leave it out. */
  ondemand?: Pick<OnDemand, 'touch'>;
  /** Schedules; optional like ondemand. */
  schedules?: Pick<Scheduler, 'add' | 'remove' | 'list' | 'next'>;
  /** Webhooks (src/webhooks/); optional like ondemand. */
  webhooks?: WebhookOutbox;
  /** The cluster's nodes (src/cluster/leases.ts), or this one alone on SQLite. */
  nodes: () => Promise<NodeView[]>;
  /**
   * Cluster mode: the base URL (`http://host:port`) of each node's API, by node name, so
   * that a recording's URL points at the node whose disk holds it. Absent on a single
   * node: recording URLs are paths on this API.
   */
  apiBases?: () => Promise<Map<string, string>>;
  /** The programme guide (src/guide/); optional like ondemand. */
  programme?: Pick<ProgrammeGuide, 'read'>;
  /** Wall-clock programmes (src/schedule/programme-service.ts); optional like ondemand. */
  programmes?: Pick<ProgrammeService, 'set' | 'clear'>;
}

const DateTime = new GraphQLScalarType<Date | null, string>({
  name: 'DateTime',
  serialize: (v) => (v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString()),
  parseValue: (v) => new Date(String(v)),
  parseLiteral: (ast) => (ast.kind === Kind.STRING ? new Date(ast.value) : null),
});

function missing(what: string): never {
  throw new Error(`${what} is not wired into this API server`);
}

/** Per playlist item, how it plays under the channel's output profile; empty without one. */
function conformView(rec: ChannelRecord) {
  const profile = parseProfileKey(rec.outputProfile);
  if (profile === null) return [];
  return playlistOf(rec).map((item, index) => {
    const { state, progress, error, renditionId } = conformOf(item, profile);
    return { index, item, state, progress, error, renditionId };
  });
}

/** A channel's wall-clock programme as schema.graphql's ChannelProgramme; null without one. */
function programmeView(rec: ChannelRecord) {
  const p = rec.programme;
  if (p === null) return null;
  return {
    timeZone: p.timeZone,
    dayStart: formatTimeOfDay(p.dayStartSecond),
    filler: p.fillers.map((f) => f.vodResource),
    updatedAt: p.updatedAt,
    entries: p.entries.map((e) => ({
      start: e.start,
      durationSeconds: e.durationSeconds,
      items: e.items.map((i) => i.vodResource),
      breaks: parseBreaks(e.breaks),
      sourceUrl: e.sourceUrl === null ? null : maskUrl(e.sourceUrl),
    })),
  };
}

function channelView(channels: ChannelService, rec: ChannelRecord) {
  return {
    ...rec,
    sourceUrl: rec.sourceUrl === null ? null : maskUrl(rec.sourceUrl),
    backupUrl: rec.backupUrl === null ? null : maskUrl(rec.backupUrl),
    slate: rec.slateVodResource,
    transcode: rec.liveTranscode,
    playUrls: channels.playUrls(rec),
    pushTargets: rec.pushTargets.map((t) => ({ position: t.position, url: maskUrl(t.url), ...channels.targetStats(rec.id, t.position, rec.status === 'LIVING') })),
    playlist: playlistOf(rec),
    channelProgramme: programmeView(rec),
    outputProfile: parseProfileKey(rec.outputProfile),
    conform: conformView(rec),
    items: wholeList(playlistOf(rec), rec.liveItems, breaksOf(rec)).map(entryView),
    worker: rec.workerId,
    recording: { enabled: rec.recordingEnabled, segmentSeconds: rec.recordingSegmentSeconds, retainHours: rec.recordingRetainHours },
    snapshot: { enabled: rec.snapshotEnabled, intervalSeconds: rec.snapshotIntervalSeconds },
    snapUrl: rec.snapTakenAt === null ? null : `/snapshots/${rec.id}.jpg`,
    snapStale: rec.snapshotEnabled && isActive(rec.status) && isStale(rec.snapTakenAt, rec.startedAt, rec.snapshotIntervalSeconds),
    warnings: channels.warningsOf(rec.id),
    viewers: channels.viewersOf(rec.id),
  };
}

/**
 * snapTimeout: a snapshot is stale once it is older than two intervals plus
 * 10 s (a keyframe may be a whole GOP away when the interval comes round),
 * counted from the channel's start when none was taken since.
 */
function isStale(takenAt: Date | null, startedAt: Date | null, intervalSeconds: number): boolean {
  const limitMs = (2 * intervalSeconds + 10) * 1000;
  const since = Math.max(takenAt?.getTime() ?? 0, startedAt?.getTime() ?? 0);
  return Date.now() - since > limitMs || (takenAt === null && startedAt === null);
}

/** What every resolver gets: who is asking. Queries only need a valid token. */
export interface ApiContext {
  principal: Principal;
}

/** Wraps a mutation resolver: operators only, and optionally rate limited per token. */
function operatorOnly<A, R>(fn: (args: A, ctx: ApiContext) => R, limiter?: RateLimiter) {
  return (_: unknown, args: A, ctx: ApiContext): R => {
    requireOperator(ctx.principal);
    limiter?.take(ctx.principal.name, 'starts and stops', ctx.principal.startStopsPer10s);
    return fn(args, ctx);
  };
}

export function createResolvers(deps: ApiDeps) {
  const { channels, vods } = deps;
  const view = (rec: ChannelRecord) => channelView(channels, rec);
  const startStop = new RateLimiter(apiLimits.startStopPerWindow, apiLimits.startStopWindowMs);
  const ondemand = () => deps.ondemand ?? missing('on-demand');
  const schedules = () => deps.schedules ?? missing('schedules');
  const programmes = () => deps.programmes ?? missing('programmes');
  /** The channel a subscription watches (null: all of them), checked before anything is subscribed. */
  const watched = async (raw: string | null | undefined): Promise<string | null> => {
    const id = raw == null ? null : checkId('id', raw);
    if (id !== null && !(await channels.get(id))) throw notFound('virtual live', id);
    return id;
  };
  const hooks = webhookResolvers(() => deps.webhooks ?? missing('webhooks'));
  const guide = programmeResolvers(() => deps.programme ?? missing('programme guide'), vods);
  const playout = playoutResolvers({
    channels,
    vods,
    view: async (id) => {
      const rec = await channels.get(id);
      return rec ? view(rec) : null;
    },
  });
  return {
    DateTime,
    Query: {
      ...hooks.Query,
      ...guide.Query,
      virtualLives: async () => (await channels.list()).map(view),
      virtualLive: async (_: unknown, a: { id: string }) => {
        const rec = await channels.get(checkId('id', a.id));
        return rec ? view(rec) : null;
      },
      vodResources: async () => vods.list(),
      workers: () =>
        Promise.all(deps.workers().map(async (w) => ({ ...w, state: w.state.toUpperCase(), cpuSeconds: w.pid === null ? null : await readCpuSeconds(w.pid) }))),
      nodes: () => deps.nodes(),
    },
    Mutation: {
      registerVodResource: operatorOnly(async (a: { input: { name: string; path: string; transcode?: TranscodeInput | null } }) => vods.register(a.input)),
      createVirtualLive: operatorOnly(async (a: { input: CreateInput }) => view(await channels.create(a.input))),
      updateVirtualLive: operatorOnly(async (a: { id: string; input: UpdateInput }) =>
        view(await channels.update(checkId('id', a.id), a.input)),
      ),
      deleteVirtualLive: operatorOnly((a: { id: string }) => channels.delete(checkId('id', a.id))),
      startVirtualLive: operatorOnly(async (a: { id: string }) => view(await channels.start(checkId('id', a.id))), startStop),
      stopVirtualLive: operatorOnly(async (a: { id: string }) => view(await channels.stop(checkId('id', a.id))), startStop),
      // Any valid token: a player (HLS or an app) keeps its channel up this way. Rate
      // limited with starts and stops, since a touch may start a channel.
      touchVirtualLive: async (_: unknown, a: { id: string }, ctx: ApiContext) => {
        startStop.take(ctx.principal.name, 'starts and stops', ctx.principal.startStopsPer10s);
        return view(await ondemand().touch(checkId('id', a.id)));
      },
      addSchedule: operatorOnly((a: { virtualLiveId: string; input: ScheduleInput }) => schedules().add(checkId('virtualLiveId', a.virtualLiveId), a.input)),
      removeSchedule: operatorOnly((a: { id: string }) => schedules().remove(checkId('id', a.id))),
      setProgramme: operatorOnly(async (a: { virtualLiveId: string; input: ProgrammeInput }) => view(await programmes().set(checkId('virtualLiveId', a.virtualLiveId), a.input))),
      clearProgramme: operatorOnly(async (a: { virtualLiveId: string }) => view(await programmes().clear(checkId('virtualLiveId', a.virtualLiveId)))),
      ...playout.Mutation,
      ...hooks.Mutation,
    },
    Subscription: {
      virtualLiveStatusChanged: {
        subscribe: async (_: unknown, a: { id?: string | null }) => statusChanges(deps.events, await watched(a.id)),
        resolve: (change: StatusChange) => change,
      },
      virtualLiveStatusChanges: {
        subscribe: async (_: unknown, a: { id?: string | null }) => statusChangeBatches(deps.events, await watched(a.id)),
        resolve: (batch: StatusChange[]) => batch,
      },
    },
    VirtualLive: {
      ...playout.VirtualLive,
      schedules: (v: { id: string }) => schedules().list(v.id),
      nextScheduledAction: async (v: { id: string }) => {
        const s = await schedules().next(v.id);
        return s?.nextRunAt ? { action: s.action, at: s.nextRunAt, scheduleId: s.id } : null;
      },
      recordings: async (v: { id: string }) => {
        const rows = await channels.recordings(v.id);
        const bases = deps.apiBases !== undefined && rows.length > 0 ? await deps.apiBases() : null;
        return rows.map((r) => {
          // A holder that is not registered (stopped for good) leaves the bare path.
          const base = r.nodeName === null ? undefined : bases?.get(r.nodeName);
          return { url: `${base ?? ''}/${r.path}`, node: r.nodeName, startedAt: r.startedAt, durationSeconds: r.durationSeconds, sizeBytes: r.sizeBytes };
        });
      },
    },
    VodResource: {
      renditions: async (v: { id: string }) =>
        (await vods.renditions(v.id)).map((r) => ({ ...r, profile: parseProfileKey(r.profileKey) })),
    },
    StatusChange: {
      ...playout.StatusChange,
      virtualLive: async (change: StatusChange) => {
        const rec = await channels.get(change.id);
        return rec ? view(rec) : null;
      },
    },
  };
}
