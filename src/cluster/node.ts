/**
 * This node's place among the service's nodes, wired once. On PostgreSQL it
 * is a cluster member: the lease keeper and the LISTEN/NOTIFY bus
 * (leases.ts, bus.ts). Otherwise it is a single node that describes itself
 * from memory. app.ts calls startCluster() and never asks which it got.
 *
 * Owns the order of the cluster's parts: the keeper is stopped before the
 * bus is closed, and join() starts the bus before the keeper's first claim.
 * Imports channels (the status events and the port the channel domain
 * writes through), the pool (capacity, the worker fence) and db; nothing
 * above them. The admission's room and reservation come in as functions.
 */
import { randomUUID } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { StatusEvents } from '../channels/events.js';
import type { ClusterPort } from '../channels/ports.js';
import type { Database } from '../db/client.js';
import type { Logger } from '../log.js';
import type { WorkerPool } from '../pool/pool.js';
import { ClusterBus } from './bus.js';
import { apiBasesByName, LeaseKeeper, type LeaseHolder, type NodeView } from './leases.js';

/** What the node calls on the channel domain (ChannelService). */
export interface ClusterChannels extends LeaseHolder {
  onPlaylistChanged(channelId: string): void;
  /** Channels this node runs now. */
  runningCount(): number;
}

export interface ClusterOptions {
  readonly db: Database;
  readonly nodeName: string;
  readonly leaseMs: number;
  readonly nodeHeartbeatMs: number;
  readonly pool: Pick<WorkerPool, 'capacity' | 'setFence'>;
  /** What this node's budgets still admit, and the reservation of what it claimed (cluster only). */
  readonly admission: { room(): number; reserve(n: number): void };
  /** Every status change; in a cluster the bus adds the other nodes' to it. */
  readonly events: StatusEvents;
  /** Where this node's API answers; known only once the API listens. */
  readonly apiUrl: () => string;
  readonly startedAt: Date;
  readonly log: Logger;
}

export interface ClusterNode {
  readonly nodeId: string;
  /** What the channel domain writes through (claims, fenced writes); null on a single node. */
  readonly port: ClusterPort | null;
  /**
   * This node's own status changes. In a cluster `events` also carries the
   * other nodes' (for subscriptions); metrics count only this node's.
   */
  readonly ownEvents: StatusEvents;
  /** Late binding: the channel service needs `port`, and the node needs the service. Before join(). */
  attach(channels: ClusterChannels): void;
  /** Every node the API shows. */
  nodes(): Promise<NodeView[]>;
  /** Each node's API base by name, for recording URLs on the node that holds them; absent on a single node. */
  readonly apiBases?: () => Promise<Map<string, string>>;
  /** Before the first reconcile: registers the node, fences the workers and claims its share of the orphans. */
  join(): Promise<void>;
  /** After the channels have handed over (their hand-over releases leases). */
  stop(): Promise<void>;
}

/** A cluster member on PostgreSQL, or a single node when the database is SQLite. */
export function startCluster(o: ClusterOptions): ClusterNode {
  const nodeId = randomUUID();
  return o.db.postgresUrl === null ? singleNode(o, nodeId) : clusterMember(o, nodeId, o.db.postgresUrl);
}

function singleNode(o: ClusterOptions, nodeId: string): ClusterNode {
  let channels: ClusterChannels | null = null;
  return {
    nodeId,
    port: null,
    ownEvents: o.events,
    attach: (c) => {
      channels = c;
    },
    // This one, described from memory.
    nodes: async () => [
      {
        id: nodeId,
        name: o.nodeName,
        apiUrl: o.apiUrl(),
        startedAt: o.startedAt,
        heartbeatAt: new Date(),
        alive: true,
        capacity: o.pool.capacity().total,
        running: channels?.runningCount() ?? 0,
        cpuLoad: loadavg()[0]! / availableParallelism(),
      },
    ],
    join: async () => undefined,
    stop: async () => undefined,
  };
}

function clusterMember(o: ClusterOptions, nodeId: string, connectionString: string): ClusterNode {
  let channels: ClusterChannels | null = null;
  const keeper = new LeaseKeeper({
    db: o.db.prisma,
    nodeId,
    nodeName: o.nodeName,
    get apiUrl() {
      return o.apiUrl();
    },
    leaseMs: o.leaseMs,
    heartbeatMs: o.nodeHeartbeatMs,
    capacity: () => o.pool.capacity().total,
    running: () => channels?.runningCount() ?? 0,
    room: () => o.admission.room(),
    reserve: (n) => o.admission.reserve(n),
    fence: (untilMs) => o.pool.setFence(untilMs),
    log: o.log.child({ part: 'cluster' }),
  });
  const bus = new ClusterBus({
    connectionString,
    nodeId,
    events: o.events,
    log: o.log.child({ part: 'cluster-bus' }),
    onDesired: (id, desired) => {
      if (desired === 'RUNNING') keeper.poke();
      else channels?.onDesiredChanged(id, desired);
    },
    onPlaylist: (id) => channels?.onPlaylistChanged(id),
    onResync: () => keeper.poke(),
  });
  const ownEvents = new StatusEvents();
  o.events.subscribe((change) => {
    if (!bus.isRemote(change)) ownEvents.publish(change);
  });
  return {
    nodeId,
    port: keeper,
    ownEvents,
    attach: (c) => {
      channels = c;
      keeper.attach(c, bus);
    },
    nodes: () => keeper.nodes(),
    apiBases: async () => apiBasesByName(await keeper.nodes()),
    join: async () => {
      await bus.start();
      await keeper.start();
    },
    stop: async () => {
      await keeper.stop();
      await bus.close();
    },
  };
}
