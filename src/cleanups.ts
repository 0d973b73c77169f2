/**
 * The service's stop order, as a stack: each part that has started pushes
 * how to stop it, and unwind() stops them in reverse order, once. A step
 * that fails is logged and the next one still runs, so one stuck part never
 * leaves the others running. Used by startApp (src/app.ts) for a graceful
 * stop and for a start-up that fails half-way. Imports only the Logger type.
 */
import type { Logger } from './log.js';

export class CleanupStack {
  readonly #log: Logger;
  readonly #steps: { readonly name: string; readonly fn: () => Promise<void> }[] = [];
  #unwinding: Promise<void> | null = null;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Registers how to stop a part that has just started; it runs before every step pushed earlier. */
  push(name: string, fn: () => Promise<void>): void {
    this.#steps.push({ name, fn });
  }

  /** Runs every step, last pushed first. Safe to call more than once: later calls share the first run. */
  unwind(): Promise<void> {
    this.#unwinding ??= (async () => {
      for (const { name, fn } of [...this.#steps].reverse()) {
        this.#log.debug('stopping', { step: name });
        await fn().catch((err: unknown) => this.#log.error('stop step failed', { step: name, err: String(err) }));
      }
    })();
    return this.#unwinding;
  }
}
