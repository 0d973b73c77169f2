/**
 * On-demand channels: started by the first viewer at the origin or by a
 * touch through the API, stopped once idle. The seed's words:
 *   touchTime      `touchedAt`, moved by every on_play, on_play_done and touch;
 *   touchDuration  how long a channel with no viewer lives past touchedAt
 *                  (or past its start, whichever is later);
 *   delayTimer     once that is over, an idle stop waits idleDelaySeconds more,
 *                  and a viewer or a touch within it cancels it, so a player
 *                  that reconnects does not restart the channel.
 *
 * The stop goes through ChannelService.stopFor, under the channel's lock, and
 * checks again there that the channel is still idle and still wanted running:
 * an operator's start or stop queued before it wins.
 */
import type { ChannelRecord, ChannelRepository } from '../channels/repository.js';
import type { ChannelService } from '../channels/service.js';
import { KeyedLock } from '../channels/lock.js';
import { isActive } from '../channels/status.js';
import { notFound } from '../errors.js';
import type { VirtualLive } from '../generated/prisma-sqlite/client.js';
import type { Logger } from '../log.js';
import type { PlayEvent } from './notify.js';
import type { ViewerBook } from './viewers.js';

export type StartTrigger = 'viewer' | 'touch';

export interface OnDemandCounters {
  started(trigger: StartTrigger): void;
  idleStopped(): void;
}

export interface OnDemandDeps {
  channels: Pick<ChannelService, 'get' | 'start' | 'stopFor' | 'publishViewers' | 'runsHere' | 'mayRunOnDemand'>;
  repo: Pick<ChannelRepository, 'touch' | 'listOnDemandRunning' | 'streams'>;
  viewers: ViewerBook;
  /**
   * Players per stream from the origin's /stat, in the application of streams
   * with HLS or without (src/origin/config.ts); null when the origin cannot tell
   * (external origin).
   */
  players: ((hls: boolean) => Promise<ReadonlyMap<string, readonly string[]>>) | null;
  log: Logger;
  counters?: OnDemandCounters;
  /** How often idle channels are looked for, ms. Default 500. */
  checkIntervalMs?: number;
  /** How often viewer counts are compared with /stat, ms. Default 2000. */
  reconcileIntervalMs?: number;
}

/** How long a player announced by on_play counts before /stat must list it, ms. */
const joinGraceMs = 5_000;

const running = (rec: Pick<ChannelRecord, 'desiredState' | 'status'>): boolean =>
  rec.desiredState === 'RUNNING' && isActive(rec.status);

export class OnDemand {
  /** Serialises the notifications of one channel, so a play_done never overtakes its play. */
  readonly #queue = new KeyedLock();
  /** Armed idle stops (the seed's delayTimer), by channel. */
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** Starts this manager asked for that have not finished. */
  readonly #starting = new Set<string>();
  readonly #loops: NodeJS.Timeout[] = [];
  #checking = false;
  #reconciling = false;

  constructor(private readonly deps: OnDemandDeps) {}

  /** One on_play or on_play_done from the origin; never throws. */
  onPlayEvent(ev: PlayEvent): void {
    void this.#queue
      .run(ev.stream, () => this.#handlePlay(ev))
      .catch((err: unknown) => this.deps.log.warn('play notification not handled', { channel: ev.stream, call: ev.kind, err: String(err) }));
  }

  async #handlePlay(ev: PlayEvent): Promise<void> {
    const rec = await this.deps.channels.get(ev.stream);
    if (!rec) return;
    // A player in the other application would wait there for a publish that never
    // comes: it is no viewer of the channel, and starts nothing.
    if (ev.hls !== rec.hls) {
      this.deps.log.info('player ignored: it asked the origin application of the other hls choice', { channel: rec.id, hls: rec.hls });
      return;
    }
    const now = Date.now();
    const changed = ev.kind === 'play' ? this.deps.viewers.add(rec.id, ev.clientId, now) : this.deps.viewers.remove(rec.id, ev.clientId);
    if (rec.onDemand) {
      // A viewer leaving is a sign of interest too: touchDuration counts from then.
      await this.deps.repo.touch(rec.id, new Date(now));
      this.#cancel(rec.id, ev.kind === 'play' ? 'a viewer came' : null);
      if (ev.kind === 'play' && !running(rec)) this.#startInBackground(rec.id, 'viewer');
    }
    if (changed) await this.deps.channels.publishViewers(rec.id);
  }

  /**
   * touchVirtualLive: records interest, cancels an armed idle stop, and
   * starts an on-demand channel that is not running; returns once it is
   * LIVING or failed, like startVirtualLive. A channel that is not on demand
   * only has its touchedAt recorded.
   */
  async touch(id: string): Promise<ChannelRecord> {
    const rec = await this.deps.channels.get(id);
    if (!rec) throw notFound('virtual live', id);
    await this.deps.repo.touch(id, new Date());
    if (!rec.onDemand) return (await this.deps.channels.get(id)) ?? rec;
    this.#cancel(id, 'touched');
    // A start in progress: wait for its outcome (start() is idempotent under the channel's lock).
    if (running(rec)) return rec.status === 'STARTING' ? this.deps.channels.start(id) : ((await this.deps.channels.get(id)) ?? rec);
    this.deps.counters?.started('touch');
    this.deps.log.info('on-demand start', { channel: id, trigger: 'touch' });
    return this.deps.channels.start(id);
  }

  #startInBackground(id: string, trigger: StartTrigger): void {
    if (this.#starting.has(id)) return;
    this.#starting.add(id);
    this.deps.counters?.started(trigger);
    this.deps.log.info('on-demand start', { channel: id, trigger });
    // nginx holds the player until the publish arrives; the notification was answered already.
    void this.deps.channels
      .start(id)
      .then((rec) => {
        if (rec.status !== 'LIVING') this.deps.log.warn('on-demand start failed', { channel: id, status: rec.status, error: rec.errorString });
      })
      .catch((err: unknown) => this.deps.log.warn('on-demand start refused', { channel: id, err: String(err) }))
      .finally(() => this.#starting.delete(id));
  }

  #idle(rec: Pick<VirtualLive, 'id' | 'touchedAt' | 'startedAt' | 'touchDurationSeconds'>, now: number): boolean {
    if (this.deps.viewers.count(rec.id) > 0) return false;
    const since = Math.max(rec.touchedAt?.getTime() ?? 0, rec.startedAt?.getTime() ?? 0);
    return now - since >= rec.touchDurationSeconds * 1000;
  }

  /** One pass of the idle check: arms, keeps or cancels each channel's delay timer. */
  async checkIdle(now = Date.now()): Promise<void> {
    // Twice a second, so skipped when there is nothing to judge and nothing armed (issue #16).
    if (this.#timers.size === 0 && !this.deps.channels.mayRunOnDemand()) return;
    const recs = await this.deps.repo.listOnDemandRunning();
    const seen = new Set<string>();
    for (const rec of recs) {
      seen.add(rec.id);
      // A start in progress is not idle yet; its startedAt is set when it is LIVING.
      // Only the instance that runs a channel judges it: its viewers are counted there.
      if (rec.status === 'STARTING' || !this.deps.channels.runsHere(rec.id)) continue;
      if (!this.#idle(rec, now)) {
        this.#cancel(rec.id, 'interest came back');
      } else if (!this.#timers.has(rec.id)) {
        this.#arm(rec.id, rec.touchDurationSeconds, rec.idleDelaySeconds);
      }
    }
    for (const id of [...this.#timers.keys()]) if (!seen.has(id)) this.#cancel(id, null);
  }

  #arm(id: string, touchSeconds: number, delaySeconds: number): void {
    this.deps.log.info('idle stop armed', { channel: id, delaySeconds });
    const timer = setTimeout(() => {
      this.#timers.delete(id);
      const reason = `idle: no viewer or touch for ${touchSeconds} s, then ${delaySeconds} s delay`;
      void this.deps.channels
        .stopFor(id, reason, (fresh) =>
          fresh.onDemand && fresh.desiredState === 'RUNNING' && fresh.status !== 'STARTING' && this.deps.channels.runsHere(id) && this.#idle(fresh, Date.now()))
        .then((stopped) => {
          if (!stopped) return;
          this.deps.counters?.idleStopped();
          // A player whose on_play was read while the stop was under way saw the
          // channel running and started nothing; it waits in nginx, so start for it.
          if (this.deps.viewers.count(id) > 0) this.#startInBackground(id, 'viewer');
        })
        .catch((err: unknown) => this.deps.log.warn('idle stop failed', { channel: id, err: String(err) }));
    }, delaySeconds * 1000);
    timer.unref();
    this.#timers.set(id, timer);
  }

  #cancel(id: string, why: string | null): void {
    const timer = this.#timers.get(id);
    if (!timer) return;
    clearTimeout(timer);
    this.#timers.delete(id);
    if (why !== null) this.deps.log.info('idle stop cancelled', { channel: id, why });
  }

  /** Compares viewer counts with the origin's /stat and publishes the ones that changed. */
  async reconcileViewers(): Promise<void> {
    const players = this.deps.players;
    if (players === null) return;
    // Both share one /stat read (src/origin/nginx.ts).
    const [withHls, withoutHls, channels] = await Promise.all([players(true), players(false), this.deps.repo.streams()]);
    // Players can ask nginx for any stream name; only channels are counted, each
    // in the application it publishes to.
    const ofChannels = new Map(channels.flatMap(({ id, hls }) => {
      const ids = (hls ? withHls : withoutHls).get(id);
      return ids === undefined ? [] : [[id, ids] as const];
    }));
    for (const id of this.deps.viewers.reconcile(ofChannels, Date.now(), joinGraceMs)) {
      await this.deps.channels.publishViewers(id);
    }
  }

  start(): void {
    const every = (ms: number, fn: () => Promise<void>, busy: { get(): boolean; set(v: boolean): void }, what: string): void => {
      const t = setInterval(() => {
        if (busy.get()) return;
        busy.set(true);
        fn()
          .catch((err: unknown) => this.deps.log.warn(`${what} failed`, { err: String(err) }))
          .finally(() => busy.set(false));
      }, ms);
      t.unref();
      this.#loops.push(t);
    };
    every(this.deps.checkIntervalMs ?? 500, () => this.checkIdle(), { get: () => this.#checking, set: (v) => (this.#checking = v) }, 'idle check');
    every(this.deps.reconcileIntervalMs ?? 2_000, () => this.reconcileViewers(), { get: () => this.#reconciling, set: (v) => (this.#reconciling = v) }, 'viewer reconcile');
  }

  stop(): void {
    for (const t of this.#loops) clearInterval(t);
    this.#loops.length = 0;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
  }
}
