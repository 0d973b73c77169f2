/**
 * Real CPU load for the admission tests: burner processes
 * (test/fixtures/cpu-burner.ts), each spinning at most one core, started
 * through setpriv --pdeathsig so that a test run that dies leaves none behind.
 */
import { spawnChild, type Child } from '../../bench/children.js';
import { repoPath } from '../../src/paths.js';

export interface CpuLoad {
  /** The burners' process ids. */
  readonly pids: readonly number[];
  /** Kills the burners and waits for their exit. Safe to call twice. */
  stop(): Promise<void>;
}

/** Starts `cores` of load (e.g. 0.2 or 1.5), spread over as few processes as can carry it. */
export function startCpuLoad(cores: number): CpuLoad {
  if (!(cores > 0)) throw new Error(`cores must be positive, got ${cores}`);
  const n = Math.ceil(cores);
  const children: Child[] = [];
  for (let i = 0; i < n; i++) {
    children.push(spawnChild(process.execPath, [repoPath('dist/test/fixtures/cpu-burner.js'), String(cores / n)]));
  }
  return {
    pids: children.map((c) => c.pid),
    stop: async () => {
      await Promise.all(children.map((c) => c.stop(0)));
    },
  };
}
