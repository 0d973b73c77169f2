/**
 * The cluster's message bus: PostgreSQL LISTEN/NOTIFY on one dedicated connection.
 *
 * - `vlive_status`: every status change a node makes. Each node re-publishes the
 *   others' into its own StatusEvents, so a subscription on any node sees every
 *   transition of the cluster.
 * - `vlive_desired`: an operator changed a channel's desired state. The owner stops
 *   the channel; every node runs a placement pass for a start.
 * - `vlive_playlist`: an operator edited a running channel's playlist or loop on a
 *   node that does not run it; the owner hands the new list to its pipeline.
 *
 * Payloads stay small (ids, statuses, a clipped error) under PostgreSQL's 8000-byte
 * NOTIFY limit. Delivery is at most once: a notification sent while a node's
 * connection is down is lost to it. The lease renewal re-reads desired states and the
 * placement pass runs every heartbeat, so a lost message only costs latency; a lost
 * status event is a missed subscription item (documented in the README).
 */
import pg from 'pg';
import type { StatusChange, StatusEvents } from '../channels/events.js';
import { isLiveStatus } from '../channels/status.js';
import type { Logger } from '../log.js';

const statusChannel = 'vlive_status';
const desiredChannel = 'vlive_desired';
const playlistChannel = 'vlive_playlist';
/** Error strings are clipped to this many characters in a notification. */
const maxErrorChars = 1000;
/** Wait before reconnecting a lost LISTEN connection, ms. */
const reconnectDelayMs = 1000;

export interface ClusterBusOptions {
  readonly connectionString: string;
  readonly nodeId: string;
  readonly events: StatusEvents;
  readonly log: Logger;
  /** Another node (or this one) changed a channel's desired state. */
  readonly onDesired: (channelId: string, desired: 'RUNNING' | 'STOPPED') => void;
  /** A channel's playlist or loop was edited on some node. */
  readonly onPlaylist: (channelId: string) => void;
  /** The LISTEN connection came (back) up: notifications may have been missed meanwhile. */
  readonly onResync: () => void;
}

interface StatusPayload {
  n: string;
  id: string;
  s: string;
  p: string | null;
  e: string | null;
  at: number;
  w: string[];
  ra: number;
  na: number | null;
  /** activeSource: PRIMARY, BACKUP or SLATE. */
  as: string;
  /** Viewers at the owner's origin, and whether the event reports only them. */
  v: number;
  vo?: true;
}

export class ClusterBus {
  readonly #o: ClusterBusOptions;
  #client: pg.Client | null = null;
  #closed = false;
  #retry: NodeJS.Timeout | null = null;
  #sending: Promise<void> = Promise.resolve();
  /** Changes that came from other nodes: published locally, never sent out again. */
  readonly #remote = new WeakSet<StatusChange>();
  readonly #unsubscribe: () => void;

  constructor(options: ClusterBusOptions) {
    this.#o = options;
    this.#unsubscribe = options.events.subscribe((change) => {
      // A cue point's event carries nothing the payload has (its cue stays on the node that runs the channel, like nowPlaying): one NOTIFY per cue would say nothing.
      if (change.cuePoint !== undefined) return;
      if (!this.#remote.has(change)) this.#notify(statusChannel, this.#encode(change));
    });
  }

  async start(): Promise<void> {
    await this.#connect();
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#o.connectionString });
    client.on('notification', (msg) => this.#onNotification(msg.channel, msg.payload ?? ''));
    const lost = (why: string): void => {
      if (this.#client !== client || this.#closed) return;
      this.#client = null;
      this.#o.log.warn('cluster bus connection lost; reconnecting', { why });
      client.end().catch(() => undefined);
      this.#retry = setTimeout(() => void this.#connect().catch((err: unknown) => lost(String(err))), reconnectDelayMs);
    };
    client.on('error', (err) => lost(err.message));
    client.on('end', () => lost('connection ended'));
    try {
      await client.connect();
      await client.query(`LISTEN ${statusChannel}`);
      await client.query(`LISTEN ${desiredChannel}`);
      await client.query(`LISTEN ${playlistChannel}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      if (this.#closed) return;
      this.#o.log.warn('cluster bus cannot connect; retrying', { err: String(err) });
      this.#retry = setTimeout(() => void this.#connect(), reconnectDelayMs);
      return;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#o.onResync();
  }

  /** True for a change that another node made (re-published here by the bus). */
  isRemote(change: StatusChange): boolean {
    return this.#remote.has(change);
  }

  /** Tells the owner that a channel's playlist or loop changed. */
  playlistChanged(channelId: string): void {
    this.#notify(playlistChannel, JSON.stringify({ n: this.#o.nodeId, id: channelId }));
  }

  /** Tells every node that an operator changed a channel's desired state. */
  desiredChanged(channelId: string, desired: 'RUNNING' | 'STOPPED'): void {
    this.#notify(desiredChannel, JSON.stringify({ n: this.#o.nodeId, id: channelId, d: desired }));
  }

  #notify(channel: string, payload: string): void {
    const client = this.#client;
    if (client === null) {
      this.#o.log.warn('cluster bus down; notification dropped', { channel });
      return;
    }
    // One query at a time on a pg.Client (pg 9 will refuse overlapping ones); in order, too.
    this.#sending = this.#sending
      .then(() => client.query('SELECT pg_notify($1, $2)', [channel, payload]))
      .then(
        () => undefined,
        (err: unknown) => this.#o.log.warn('notification failed', { channel, err: String(err) }),
      );
  }

  #encode(c: StatusChange): string {
    const clip = (t: string): string => (t.length > maxErrorChars ? `${t.slice(0, maxErrorChars)}…` : t);
    const payload: StatusPayload = {
      n: this.#o.nodeId,
      id: c.id,
      s: c.status,
      p: c.previous,
      e: c.errorString === null ? null : clip(c.errorString),
      at: c.at.getTime(),
      w: c.warnings.slice(0, 4).map(clip),
      ra: c.reconnectAttempts,
      na: c.nextAttemptAt === null ? null : c.nextAttemptAt.getTime(),
      as: c.activeSource,
      v: c.viewers,
      ...(c.viewersOnly === true ? { vo: true as const } : {}),
    };
    return JSON.stringify(payload);
  }

  #onNotification(channel: string, payload: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(payload);
    } catch {
      this.#o.log.warn('malformed notification ignored', { channel });
      return;
    }
    if (typeof msg !== 'object' || msg === null) return;
    const m = msg as Record<string, unknown>;
    if (channel === playlistChannel) {
      if (typeof m['id'] === 'string') this.#o.onPlaylist(m['id']);
      return;
    }
    if (channel === desiredChannel) {
      if (typeof m['id'] === 'string' && (m['d'] === 'RUNNING' || m['d'] === 'STOPPED')) this.#o.onDesired(m['id'], m['d']);
      return;
    }
    if (channel !== statusChannel || m['n'] === this.#o.nodeId) return;
    const p = m as unknown as StatusPayload;
    if (typeof p.id !== 'string' || typeof p.s !== 'string' || !isLiveStatus(p.s)) return;
    const previous = typeof p.p === 'string' && isLiveStatus(p.p) ? p.p : null;
    const change: StatusChange = {
      id: p.id,
      status: p.s,
      previous,
      errorString: typeof p.e === 'string' ? p.e : null,
      at: new Date(typeof p.at === 'number' ? p.at : Date.now()),
      warnings: Array.isArray(p.w) ? p.w.filter((w): w is string => typeof w === 'string') : [],
      reconnectAttempts: typeof p.ra === 'number' ? p.ra : 0,
      nextAttemptAt: typeof p.na === 'number' ? new Date(p.na) : null,
      activeSource: typeof p.as === 'string' && ['PRIMARY', 'BACKUP', 'SLATE'].includes(p.as) ? p.as : 'PRIMARY',
      viewers: typeof p.v === 'number' && Number.isSafeInteger(p.v) && p.v >= 0 ? p.v : 0,
      ...(p.vo === true ? { viewersOnly: true } : {}),
    };
    this.#remote.add(change);
    this.#o.events.publish(change);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe();
    if (this.#retry !== null) clearTimeout(this.#retry);
    const client = this.#client;
    this.#client = null;
    await this.#sending;
    await client?.end().catch(() => undefined);
  }
}
