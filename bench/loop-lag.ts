/**
 * The benchmark's own event-loop stalls. The receivers' packets are timed on
 * this process's event loop (receiver.ts), so while the loop is held (a GC
 * pause, a burst of work) every receiver's clock stops too. A ticker records
 * when the loop came back late and by how much, so a receiver's stall can be
 * laid beside the bench's (the report's "stalls" section).
 */

/** One late turn of the loop: when it came back (seconds, performance clock) and how late, ms. */
export interface LoopStall {
  readonly atSeconds: number;
  readonly lateMs: number;
}

const TICK_MS = 5;

/** Records the loop's turns later than `thresholdMs` until the returned function is called. */
export function watchLoopStalls(thresholdMs: number): () => LoopStall[] {
  const stalls: LoopStall[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - last - TICK_MS;
    if (late > thresholdMs) stalls.push({ atSeconds: now / 1000, lateMs: Math.round(late) });
    last = now;
  }, TICK_MS);
  return () => {
    clearInterval(timer);
    return stalls;
  };
}
