/**
 * A service-wide budget for reconnect attempts, so that many channels that
 * lose their sources together retry at a steady rate instead of a storm:
 * a token bucket refilled at `perSecond`, holding up to `burst` tokens. A
 * reconnect that finds no token waits for the next one (it is reserved, so
 * the waits queue up fairly). Pure: the clock is a parameter.
 */
export class ReconnectBudget {
  readonly #perMs: number;
  readonly #burst: number;
  #tokens: number;
  #at: number;

  constructor(perSecond: number, burst: number, now: number) {
    if (!(perSecond > 0) || !(burst >= 1)) throw new RangeError('perSecond must be > 0 and burst >= 1');
    this.#perMs = perSecond / 1000;
    this.#burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  /** Takes a token for an attempt wanted at `when` (ms); returns how much later than `when` it may run. */
  reserve(when: number): number {
    const t = Math.max(when, this.#at);
    this.#tokens = Math.min(this.#burst, this.#tokens + (t - this.#at) * this.#perMs);
    this.#at = t;
    this.#tokens -= 1;
    // A negative balance is a queue: this attempt runs when it is paid back.
    return this.#tokens >= 0 ? t - when : t - when + Math.ceil(-this.#tokens / this.#perMs);
  }
}
