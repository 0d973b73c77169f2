/**
 * Playout control of VOD and playlist channels, on the supervisor's side:
 * what is on air (as each channel's worker reports it at every item
 * boundary), and skips and jumps (checked here, carried out by the worker at
 * its next clean cut, worker/playout.ts).
 *
 * - nowPlaying is kept in memory, per channel, from the worker's 'item'
 *   events: it describes a running pipeline, so it is forgotten when the
 *   channel stops, and a restarted pipeline reports its first item again.
 * - Each item event goes out as a detail StatusChange (status unchanged)
 *   carrying it, so subscribers see every boundary.
 * - A command waits for the worker's answer, which comes once the cut is
 *   decided (a pace period and a mini-GOP at most) with the exact switch time.
 *
 * Owns: the now-playing book and the commands in flight. Imports the
 * ports, repository, status, errors and the pool's playout types.
 */
import { VliveError, badInput, notFound } from '../errors.js';
import type { Logger } from '../log.js';
import type { PlayoutCommand, PlayoutEvent, PlayoutItemRef } from '../pool/playout-spec.js';

export type { NowPlaying };
import type { NowPlaying, StatusEvents } from './events.js';
import { playlistOf, type ChannelRecord } from './repository.js';
import { isActive } from './status.js';

/** The answer to a skip or jump: item `index` goes on air at `at`. */
export interface PlayoutSwitch extends PlayoutItemRef {
  at: Date;
}

/** A command the worker has not answered by then is given up (it may still happen). */
const answerTimeoutMs = 5000;

export interface PlayoutDeskDeps {
  /** Sends a command to the channel's worker; false when it has no pipeline. */
  send(channelId: string, requestId: number, command: PlayoutCommand): boolean;
  events: StatusEvents;
  /** Publishes a detail event of the channel carrying `playing`. */
  announce(channelId: string, playing: NowPlaying): void;
  log: Logger;
}

export class PlayoutDesk {
  readonly #deps: PlayoutDeskDeps;
  readonly #playing = new Map<string, NowPlaying>();
  readonly #waiting = new Map<number, { resolve(s: PlayoutSwitch): void; reject(e: Error): void }>();
  #nextRequest = 1;
  readonly #unsubscribe: () => void;

  constructor(deps: PlayoutDeskDeps) {
    this.#deps = deps;
    // What a stopped channel played is no longer on air.
    this.#unsubscribe = deps.events.subscribe((change) => {
      if (!isActive(change.status)) this.#playing.delete(change.id);
    });
  }

  dispose(): void {
    this.#unsubscribe();
    for (const w of this.#waiting.values()) w.reject(new VliveError('SHUTTING_DOWN', 'the service is shutting down'));
    this.#waiting.clear();
  }

  /** What the channel has on air; null when it does not run a VOD pipeline here (or before its first report). */
  nowPlaying(channelId: string): NowPlaying | null {
    return this.#playing.get(channelId) ?? null;
  }

  /** An event of a channel's worker (the pool checked it comes from the channel's placement). */
  onEvent(channelId: string, event: PlayoutEvent): void {
    switch (event.kind) {
      case 'item': {
        const playing: NowPlaying = {
          index: event.index,
          itemId: event.itemId,
          startedAt: new Date(event.startedAtMs),
          endsAt: new Date(event.startedAtMs + event.durationMs),
          loop: event.loop,
          next: event.next,
        };
        this.#playing.set(channelId, playing);
        this.#deps.announce(channelId, playing);
        return;
      }
      case 'switched':
        this.#settle(event.requestId)?.resolve({ index: event.index, itemId: event.itemId, at: new Date(event.atMs) });
        return;
      case 'refused':
        this.#settle(event.requestId)?.reject(new VliveError('INVALID_STATE', event.error));
        return;
      default:
        event satisfies never;
    }
  }

  /**
   * Checks a skip or jump against the channel's record and sends it to the
   * channel's worker; resolves with the switch, once the worker has decided it.
   * `runsHere`: this node runs the channel's pipeline.
   * @throws WRONG_SOURCE_TYPE for an ONLINE channel, INVALID_STATE when the
   *   channel is not LIVING here, BAD_USER_INPUT (field index) for an index
   *   outside its playlist.
   */
  async command(rec: ChannelRecord | null, id: string, command: PlayoutCommand, runsHere: boolean): Promise<PlayoutSwitch> {
    if (rec === null) throw notFound('virtual live', id);
    if (rec.sourceType !== 'VOD') throw new VliveError('WRONG_SOURCE_TYPE', `virtual live ${id} relays an online source; skip and jump need a VOD file or playlist`);
    const items = playlistOf(rec).length;
    if (command.kind === 'jump' && !(Number.isSafeInteger(command.index) && command.index >= 0 && command.index < items)) {
      throw badInput('index', `must be 0..${items - 1}, the playlist has ${items} item${items === 1 ? '' : 's'}`);
    }
    if (rec.status !== 'LIVING') throw new VliveError('INVALID_STATE', `virtual live ${id} is ${rec.status}; skip and jump need it LIVING`);
    if (!runsHere) throw new VliveError('INVALID_STATE', `virtual live ${id} runs on another node; send the command to that node's API`);
    const requestId = this.#nextRequest++;
    const answer = new Promise<PlayoutSwitch>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(requestId);
        reject(new VliveError('INVALID_STATE', `the channel's worker did not answer within ${answerTimeoutMs} ms`));
      }, answerTimeoutMs);
      const done = <T>(fn: (v: T) => void) => (v: T): void => {
        clearTimeout(timer);
        fn(v);
      };
      this.#waiting.set(requestId, { resolve: done(resolve), reject: done(reject) });
    });
    if (!this.#deps.send(id, requestId, command)) {
      this.#settle(requestId)?.reject(new VliveError('INVALID_STATE', `virtual live ${id} has no running pipeline`));
    }
    const sw = await answer;
    this.#deps.log.info('playout switch', { channel: id, command: command.kind, index: sw.index, at: sw.at.toISOString() });
    return sw;
  }

  #settle(requestId: number): { resolve(s: PlayoutSwitch): void; reject(e: Error): void } | undefined {
    const w = this.#waiting.get(requestId);
    this.#waiting.delete(requestId);
    return w;
  }
}
