/**
 * Channel ownership in a cluster (PostgreSQL mode): this node's row in "Node", its
 * leases on channels, the worker fence, and placement.
 *
 * Every heartbeat (nodeHeartbeatMs) one tick runs, never two at once:
 * 1. renew: one statement upserts this node's row and extends every lease it still
 *    holds (owner = this node, not yet expired). A lease missing from the answer,
 *    or with another epoch, was lost: the channel is dropped here without a write.
 *    After a successful renewal that started at t0 the workers are told to stop
 *    everything by t0 + lease − 2 × heartbeat (the fence, src/worker/host.ts): the
 *    database gave the lease until at least t0 + lease, so pipelines stop well
 *    before any other node may claim, even if this process is frozen.
 * 2. place: channels wanted RUNNING with no live lease are claimed with
 *    `SELECT … FOR UPDATE SKIP LOCKED` in one statement that raises leaseEpoch, so
 *    racing nodes claim disjoint rows. A node claims at most its fair share,
 *    ceil((owned + orphaned) / live nodes with capacity) − what it holds, and never
 *    beyond its free slots: the least-loaded nodes take the most, and someone always claims.
 *
 * Every time comparison happens in the database (now() in UTC, the way Prisma stores
 * DateTime), so nodes' clocks need not agree; only the fence uses the local clock,
 * and only for durations measured on this host.
 */
import { loadavg, availableParallelism } from 'node:os';
import type { ClusterPort } from '../channels/ports.js';
import type { PrismaClient } from '../db/client.js';
import type { Logger } from '../log.js';
import { SerialPass } from '../serial-pass.js';

/** The database's clock as Prisma stores DateTime: timestamp without time zone, in UTC. */
const dbNow = `(now() AT TIME ZONE 'UTC')`;
const ms = (param: string): string => `(${param}::integer * interval '1 millisecond')`;
/** Most channels one placement pass claims; the rest wait for the next heartbeat. */
const maxClaimBatch = 50;
/** Rows of nodes silent for this long are deleted at start-up. */
const forgetNodesAfterMs = 24 * 3600 * 1000;

export interface LeaseKeeperOptions {
  readonly db: PrismaClient;
  readonly nodeId: string;
  readonly nodeName: string;
  readonly apiUrl: string;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  /** Pipeline slots of this node's ready workers. */
  readonly capacity: () => number;
  /** Channels this node runs now. */
  readonly running: () => number;
  /**
   * How many more channels this node's CPU and memory budgets admit now
   * (admission.ts); default: no limit beyond the slots. A node claims no
   * more than this, and advertises no more, so the others take the rest.
   */
  readonly room?: () => number;
  /** Channels just claimed without admission's check: reserve their expected cost. */
  readonly reserve?: (n: number) => void;
  /** Tells every worker to stop all pipelines by this wall-clock time unless renewed. */
  readonly fence: (untilMs: number) => void;
  readonly log: Logger;
}

/** What the keeper calls on the channel domain. */
export interface LeaseHolder {
  runClaimed(channelId: string): void;
  onLeaseLost(channelId: string): void;
  onDesiredChanged(channelId: string, desired: 'RUNNING' | 'STOPPED'): void;
}

/** What the keeper sends through the bus (src/cluster/bus.ts). */
export interface ClusterMessages {
  desiredChanged(channelId: string, desired: 'RUNNING' | 'STOPPED'): void;
  playlistChanged(channelId: string): void;
}

export interface NodeView {
  id: string;
  name: string;
  apiUrl: string;
  startedAt: Date;
  heartbeatAt: Date;
  capacity: number;
  running: number;
  cpuLoad: number;
  /** Heartbeat within the lease duration. */
  alive: boolean;
}

/** Each node name's API base URL (`http://host:port`), from its newest row: a restarted node keeps its name. */
export function apiBasesByName(nodes: readonly NodeView[]): Map<string, string> {
  const newest = new Map<string, NodeView>();
  for (const n of nodes) {
    const seen = newest.get(n.name);
    if (n.apiUrl !== '' && (seen === undefined || n.heartbeatAt > seen.heartbeatAt)) newest.set(n.name, n);
  }
  return new Map([...newest].map(([name, n]) => [name, new URL(n.apiUrl).origin]));
}

export class LeaseKeeper implements ClusterPort {
  readonly nodeId: string;
  readonly #o: LeaseKeeperOptions;
  /** channel id → epoch of this node's live lease. */
  readonly #book = new Map<string, number>();
  #holder: LeaseHolder | null = null;
  #bus: ClusterMessages | null = null;
  #timer: NodeJS.Timeout | null = null;
  readonly #ticks = new SerialPass(
    () => this.#tick(),
    (err) => this.#o.log.warn('cluster heartbeat failed', { err: String(err) }),
  );
  /** Shutting down: claims nothing, and shows capacity 0 so others stop counting it in their share. */
  #leaving = false;

  constructor(options: LeaseKeeperOptions) {
    this.#o = options;
    this.nodeId = options.nodeId;
  }

  /** Wires the channel domain and the bus; before start(). */
  attach(holder: LeaseHolder, bus: ClusterMessages): void {
    this.#holder = holder;
    this.#bus = bus;
  }

  /** Registers the node, renews (fencing the workers) and places once, then every heartbeat. */
  async start(): Promise<void> {
    await this.#o.db.$executeRawUnsafe(`DELETE FROM "Node" WHERE "heartbeatAt" < ${dbNow} - ${ms('$1')}`, forgetNodesAfterMs);
    await this.#tick();
    this.#timer = setInterval(() => this.poke(), this.#o.heartbeatMs);
  }

  /** Runs a tick now (or right after the current one): a start was requested somewhere. */
  poke(): void {
    this.#ticks.run();
  }

  async #tick(): Promise<void> {
    await this.#renew();
    if (!this.#ticks.stopped && !this.#leaving) await this.#place();
  }

  /** What this node can run now: its slots, or fewer when its budgets say so (running + room). */
  #advertised(): number {
    const o = this.#o;
    return Math.min(o.capacity(), o.running() + (o.room?.() ?? Infinity));
  }

  async #renew(): Promise<void> {
    const o = this.#o;
    const t0 = Date.now();
    const cpuLoad = loadavg()[0]! / availableParallelism();
    const rows = await o.db.$queryRawUnsafe<{ id: string; leaseEpoch: number; desiredState: string }[]>(
      `WITH node AS (
         INSERT INTO "Node" (id, name, "apiUrl", "startedAt", "heartbeatAt", capacity, running, "cpuLoad")
         VALUES ($1, $2, $3, ${dbNow}, ${dbNow}, $4::integer, $5::integer, $6::double precision)
         ON CONFLICT (id) DO UPDATE SET "heartbeatAt" = ${dbNow}, capacity = $4::integer, running = $5::integer, "cpuLoad" = $6::double precision
         RETURNING 1)
       UPDATE "VirtualLive" SET "leaseExpiresAt" = ${dbNow} + ${ms('$7')}
       WHERE "ownerNodeId" = $1 AND "leaseExpiresAt" > ${dbNow} AND id = ANY($8::text[])
       RETURNING id, "leaseEpoch", "desiredState"`,
      o.nodeId,
      o.nodeName,
      o.apiUrl,
      this.#leaving ? 0 : this.#advertised(),
      o.running(),
      cpuLoad,
      o.leaseMs,
      // Only what this node believes it holds: a lease it let go of (a release whose
      // write failed) must expire, not be kept alive with nothing running.
      [...this.#book.keys()],
    );
    // The lease runs until at least t0 + leaseMs on the database's clock.
    o.fence(t0 + o.leaseMs - 2 * o.heartbeatMs);
    const held = new Map(rows.map((r) => [r.id, Number(r.leaseEpoch)]));
    for (const [id, epoch] of [...this.#book]) {
      if (held.get(id) === epoch) continue;
      this.#book.delete(id);
      o.log.warn('lease lost', { channel: id, epoch });
      this.#holder?.onLeaseLost(id);
    }
    // A stop whose notification this node missed.
    for (const r of rows) if (r.desiredState === 'STOPPED' && this.#book.has(r.id)) this.#holder?.onDesiredChanged(r.id, 'STOPPED');
  }

  async #place(): Promise<void> {
    const o = this.#o;
    const [load] = await o.db.$queryRawUnsafe<{ pending: number; owned: number; nodes: number }[]>(
      `SELECT
         (SELECT count(*) FROM "VirtualLive" WHERE "desiredState" = 'RUNNING'
            AND ("ownerNodeId" IS NULL OR "leaseExpiresAt" IS NULL OR "leaseExpiresAt" <= ${dbNow}))::integer AS pending,
         (SELECT count(*) FROM "VirtualLive" WHERE "ownerNodeId" IS NOT NULL AND "leaseExpiresAt" > ${dbNow})::integer AS owned,
         (SELECT count(*) FROM "Node" WHERE "heartbeatAt" > ${dbNow} - ${ms('$1')} AND capacity > running)::integer AS nodes`,
      o.leaseMs,
    );
    if (load === undefined || load.pending === 0) return;
    const mine = this.#book.size;
    const fairShare = Math.ceil((load.owned + load.pending) / Math.max(1, load.nodes)) - mine;
    // Shared among the nodes with room: a node whose budget is spent leaves its share to the others.
    const free = Math.min(o.capacity() - o.running(), o.room?.() ?? Infinity);
    const want = Math.min(fairShare, free, maxClaimBatch);
    if (want <= 0) return;
    const claimed = await o.db.$queryRawUnsafe<{ id: string; leaseEpoch: number }[]>(
      `WITH c AS (
         SELECT id FROM "VirtualLive"
         WHERE "desiredState" = 'RUNNING' AND ("ownerNodeId" IS NULL OR "leaseExpiresAt" IS NULL OR "leaseExpiresAt" <= ${dbNow})
         ORDER BY "leaseExpiresAt" ASC NULLS FIRST, id
         LIMIT $2::integer
         FOR UPDATE SKIP LOCKED)
       UPDATE "VirtualLive" v SET "ownerNodeId" = $1, "leaseEpoch" = v."leaseEpoch" + 1, "leaseExpiresAt" = ${dbNow} + ${ms('$3')}
       FROM c WHERE v.id = c.id
       RETURNING v.id, v."leaseEpoch"`,
      o.nodeId,
      want,
      o.leaseMs,
    );
    o.reserve?.(claimed.length);
    for (const row of claimed) {
      this.#book.set(row.id, Number(row.leaseEpoch));
      o.log.info('lease claimed', { channel: row.id, epoch: Number(row.leaseEpoch) });
      this.#holder?.runClaimed(row.id);
    }
  }

  epochOf(channelId: string): number | null {
    return this.#book.get(channelId) ?? null;
  }

  desiredChanged(channelId: string, desired: 'RUNNING' | 'STOPPED'): void {
    this.#bus?.desiredChanged(channelId, desired);
    if (desired === 'RUNNING') this.poke();
  }

  playlistChanged(channelId: string): void {
    this.#bus?.playlistChanged(channelId);
  }

  async release(channelId: string): Promise<void> {
    const epoch = this.#book.get(channelId);
    if (epoch === undefined) return;
    this.#book.delete(channelId);
    await this.#o.db.$executeRawUnsafe(
      `UPDATE "VirtualLive" SET "ownerNodeId" = NULL, "leaseExpiresAt" = NULL WHERE id = $1 AND "ownerNodeId" = $2 AND "leaseEpoch" = $3::integer`,
      channelId,
      this.nodeId,
      epoch,
    );
  }

  async leave(): Promise<void> {
    this.#leaving = true;
    await this.#o.db.$executeRawUnsafe(`UPDATE "Node" SET capacity = 0 WHERE id = $1`, this.nodeId);
  }

  /** True when this node has room now, or another live node advertised some at its last heartbeat. */
  async hasRoom(): Promise<boolean> {
    const o = this.#o;
    if (!this.#leaving && this.#advertised() > o.running()) return true;
    const rows = await o.db.$queryRawUnsafe<unknown[]>(
      `SELECT 1 FROM "Node" WHERE id <> $1 AND "heartbeatAt" > ${dbNow} - ${ms('$2')} AND capacity > running LIMIT 1`,
      this.nodeId,
      o.leaseMs,
    );
    return rows.length > 0;
  }

  async ownedElsewhere(channelId: string): Promise<boolean> {
    const rows = await this.#o.db.$queryRawUnsafe<unknown[]>(
      `SELECT 1 FROM "VirtualLive" WHERE id = $1 AND "ownerNodeId" IS NOT NULL AND "ownerNodeId" <> $2 AND "leaseExpiresAt" > ${dbNow}`,
      channelId,
      this.nodeId,
    );
    return rows.length > 0;
  }

  /** Every registered node, with its load; `alive` when its heartbeat is within the lease duration. */
  async nodes(): Promise<NodeView[]> {
    const rows = await this.#o.db.$queryRawUnsafe<NodeView[]>(
      `SELECT id, name, "apiUrl", "startedAt", "heartbeatAt", capacity, running, "cpuLoad",
              ("heartbeatAt" > ${dbNow} - ${ms('$1')}) AS alive
       FROM "Node" ORDER BY name, id`,
      this.#o.leaseMs,
    );
    return rows.map((r) => ({ ...r, capacity: Number(r.capacity), running: Number(r.running), cpuLoad: Number(r.cpuLoad) }));
  }

  /** Stops heartbeats (the leases still held expire, or were released by the channel domain) and removes the node's row. */
  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    await this.#ticks.stop();
    await this.#o.db.$executeRawUnsafe(`DELETE FROM "Node" WHERE id = $1`, this.nodeId).catch(() => undefined);
  }
}
