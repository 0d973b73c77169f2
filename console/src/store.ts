/**
 * Every channel as the console knows it, kept current by the status
 * subscription: one for all channels, in the API's batched form, so that a
 * wave of changes (every channel of a worker reconnecting) arrives as a few
 * messages and renders once a frame. Pages read it and are told of
 * changes; nothing here polls for status.
 *
 * Two things have no event: push targets' byte counters (bytesSent grows
 * continuously; the bitrate is the difference between two readings) and
 * new snapshots. For those alone, and only while some channel runs, the
 * store reads every channel's targets and snapshot every few seconds.
 */
import type { Api, ApiError } from './api.js';
import { eventlessDetails, listChannels, statusEvents, type ChannelRowView, type StatusEvent } from './queries.js';

type Details = Pick<ChannelRowView, 'id' | 'pushTargets' | 'snapUrl' | 'snapTakenAt' | 'snapStale'>;

const detailPeriodMs = 5000;

export interface ChannelState {
  readonly row: ChannelRowView;
  /** When it entered its status (ms since the epoch); `exact` false when estimated from the record. */
  readonly since: number;
  readonly exact: boolean;
  /** Push target position → bits per second over the last counter period; absent until two readings. */
  readonly bitrates: ReadonlyMap<number, number>;
}

/** When a status began, as well as the record tells it: startedAt for running ones, the last write otherwise. */
function estimatedSince(row: ChannelRowView): number {
  const running = row.status === 'LIVING' || row.status === 'STARTING';
  return new Date(running && row.startedAt !== null ? row.startedAt : row.updatedAt).getTime();
}

export class ChannelStore {
  readonly #api: Api;
  readonly #channels = new Map<string, ChannelState>();
  readonly #listeners = new Set<() => void>();
  readonly #eventListeners = new Set<(e: StatusEvent) => void>();
  readonly #counters = new Map<string, { bytes: number; at: number }>();
  #loaded = false;
  #error: string | null = null;
  #stop: (() => void) | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;
  #pending = false;

  constructor(api: Api) {
    this.#api = api;
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  get error(): string | null {
    return this.#error;
  }

  all(): ChannelState[] {
    return [...this.#channels.values()];
  }

  get(id: string): ChannelState | undefined {
    return this.#channels.get(id);
  }

  /** Called after changes, at most once a frame: a burst of 500 events is one render. */
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Every status event as it comes, for the channel page's timeline. */
  onEvent(fn: (e: StatusEvent) => void): () => void {
    this.#eventListeners.add(fn);
    return () => this.#eventListeners.delete(fn);
  }

  async start(): Promise<void> {
    // Subscribed before the list is read, so no change falls between the two;
    // an event newer than the list wins over it.
    const seen = new Set<string>();
    this.#stop = this.#api.subscribe<{ virtualLiveStatusChanges: StatusEvent[] }>(
      statusEvents,
      { id: null },
      (d) => {
        for (const e of d.virtualLiveStatusChanges) {
          seen.add(e.id);
          this.#apply(e);
        }
      },
      (err: ApiError) => {
        this.#error = err.message;
        this.#changed();
      },
    );
    const { virtualLives } = await this.#api.gql<{ virtualLives: ChannelRowView[] }>(listChannels);
    for (const row of virtualLives) {
      if (!seen.has(row.id)) this.#channels.set(row.id, { row, since: estimatedSince(row), exact: false, bitrates: new Map() });
    }
    this.#loaded = true;
    this.#changed();
    this.#timer = setInterval(() => void this.#readDetails(), detailPeriodMs);
  }

  dispose(): void {
    this.#stop?.();
    if (this.#timer !== null) clearInterval(this.#timer);
  }

  /** A mutation's answer is as fresh as an event. */
  put(row: ChannelRowView): void {
    const old = this.#channels.get(row.id);
    const same = old !== undefined && old.row.status === row.status;
    this.#channels.set(row.id, {
      row,
      since: same ? old.since : Date.now(),
      exact: same ? old.exact : true,
      bitrates: old?.bitrates ?? new Map(),
    });
    this.#changed();
  }

  remove(id: string): void {
    this.#channels.delete(id);
    this.#changed();
  }

  #apply(e: StatusEvent): void {
    const old = this.#channels.get(e.id);
    if (e.virtualLive === null) {
      // Deleted since: nothing to show.
      this.#channels.delete(e.id);
    } else {
      // The nested record was read after the event; the event's own fields are what it reports.
      const row: ChannelRowView = {
        ...e.virtualLive,
        status: e.status,
        errorString: e.errorString,
        warnings: e.warnings,
        reconnectAttempts: e.reconnectAttempts,
        nextAttemptAt: e.nextAttemptAt,
        activeSource: e.activeSource,
        viewers: e.viewers,
      };
      const moved = e.status !== e.previous || old === undefined || old.row.status !== e.status;
      this.#channels.set(e.id, {
        row,
        since: moved ? new Date(e.at).getTime() : old.since,
        exact: moved ? true : old.exact,
        bitrates: old?.bitrates ?? new Map(),
      });
    }
    for (const fn of this.#eventListeners) fn(e);
    this.#changed();
  }

  async #readDetails(): Promise<void> {
    if (!this.all().some((c) => c.row.status !== 'STOPPED' && c.row.status !== 'ERROR')) return;
    const { virtualLives } = await this.#api.gql<{ virtualLives: Details[] }>(eventlessDetails).catch(() => ({ virtualLives: [] }));
    const now = Date.now();
    for (const { id, pushTargets, snapUrl, snapTakenAt, snapStale } of virtualLives) {
      const state = this.#channels.get(id);
      if (state === undefined) continue;
      if (state.row.snapTakenAt !== snapTakenAt || state.row.snapStale !== snapStale) {
        this.#channels.set(id, { ...state, row: { ...state.row, snapUrl, snapTakenAt, snapStale } });
      }
      if (pushTargets.length === 0) continue;
      const bitrates = new Map<number, number>();
      for (const t of pushTargets) {
        const key = `${id}/${t.position}`;
        const before = this.#counters.get(key);
        if (before !== undefined && now > before.at && t.bytesSent >= before.bytes) {
          bitrates.set(t.position, ((t.bytesSent - before.bytes) * 8 * 1000) / (now - before.at));
        }
        this.#counters.set(key, { bytes: t.bytesSent, at: now });
      }
      const latest = this.#channels.get(id) ?? state;
      this.#channels.set(id, { ...latest, row: { ...latest.row, pushTargets }, bitrates });
    }
    this.#changed();
  }

  #changed(): void {
    if (this.#pending) return;
    this.#pending = true;
    requestAnimationFrame(() => {
      this.#pending = false;
      for (const fn of this.#listeners) fn();
    });
  }
}
