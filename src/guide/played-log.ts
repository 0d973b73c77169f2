/**
 * The programme's past: every item a VOD or playlist channel actually played,
 * one PlayedItem row per item, written when it leaves the air.
 *
 * It follows this node's status events (channels/events.ts), the ones that
 * carry each item boundary (`playout`, from the worker's report of the item's
 * first tag at the origin's socket):
 *
 *   item A on air ──(item B on air at t)──▶ row A [startA, t], B on air
 *   item A on air ──(channel leaves STARTING/LIVING at t)──▶ row A [startA, min(t, A's planned end)]
 *
 * Why a row at the end rather than one at the start and an update: one insert
 * per boundary, and a row never holds a guess. The item on air is the
 * channel's nowPlaying (in memory), so the guide shows it from there. The
 * price: an item on air when the process is killed (kill -9), or when a
 * cluster node hands its channel over, is not in the history.
 *
 * Writes take their turn with the status writes (`turn`, the status writer's
 * queue), so a restart wave of boundaries does not hold events back; rows
 * older than the history window are pruned at most once every
 * `pruneEveryMs`, in the same turn as an insert. Not batched: once warm, an
 * insert costs the service thread 130-150 µs of CPU and a row of a 50-row
 * createMany about the same (bench/played-insert.ts), so a batch would only
 * add a window of rows a crash loses. 100 channels looping 10 s files: 10
 * inserts a second, about 0.15 % of a core.
 *
 * It also learns each item's real length as the worker reports it (the
 * period from its shortest track and clean cuts, which the probe's durations
 * only approach), for the planned entries ahead.
 *
 * Owns: the PlayedItem rows. Imports channels/events.ts and the Prisma client's types.
 */
import type { StatusChange, StatusEvents } from '../channels/events.js';
import type { PlayedItem, PrismaClient } from '../generated/prisma-sqlite/client.js';
import type { Logger } from '../log.js';

export interface PlayedLogDeps {
  db: PrismaClient;
  /** This node's status events (in a cluster, `ownEvents`: each item is written once, by the node that played it). */
  events: StatusEvents;
  /** Runs a write in turn with the status writes (ChannelService.writeTurn). */
  turn: <T>(work: () => Promise<T>) => Promise<T>;
  /** Rows that ended longer ago than this are deleted, ms (VLIVE_PROGRAMME_HISTORY_HOURS). */
  historyMs: number;
  log: Logger;
  /** At most one prune per this long, ms. Default 10 min. */
  pruneEveryMs?: number;
}

interface OnAir {
  itemId: string;
  index: number;
  startedAt: Date;
  endsAt: Date;
}

/** Statuses in which the item on air is still playing; any other move ends it (a VOD channel's RECONNECTING has lost its pipeline). */
const playing = new Set(['STARTING', 'LIVING']);

export class PlayedLog {
  readonly #d: Required<PlayedLogDeps>;
  readonly #onAir = new Map<string, OnAir>();
  /** Channel → item id → the length the worker last reported for it, ms. */
  readonly #lengths = new Map<string, Map<string, number>>();
  readonly #unsubscribe: () => void;
  #prunedAt = 0;
  /** Writes in flight, so that dispose() can wait for them. */
  readonly #pending = new Set<Promise<void>>();

  constructor(deps: PlayedLogDeps) {
    this.#d = { pruneEveryMs: 600_000, ...deps };
    this.#unsubscribe = deps.events.subscribe((c) => this.#onChange(c));
  }

  /** Stops following events and waits for the writes in flight. */
  async dispose(): Promise<void> {
    this.#unsubscribe();
    await Promise.allSettled([...this.#pending]);
  }

  /** The length the worker last reported for `itemId` on this channel, ms; null when not seen since the service started. */
  lengthMs(channelId: string, itemId: string): number | null {
    return this.#lengths.get(channelId)?.get(itemId) ?? null;
  }

  /**
   * Rows of the channels (null: all) that overlap [from, to), by start; none
   * that ended before the history window, pruned or not yet (pruning waits for an insert).
   */
  history(channelIds: readonly string[] | null, from: Date, to: Date): Promise<PlayedItem[]> {
    const since = new Date(Math.max(from.getTime(), Date.now() - this.#d.historyMs));
    return this.#d.db.playedItem.findMany({
      where: { ...(channelIds !== null ? { virtualLiveId: { in: [...channelIds] } } : {}), endedAt: { gt: since }, startedAt: { lt: to } },
      orderBy: { startedAt: 'asc' },
    });
  }

  #onChange(c: StatusChange): void {
    const p = c.playout;
    const open = this.#onAir.get(c.id);
    if (p !== undefined) {
      let lengths = this.#lengths.get(c.id);
      if (lengths === undefined) this.#lengths.set(c.id, (lengths = new Map()));
      lengths.set(p.itemId, p.endsAt.getTime() - p.startedAt.getTime());
      // The same start again is a change of what follows (a skip asked for, a playlist edit), not a boundary.
      if (open?.startedAt.getTime() === p.startedAt.getTime()) {
        open.endsAt = p.endsAt;
        return;
      }
      if (open !== undefined) this.#write(c.id, open, p.startedAt);
      this.#onAir.set(c.id, { itemId: p.itemId, index: p.index, startedAt: p.startedAt, endsAt: p.endsAt });
      return;
    }
    if (open !== undefined && !playing.has(c.status)) {
      this.#onAir.delete(c.id);
      this.#write(c.id, open, new Date(Math.min(c.at.getTime(), open.endsAt.getTime())));
    }
    if (c.status === 'STOPPED' || c.status === 'ERROR') this.#lengths.delete(c.id);
  }

  #write(channelId: string, item: OnAir, endedAt: Date): void {
    if (endedAt.getTime() <= item.startedAt.getTime()) return;
    const data = { virtualLiveId: channelId, vodResourceId: item.itemId, position: item.index, startedAt: item.startedAt, endedAt };
    const done = this.#d
      .turn(async () => {
        await this.#d.db.playedItem.create({ data });
        const now = Date.now();
        if (now - this.#prunedAt >= this.#d.pruneEveryMs) {
          this.#prunedAt = now;
          await this.#d.db.playedItem.deleteMany({ where: { endedAt: { lt: new Date(now - this.#d.historyMs) } } });
        }
      })
      // A channel deleted meanwhile takes its history with it (the foreign key refuses the row): nothing to keep.
      .catch((err: unknown) => this.#d.log.warn('played item not written', { channel: channelId, err: String(err) }))
      .finally(() => this.#pending.delete(done));
    this.#pending.add(done);
  }
}
