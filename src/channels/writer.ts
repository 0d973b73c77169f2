/**
 * The one status writer. Every change of a channel's status, and every
 * detail written beside it (the worker, the next attempt, the active
 * source), goes through here: the move is checked against the table in
 * status.ts, written (fenced by the lease epoch in a cluster), published as
 * one StatusChange, and logged.
 *
 * Fencing: in a cluster the owner's writes carry its lease epoch and are
 * refused once another node has claimed the channel; the writer then calls
 * `onLeaseLost` so this node lets go, and rethrows LeaseLostError.
 *
 * Owns: the write, the event, the log line of a status change. Imports
 * status.ts, repository.ts, warnings.ts, events.ts, ports.ts, errors.ts
 * and log.ts.
 */
import { notFound } from '../errors.js';
import type { Logger } from '../log.js';
import type { CuePointView, CutInView, NowPlaying, StatusEvents } from './events.js';
import type { ClusterPort } from './ports.js';
import { LeaseLostError, type ChannelRecord, type ChannelRepository, type StatusWrite } from './repository.js';
import { assertTransition, isActive, type LiveStatus } from './status.js';
import type { WarningBook } from './warnings.js';
import { WriteTurns } from './write-turns.js';

export interface StatusWriterDeps {
  repo: ChannelRepository;
  events: StatusEvents;
  warnings: WarningBook;
  log: Logger;
  cluster?: ClusterPort;
  /** Players on the channel now; carried in every event. */
  viewersOf: (id: string) => number;
  /** A fenced write was refused: this node no longer owns the channel. */
  onLeaseLost: (id: string) => void;
  /** Status writes in flight at once (write-turns.ts); 1 on SQLite, which serialises them anyway. */
  writeConcurrency?: number;
}

/**
 * `unowned`: a node settling a channel nobody holds a live lease on (a stop of
 * an orphan); the write lands only if no node holds one. Ignored on a single node.
 */
export interface WriteOptions {
  unowned?: boolean;
}

/** What an event takes from the record. */
type Published = Pick<ChannelRecord, 'id' | 'status' | 'errorString' | 'reconnectAttempts' | 'nextAttemptAt' | 'activeSource'>;

export interface DetailOptions {
  /** The event only carries a new viewer count. */
  viewersOnly?: boolean;
  /** An item boundary's event carries the item. */
  playout?: NowPlaying;
  /** Checked just before publishing: false drops the event (something newer had the last word). */
  still?: () => boolean;
  /** A cut-in's start or change (null: its end). */
  cutIn?: CutInView | null;
  /** A cue point's event carries it. */
  cuePoint?: CuePointView;
  /** Only while the channel is STARTING or LIVING or reconnecting. */
  activeOnly?: boolean;
}

export class StatusWriter {
  readonly #turns: WriteTurns;
  /**
   * The last record written here of each active channel, as events carry it.
   * Every status field is written through this writer (in a cluster, by the
   * lease holder's), so it is what the database holds, and a detail event
   * needs no read: item boundaries come several times a second on a busy node
   * (every loop of every file), and each read the whole record with its
   * relations, the service's most frequent query in steady state (issue #16).
   */
  readonly #last = new Map<string, Published>();

  constructor(private readonly deps: StatusWriterDeps) {
    this.#turns = new WriteTurns(deps.writeConcurrency ?? 1);
  }

  /**
   * Moves the channel to `to` with `extra` in the same write. A move that keeps
   * the status writes details only; any other must be an edge of the table.
   * @throws IllegalTransitionError (INVALID_STATE) when the table has no such edge.
   * @throws LeaseLostError in a cluster, when another node owns the channel now.
   */
  async transition(id: string, to: LiveStatus, extra: Omit<StatusWrite, 'status'> = {}, opts: WriteOptions = {}): Promise<ChannelRecord> {
    return this.#turns.run(() => this.#transition(id, to, extra, opts));
  }

  async #transition(id: string, to: LiveStatus, extra: Omit<StatusWrite, 'status'>, opts: WriteOptions): Promise<ChannelRecord> {
    // On a single node the status this process last wrote is the one in the
    // database. A channel not active here is read, and so is every channel in a
    // cluster, where a lease can pass to another node and back between writes.
    const before = (this.deps.cluster ? undefined : this.#last.get(id)) ?? (await this.deps.repo.get(id));
    if (before === null) throw notFound('virtual live', id);
    const from = before.status;
    if (from !== to) assertTransition(from, to, id);
    const rec = await this.#write(id, { ...extra, status: to }, opts);
    // Warnings belong to a running tap; a channel that stops has none.
    if (!isActive(to)) this.deps.warnings.clear(id);
    this.publish(rec, from);
    if (from !== to) this.deps.log.info('channel status', { channel: id, from, to, ...(rec.errorString ? { error: rec.errorString } : {}) });
    return rec;
  }

  /**
   * Details beside the status, which stays as it is (the last failure while
   * RECONNECTING); no event: the next attempt's own write publishes them.
   */
  async details(id: string, write: Omit<StatusWrite, 'status'>): Promise<ChannelRecord> {
    return this.#turns.run(() => this.#write(id, write));
  }

  /** The worker that runs the channel's pipeline now; no event (the API does not show it). */
  async setWorker(id: string, workerId: string): Promise<void> {
    await this.#turns.run(async () => {
      if (this.deps.cluster) await this.#write(id, { workerId });
      else await this.deps.repo.setWorker(id, workerId);
    });
  }

  /**
   * A detail event (status unchanged) of a channel, from the last record
   * written here; read from the database when there is none (the channel is
   * not active here, or this process has not written it yet). False when
   * the channel is gone (or `still` or `activeOnly` held it back).
   */
  async publishDetail(id: string, opts: DetailOptions = {}): Promise<boolean> {
    const rec = this.#last.get(id) ?? (await this.deps.repo.get(id));
    if (rec === null || (opts.still !== undefined && !opts.still()) || (opts.activeOnly === true && !isActive(rec.status))) return false;
    const { viewersOnly, playout, cutIn, cuePoint } = opts;
    this.publish(rec, rec.status, { viewersOnly, playout, cutIn, cuePoint });
    return true;
  }

  /**
   * Another write that should take its turn with the status writes (the
   * programme's played items, guide/played-log.ts): on SQLite one at a time,
   * each on a fresh event-loop pass.
   */
  turn<T>(work: () => Promise<T>): Promise<T> {
    return this.#turns.run(work);
  }

  /**
   * One status event from the record as written; `previous` equal to its
   * status means only details changed. `playout`: an item boundary's event;
   * `cutIn`: a cut-in's start or change (null: its end); `cuePoint`: a cue point's.
   */
  publish(rec: Published, previous: LiveStatus, details: { viewersOnly?: boolean | undefined; playout?: NowPlaying | undefined; cutIn?: CutInView | null | undefined; cuePoint?: CuePointView | undefined } = {}): void {
    const { viewersOnly, playout, cutIn, cuePoint } = details;
    this.deps.events.publish({
      id: rec.id,
      status: rec.status,
      previous,
      errorString: rec.errorString,
      at: new Date(),
      warnings: this.deps.warnings.of(rec.id),
      reconnectAttempts: rec.reconnectAttempts,
      nextAttemptAt: rec.nextAttemptAt,
      activeSource: rec.activeSource,
      viewers: this.deps.viewersOf(rec.id),
      ...(viewersOnly === true ? { viewersOnly } : {}),
      ...(playout !== undefined ? { playout } : {}),
      ...(cutIn !== undefined ? { cutIn } : {}),
      ...(cuePoint !== undefined ? { cuePoint } : {}),
    });
  }

  /** Writes and remembers the record; forgets it when the write failed (it may or may not have landed). */
  async #write(id: string, write: Partial<StatusWrite>, opts: WriteOptions = {}): Promise<ChannelRecord> {
    try {
      return this.#remember(await this.#store(id, write, opts));
    } catch (err) {
      this.#last.delete(id);
      throw err;
    }
  }

  /** On a single node, a plain update; in a cluster, fenced (see the module comment). */
  async #store(id: string, write: Partial<StatusWrite>, opts: WriteOptions): Promise<ChannelRecord> {
    const cluster = this.deps.cluster;
    if (!cluster) return this.deps.repo.writeStatus(id, write);
    if (opts.unowned) return this.deps.repo.writeFenced(id, write, { kind: 'unowned' });
    const epoch = cluster.epochOf(id);
    try {
      if (epoch === null) throw new LeaseLostError(id);
      return await this.deps.repo.writeFenced(id, write, { kind: 'owner', nodeId: cluster.nodeId, epoch });
    } catch (err) {
      if (err instanceof LeaseLostError) this.deps.onLeaseLost(id);
      throw err;
    }
  }

  #remember(rec: ChannelRecord): ChannelRecord {
    const { id, status, errorString, reconnectAttempts, nextAttemptAt, activeSource } = rec;
    if (isActive(status)) this.#last.set(id, { id, status, errorString, reconnectAttempts, nextAttemptAt, activeSource });
    else this.#last.delete(id);
    return rec;
  }
}
