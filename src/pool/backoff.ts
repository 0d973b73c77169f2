/**
 * Retry delays: exponential growth with full jitter and a cap ("Exponential
 * Backoff And Jitter", AWS Architecture Blog). Full jitter draws the whole
 * delay at random, so many workers or channels that failed together do not
 * retry together. Pure: the random source is a parameter, so tests pin it.
 */

export interface BackoffOptions {
  /** Delay ceiling of the first retry (attempt 0), milliseconds. */
  readonly baseMs: number;
  /** No delay exceeds this, milliseconds. */
  readonly capMs: number;
}

/**
 * The delay before retry number `attempt` (0 for the first retry):
 * uniform in [0, min(capMs, baseMs * 2^attempt)), rounded down to whole ms.
 * `random` must return values in [0, 1) like Math.random.
 */
export function fullJitterBackoff(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  if (!Number.isInteger(attempt) || attempt < 0) throw new RangeError('attempt must be a non-negative integer');
  if (!Number.isFinite(opts.baseMs) || opts.baseMs < 0) throw new RangeError('baseMs must be a non-negative number');
  if (!Number.isFinite(opts.capMs) || opts.capMs < opts.baseMs) throw new RangeError('capMs must be a number >= baseMs');
  // 2 ** attempt overflows to Infinity for huge attempts; Math.min keeps that at the cap.
  const ceiling = Math.min(opts.capMs, opts.baseMs * 2 ** attempt);
  const r = random();
  if (!(r >= 0 && r < 1)) throw new RangeError('random() must return a number in [0, 1)');
  return Math.floor(r * ceiling);
}
