/**
 * Bridges the domain's status events to GraphQL subscriptions: an async
 * iterator per subscription with a bounded buffer, so one slow client cannot
 * make the service hold unbounded memory. Events one by one
 * (virtualLiveStatusChanged), or coalesced into batches
 * (virtualLiveStatusChanges): a console that watches every channel gets a
 * restart wave of 200 channels as a few messages, not as 600.
 */
import type { StatusChange, StatusEvents } from '../channels/events.js';

/** What one subscriber may have waiting (events, batches or results) before later ones are dropped. */
export const maxBuffered = 1000;

/**
 * How long a batch stays open after its first event. Events of one wave
 * arrive over milliseconds (each is a database write first), so a short
 * window gathers most of them; it is also the most a batch adds to an
 * event's latency.
 */
export const batchWindowMs = 10;

/**
 * A pull-based async iterator over pushed values, holding at most `max`
 * waiting values (later ones are dropped), ended by end() or by its
 * consumer's return().
 */
export class Feed<T> implements AsyncIterableIterator<T> {
  readonly #buffer: T[] = [];
  readonly #max: number;
  readonly #onEnd: () => void;
  #wake: ((r: IteratorResult<T>) => void) | null = null;
  #done = false;

  constructor(max: number, onEnd: () => void) {
    this.#max = max;
    this.#onEnd = onEnd;
  }

  push(value: T): void {
    if (this.#done) return;
    const wake = this.#wake;
    if (wake !== null) {
      this.#wake = null;
      wake({ value, done: false });
    } else if (this.#buffer.length < this.#max) {
      this.#buffer.push(value);
    }
  }

  /** Ends the feed; what is buffered is still read. */
  end(): void {
    if (this.#done) return;
    this.#done = true;
    this.#onEnd();
    const wake = this.#wake;
    this.#wake = null;
    wake?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#buffer.length > 0) return Promise.resolve({ value: this.#buffer.shift() as T, done: false });
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.#buffer.length = 0;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(): Promise<IteratorResult<T>> {
    return this.return();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** Every change of channel `id`, or of all channels when id is null, one by one. */
export function statusChanges(events: StatusEvents, id: string | null): AsyncIterableIterator<StatusChange> {
  const feed: Feed<StatusChange> = new Feed(maxBuffered, () => unsubscribe());
  const unsubscribe = events.subscribe((change) => {
    if (id === null || change.id === id) feed.push(change);
  });
  return feed;
}

/**
 * The same changes in batches: a batch opens at its first change and goes
 * out batchWindowMs later with every change that came meanwhile, in order.
 */
export function statusChangeBatches(events: StatusEvents, id: string | null, windowMs = batchWindowMs): AsyncIterableIterator<StatusChange[]> {
  let open: StatusChange[] | null = null;
  let timer: NodeJS.Timeout | null = null;
  // Bounded in batches; a batch holds what one window gathered.
  const feed: Feed<StatusChange[]> = new Feed(maxBuffered, () => {
    unsubscribe();
    if (timer !== null) clearTimeout(timer);
    timer = null;
  });
  const unsubscribe = events.subscribe((change) => {
    if (id !== null && change.id !== id) return;
    if (open !== null) {
      open.push(change);
      return;
    }
    open = [change];
    timer = setTimeout(() => {
      const batch = open ?? [];
      open = null;
      timer = null;
      feed.push(batch);
    }, windowMs);
  });
  return feed;
}
