/**
 * The benchmark's own garbage collection. The receivers' packets are timed
 * on this process's event loop (receiver.ts), so a pause here shows as a
 * stall on every receiver at once. An ffmpeg step leaves ~150 MiB of garbage
 * (its 200 children's pipes and buffers); collected inside the next step's
 * window, it cost one 100 ms pause and stalls of 118–149 ms on all ten
 * receivers (`node --trace-gc`, d8f9258). So each window starts with a full
 * collection, and the pauses inside it are measured and reported.
 */
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// The gc() a new context gets once --expose-gc is set: no command-line flag needed.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A full collection, now. */
export function collectGarbage(): void {
  gc();
}

export interface GcPauses {
  /** Collections seen. */
  readonly count: number;
  /** The longest pause, ms. */
  readonly maxMs: number;
  /** All pauses together, ms. */
  readonly totalMs: number;
}

/** Measures this process's GC pauses until the returned function is called. */
export function watchGcPauses(): () => GcPauses {
  let count = 0;
  let maxMs = 0;
  let totalMs = 0;
  const add = (entries: readonly PerformanceEntry[]): void => {
    for (const e of entries) {
      count += 1;
      maxMs = Math.max(maxMs, e.duration);
      totalMs += e.duration;
    }
  };
  const observer = new PerformanceObserver((list) => add(list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  return () => {
    add(observer.takeRecords()); // entries not yet delivered to the callback
    observer.disconnect();
    return { count, maxMs: Math.round(maxMs * 10) / 10, totalMs: Math.round(totalMs) };
  };
}
