/**
 * Prisma access for channels and VOD resources. Status writes go through
 * `writeStatus` and `writeFenced`, which only the status writer
 * (channels/writer.ts) calls, after the transition table allowed the move.
 * The database keeps statuses as strings; every record is parsed here once,
 * so the rest of the house reads typed statuses and never casts.
 */
import type { PlaylistItem, PlaylistLiveItem, PrismaClient, Programme, ProgrammeEntry, ProgrammeEntryItem, ProgrammeFillerItem, PushTarget, Recording, VirtualLive, VodResource, VodRendition } from '../generated/prisma-sqlite/client.js';
import { vodPositions } from '../pool/pipeline-spec.js';
import type { LiveItemFields } from './live-items.js';
import { parseBreaks, type StoredBreak } from './ad-breaks.js';
import { isActiveSource, isDesiredState, isLiveStatus, type ActiveSource, type DesiredState, type LiveStatus } from './status.js';

export type Db = PrismaClient;

/** A VirtualLive row with its status fields typed (see `parseStatuses`). */
export type ChannelRow = Omit<VirtualLive, 'status' | 'desiredState' | 'activeSource'> & {
  status: LiveStatus;
  desiredState: DesiredState;
  activeSource: ActiveSource;
};

/** A VOD resource with its renditions (output profiles, src/vods/conform.ts). */
export type ChannelVod = VodResource & { renditions: VodRendition[] };

/** A channel's wall-clock programme (issue #22 item 1) with its filler and entries, in order. */
export type ChannelProgramme = Programme & {
  fillers: (ProgrammeFillerItem & { vodResource: ChannelVod })[];
  entries: (ProgrammeEntry & { items: (ProgrammeEntryItem & { vodResource: ChannelVod })[] })[];
};

export type ChannelRecord = ChannelRow & {
  pushTargets: PushTarget[];
  vodResource: ChannelVod | null;
  slateVodResource: ChannelVod | null;
  playlistItems: (PlaylistItem & { vodResource: ChannelVod })[];
  liveItems: PlaylistLiveItem[];
  programme: ChannelProgramme | null;
};

/** What setProgramme stores: entries in programme order, each with its VOD ids in order. */
export interface ProgrammeFields {
  timeZone: string;
  dayStartSecond: number;
  /** VOD ids played in turn in the gaps. */
  filler: string[];
  /** `breaks`: a single-file entry's ad breaks (ad-breaks.ts), stored as JSON. */
  entries: { start: string; durationSeconds: number | null; items: string[]; breaks: StoredBreak[]; sourceUrl: string | null }[];
}

/**
 * Types a row's status fields. A value outside the unions is a corrupt row
 * (written by hand, or by a newer version): it throws here rather than
 * travel on as a state the table does not know.
 */
export function parseStatuses<T extends Pick<VirtualLive, 'id' | 'status' | 'desiredState' | 'activeSource'>>(
  row: T,
): Omit<T, 'status' | 'desiredState' | 'activeSource'> & { status: LiveStatus; desiredState: DesiredState; activeSource: ActiveSource } {
  const { status, desiredState, activeSource } = row;
  if (!isLiveStatus(status)) throw new Error(`corrupt status ${status} on channel ${row.id}`);
  if (!isDesiredState(desiredState)) throw new Error(`corrupt desiredState ${desiredState} on channel ${row.id}`);
  if (!isActiveSource(activeSource)) throw new Error(`corrupt activeSource ${activeSource} on channel ${row.id}`);
  return { ...row, status, desiredState, activeSource };
}

const parseOrNull = <T extends Pick<VirtualLive, 'id' | 'status' | 'desiredState' | 'activeSource'>>(row: T | null) => (row === null ? null : parseStatuses(row));

const withRenditions = { include: { renditions: true } } as const;

const include = {
  pushTargets: { orderBy: { position: 'asc' } },
  vodResource: withRenditions,
  slateVodResource: withRenditions,
  playlistItems: { orderBy: { position: 'asc' }, include: { vodResource: withRenditions } },
  liveItems: { orderBy: { position: 'asc' } },
  programme: {
    include: {
      fillers: { orderBy: { position: 'asc' }, include: { vodResource: withRenditions } },
      entries: { orderBy: { position: 'asc' }, include: { items: { orderBy: { position: 'asc' }, include: { vodResource: withRenditions } } } },
    },
  },
} as const;

/** A programme's VOD resources, each once: the filler's first (a channel starts on it), then the entries' in order. */
export function programmeVods(p: ChannelProgramme): ChannelVod[] {
  const out = new Map<string, ChannelVod>(p.fillers.map((f) => [f.vodResource.id, f.vodResource]));
  for (const e of p.entries) for (const i of e.items) if (!out.has(i.vodResource.id)) out.set(i.vodResource.id, i.vodResource);
  return [...out.values()];
}

/**
 * The ad breaks of each of playlistOf(rec)'s items, in the same order (none
 * for a channel made before playlists, nor for a programme's items: a
 * programme's breaks belong to its entries and reach the worker with their
 * slots, programme-service.ts).
 */
export function breaksOf(rec: ChannelRecord): StoredBreak[][] {
  if (rec.programme !== null) return programmeVods(rec.programme).map(() => []);
  return rec.playlistItems.map((i) => parseBreaks(i.breaks));
}

/**
 * A VOD channel's items in order: its programme's (programmeVods), else its
 * playlist, or its one resource (channels made before playlists).
 */
export function playlistOf(rec: ChannelRecord): ChannelVod[] {
  if (rec.programme !== null) return programmeVods(rec.programme);
  if (rec.playlistItems.length > 0) return rec.playlistItems.map((i) => i.vodResource);
  return rec.vodResource === null ? [] : [rec.vodResource];
}

export interface ChannelFields {
  name: string;
  sourceType: 'VOD' | 'ONLINE';
  vodResourceId: string | null;
  sourceUrl: string | null;
  loop: boolean;
  connectTimeoutMs: number;
  pushTargets: string[];
  /** VOD resource ids in play order; vodResourceId is the first. Empty for ONLINE. */
  playlist: string[];
  /** Live items among them, at their positions in the whole list (live-items.ts); a new playlist without it has none. */
  liveItems?: LiveItemFields[];
  /** Ad breaks of each VOD item, by the order of playlist (ad-breaks.ts); a new playlist without it has none. */
  breaks?: StoredBreak[][];
  rtspTransport?: 'TCP' | 'UDP';
  maxReconnectAttempts?: number | null;
  backupUrl?: string | null;
  liveTranscode?: 'AUTO' | 'NEVER' | 'ALWAYS';
  failoverAfterFailures?: number;
  failoverAfterMs?: number;
  slateVodResourceId?: string | null;
  recordingEnabled?: boolean;
  recordingSegmentSeconds?: number;
  recordingRetainHours?: number;
  snapshotEnabled?: boolean;
  snapshotIntervalSeconds?: number;
  onDemand?: boolean;
  touchDurationSeconds?: number;
  idleDelaySeconds?: number;
  hls?: boolean;
  /** VOD: the output profile's key (src/media/output-profile.ts), null for none. */
  outputProfile?: string | null;
}

export interface StatusWrite {
  status: LiveStatus;
  errorString?: string | null;
  workerId?: string | null;
  startedAt?: Date | null;
  stoppedAt?: Date | null;
  desiredState?: DesiredState;
  startCount?: { increment: number };
  restartCount?: { increment: number };
  reconnectAttempts?: number;
  nextAttemptAt?: Date | null;
  activeSource?: ActiveSource;
  /** Why the service stopped the channel by itself; null otherwise. */
  stopReason?: string | null;
}

/**
 * Whose write this is, in cluster mode. `owner`: the lease holder, refused once
 * another node has claimed the channel (its epoch moved on). `unowned`: a node
 * settling a channel nobody holds a live lease on (a stop of an orphan).
 */
export type WriteFence = { kind: 'owner'; nodeId: string; epoch: number } | { kind: 'unowned' };

/** A conditional write found the lease gone: another node owns the channel now. */
export class LeaseLostError extends Error {
  constructor(readonly channelId: string) {
    super(`this node no longer holds the lease of channel ${channelId}`);
    this.name = 'LeaseLostError';
  }
}

export class ChannelRepository {
  /**
   * @param nodeName stamped on every recording row this process adds: the node
   *   whose data dir holds the file (src/recording/retention.ts sweeps by it).
   */
  constructor(
    private readonly db: Db,
    private readonly nodeName: string | null = null,
  ) {}

  async get(id: string): Promise<ChannelRecord | null> {
    return parseOrNull(await this.db.virtualLive.findUnique({ where: { id }, include }));
  }

  async list(): Promise<ChannelRecord[]> {
    return (await this.db.virtualLive.findMany({ include, orderBy: { createdAt: 'asc' } })).map(parseStatuses);
  }

  /** Ids only: the reconciler reads each record again under its lock, and runs every few seconds. */
  listDesiredRunning(): Promise<{ id: string }[]> {
    return this.db.virtualLive.findMany({ where: { desiredState: 'RUNNING' }, select: { id: true } });
  }

  /** Channels whose status says a pipeline runs although nobody wants it (left by a crash). */
  listStaleActive(): Promise<{ id: string }[]> {
    return this.db.virtualLive.findMany({
      where: { desiredState: 'STOPPED', status: { in: ['STARTING', 'LIVING', 'RECONNECTING'] } },
      select: { id: true },
    });
  }

  async create(fields: ChannelFields): Promise<ChannelRecord> {
    const { pushTargets, playlist, liveItems = [], breaks = [], ...rest } = fields;
    const positions = vodPositions(playlist.length, liveItems.map((l) => l.position));
    const row = await this.db.virtualLive.create({
      data: {
        ...rest,
        pushTargets: { create: pushTargets.map((url, i) => ({ url, position: i + 1 })) },
        playlistItems: { create: playlist.map((vodResourceId, i) => ({ vodResourceId, position: positions[i] ?? i, breaks: JSON.stringify(breaks[i] ?? []) })) },
        liveItems: { create: liveItems },
      },
      include,
    });
    return parseStatuses(row);
  }

  /** Replaces the given fields; a new pushTargets or playlist replaces the old one whole. */
  async update(id: string, fields: Partial<ChannelFields>): Promise<ChannelRecord> {
    const { pushTargets, playlist, liveItems = [], breaks = [], ...rest } = fields;
    const row = await this.db.$transaction(async (tx) => {
      if (playlist !== undefined) {
        const positions = vodPositions(playlist.length, liveItems.map((l) => l.position));
        await tx.playlistItem.deleteMany({ where: { virtualLiveId: id } });
        await tx.playlistLiveItem.deleteMany({ where: { virtualLiveId: id } });
        await tx.playlistItem.createMany({
          data: playlist.map((vodResourceId, i) => ({ virtualLiveId: id, vodResourceId, position: positions[i] ?? i, breaks: JSON.stringify(breaks[i] ?? []) })),
        });
        await tx.playlistLiveItem.createMany({ data: liveItems.map((l) => ({ virtualLiveId: id, ...l })) });
      }
      if (pushTargets !== undefined) {
        await tx.pushTarget.deleteMany({ where: { virtualLiveId: id } });
        await tx.pushTarget.createMany({
          data: pushTargets.map((url, i) => ({ virtualLiveId: id, url, position: i + 1 })),
        });
      }
      return tx.virtualLive.update({ where: { id }, data: rest, include });
    });
    return parseStatuses(row);
  }

  async delete(id: string): Promise<void> {
    await this.db.virtualLive.delete({ where: { id } });
  }

  async writeStatus(id: string, write: Partial<StatusWrite>): Promise<ChannelRecord> {
    return parseStatuses(await this.db.virtualLive.update({ where: { id }, data: write, include }));
  }

  /**
   * A write that only lands while the fence holds (cluster mode): one conditional
   * UPDATE, so a stale owner cannot overwrite what the new owner wrote.
   * @throws LeaseLostError when no row matched.
   */
  async writeFenced(id: string, write: Partial<StatusWrite>, fence: WriteFence): Promise<ChannelRecord> {
    const where =
      fence.kind === 'owner'
        ? { id, ownerNodeId: fence.nodeId, leaseEpoch: fence.epoch }
        : { id, OR: [{ ownerNodeId: null }, { leaseExpiresAt: null }, { leaseExpiresAt: { lt: new Date() } }] };
    const { count } = await this.db.virtualLive.updateMany({ where, data: write });
    if (count === 0) throw new LeaseLostError(id);
    const rec = await this.get(id);
    if (rec === null) throw new LeaseLostError(id);
    return rec;
  }

  /** The operator asked for a start: desired RUNNING, one more start counted. */
  async markStartRequested(id: string): Promise<void> {
    await this.db.virtualLive.update({ where: { id }, data: { desiredState: 'RUNNING', startCount: { increment: 1 } } });
  }

  async setWorker(id: string, workerId: string | null): Promise<void> {
    await this.db.virtualLive.update({ where: { id }, data: { workerId } });
  }

  async setDesired(id: string, desiredState: DesiredState): Promise<ChannelRecord> {
    return parseStatuses(await this.db.virtualLive.update({ where: { id }, data: { desiredState }, include }));
  }

  /**
   * Lists a closed segment, held by this node. Not fenced by the lease: the file is
   * on this node's disk whoever runs the channel now (a fence finalises the last
   * segment after the lease is gone), and only a row lets retention find it.
   */
  async addRecording(data: { virtualLiveId: string; path: string; startedAt: Date; durationSeconds: number; sizeBytes: number }): Promise<void> {
    await this.db.recording.create({ data: { ...data, nodeName: this.nodeName } });
  }

  /** The seed's touchTime: a sign of interest in the channel. */
  async touch(id: string, at: Date): Promise<void> {
    await this.db.virtualLive.update({ where: { id }, data: { touchedAt: at } });
  }

  /** Every channel's id and hls choice: which origin application its players are in. */
  streams(): Promise<{ id: string; hls: boolean }[]> {
    return this.db.virtualLive.findMany({ select: { id: true, hls: true } });
  }

  /** The hls choice of these channels, as saved now; one query for the reconciler. */
  hlsOf(ids: readonly string[]): Promise<{ id: string; hls: boolean }[]> {
    return this.db.virtualLive.findMany({ where: { id: { in: [...ids] } }, select: { id: true, hls: true } });
  }

  /** On-demand channels that are wanted running: the ones the idle check looks at. */
  async listOnDemandRunning(): Promise<ChannelRow[]> {
    return (await this.db.virtualLive.findMany({ where: { onDemand: true, desiredState: 'RUNNING' } })).map(parseStatuses);
  }

  /**
   * The latest snapshot's time. In cluster mode (`owner` given) it lands only while
   * that lease holds: a stale owner's late snapshot must not replace the new
   * owner's. False when the write was refused.
   */
  async setSnapTakenAt(id: string, at: Date, owner?: { nodeId: string; epoch: number }): Promise<boolean> {
    const where = owner === undefined ? { id } : { id, ownerNodeId: owner.nodeId, leaseEpoch: owner.epoch };
    const { count } = await this.db.virtualLive.updateMany({ where, data: { snapTakenAt: at } });
    return count > 0;
  }

  /** A channel's closed segments, oldest first. */
  recordings(id: string): Promise<Recording[]> {
    return this.db.recording.findMany({ where: { virtualLiveId: id }, orderBy: { startedAt: 'asc' } });
  }

  /** Replaces the channel's programme (ProgrammeFields), or removes it (null), in one transaction. */
  async setProgramme(id: string, p: ProgrammeFields | null): Promise<void> {
    await this.db.$transaction(async (tx) => {
      await tx.programme.deleteMany({ where: { virtualLiveId: id } });
      if (p === null) return;
      await tx.programme.create({
        data: {
          virtualLiveId: id,
          timeZone: p.timeZone,
          dayStartSecond: p.dayStartSecond,
          fillers: { create: p.filler.map((vodResourceId, position) => ({ position, vodResourceId })) },
          entries: {
            create: p.entries.map((e, position) => ({
              position,
              start: e.start,
              durationSeconds: e.durationSeconds,
              breaks: JSON.stringify(e.breaks),
              sourceUrl: e.sourceUrl,
              items: { create: e.items.map((vodResourceId, i) => ({ position: i, vodResourceId })) },
            })),
          },
        },
      });
    });
  }

  getVod(id: string): Promise<ChannelVod | null> {
    return this.db.vodResource.findUnique({ where: { id }, ...withRenditions });
  }

  /** The resources with these ids, in the order given (repeats allowed); missing ids are left out. */
  async getVods(ids: readonly string[]): Promise<ChannelVod[]> {
    const found = await this.db.vodResource.findMany({ where: { id: { in: [...new Set(ids)] } }, ...withRenditions });
    const byId = new Map(found.map((v) => [v.id, v]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  }
}
