/**
 * Prisma access for channels and VOD resources. Status writes go through
 * `writeStatus`, which the service calls only after the transition table
 * allowed the move.
 */
import type { PrismaClient, PushTarget, VirtualLive, VodResource } from '../generated/prisma-sqlite/client.js';
import type { DesiredState, LiveStatus } from './status.js';

export type Db = PrismaClient;
export type ChannelRecord = VirtualLive & { pushTargets: PushTarget[]; vodResource: VodResource | null };

const include = { pushTargets: { orderBy: { position: 'asc' } }, vodResource: true } as const;

export interface ChannelFields {
  name: string;
  sourceType: 'VOD' | 'ONLINE';
  vodResourceId: string | null;
  sourceUrl: string | null;
  loop: boolean;
  connectTimeoutMs: number;
  pushTargets: string[];
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
}

export class ChannelRepository {
  constructor(private readonly db: Db) {}

  get(id: string): Promise<ChannelRecord | null> {
    return this.db.virtualLive.findUnique({ where: { id }, include });
  }

  list(): Promise<ChannelRecord[]> {
    return this.db.virtualLive.findMany({ include, orderBy: { createdAt: 'asc' } });
  }

  listDesiredRunning(): Promise<ChannelRecord[]> {
    return this.db.virtualLive.findMany({ where: { desiredState: 'RUNNING' }, include });
  }

  /** Channels whose status says a pipeline runs although nobody wants it (left by a crash). */
  listStaleActive(): Promise<ChannelRecord[]> {
    return this.db.virtualLive.findMany({
      where: { desiredState: 'STOPPED', status: { in: ['STARTING', 'LIVING', 'RECONNECTING'] } },
      include,
    });
  }

  create(fields: ChannelFields): Promise<ChannelRecord> {
    const { pushTargets, ...rest } = fields;
    return this.db.virtualLive.create({
      data: { ...rest, pushTargets: { create: pushTargets.map((url, i) => ({ url, position: i + 1 })) } },
      include,
    });
  }

  /** Replaces the given fields; a new pushTargets list replaces the old one whole. */
  update(id: string, fields: Partial<ChannelFields>): Promise<ChannelRecord> {
    const { pushTargets, ...rest } = fields;
    return this.db.$transaction(async (tx) => {
      if (pushTargets !== undefined) {
        await tx.pushTarget.deleteMany({ where: { virtualLiveId: id } });
        await tx.pushTarget.createMany({
          data: pushTargets.map((url, i) => ({ virtualLiveId: id, url, position: i + 1 })),
        });
      }
      return tx.virtualLive.update({ where: { id }, data: rest, include });
    });
  }

  async delete(id: string): Promise<void> {
    await this.db.virtualLive.delete({ where: { id } });
  }

  writeStatus(id: string, write: StatusWrite): Promise<ChannelRecord> {
    return this.db.virtualLive.update({ where: { id }, data: write, include });
  }

  /** The operator asked for a start: desired RUNNING, one more start counted. */
  async markStartRequested(id: string): Promise<void> {
    await this.db.virtualLive.update({ where: { id }, data: { desiredState: 'RUNNING', startCount: { increment: 1 } } });
  }

  async setWorker(id: string, workerId: string | null): Promise<void> {
    await this.db.virtualLive.update({ where: { id }, data: { workerId } });
  }

  setDesired(id: string, desiredState: DesiredState): Promise<ChannelRecord> {
    return this.db.virtualLive.update({ where: { id }, data: { desiredState }, include });
  }

  getVod(id: string): Promise<VodResource | null> {
    return this.db.vodResource.findUnique({ where: { id } });
  }
}
