/**
 * Turns for status writes. A restart wave asks for hundreds of writes at
 * once; run together, their promise chains interleave in one microtask queue
 * and every event published meanwhile waits behind all of them, while SQLite
 * serialises the writes anyway. Here they take turns, at most `concurrency`
 * at a time, and each turn starts on a fresh event-loop pass (setImmediate),
 * so sockets and timers are served between writes: an event is delivered
 * within a write or two of its own, not after the whole wave.
 *
 * Owns nothing but the queue; imports nothing.
 */
import { setImmediate as nextPass } from 'node:timers/promises';

export class WriteTurns {
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(private readonly concurrency: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running >= this.concurrency) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running++;
    try {
      await nextPass();
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#running--;
    }
  }
}
