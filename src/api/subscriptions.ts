/**
 * Bridges the domain's status events to GraphQL subscriptions: an async
 * iterator per subscriber with a bounded buffer, so one slow client cannot
 * make the service hold unbounded memory.
 */
import type { StatusChange, StatusEvents } from '../channels/events.js';

const maxBuffered = 1000;

export function statusChanges(events: StatusEvents, id: string | null): AsyncIterableIterator<StatusChange> {
  const buffer: StatusChange[] = [];
  let wake: ((r: IteratorResult<StatusChange>) => void) | null = null;
  let done = false;
  const unsubscribe = events.subscribe((change) => {
    if (done || (id !== null && change.id !== id)) return;
    if (wake) {
      const w = wake;
      wake = null;
      w({ value: change, done: false });
    } else if (buffer.length < maxBuffered) {
      buffer.push(change);
    }
  });
  const finish = (): Promise<IteratorResult<StatusChange>> => {
    done = true;
    unsubscribe();
    if (wake) wake({ value: undefined, done: true });
    wake = null;
    return Promise.resolve({ value: undefined, done: true });
  };
  return {
    next(): Promise<IteratorResult<StatusChange>> {
      const next = buffer.shift();
      if (next) return Promise.resolve({ value: next, done: false });
      if (done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => {
        wake = resolve;
      });
    },
    return: finish,
    throw: finish,
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
