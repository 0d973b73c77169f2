/**
 * Child processes of the benchmark (the service, ffmpeg publishers, ffprobe
 * receivers) and their cleanup.
 *
 * Every child is started through `setpriv --pdeathsig SIGKILL`, so the kernel
 * kills it if the benchmark itself dies without cleaning up (kill -9, a
 * crash). The normal path is stop(): SIGTERM, then SIGKILL after a grace, and
 * wait for the exit. Spawning happens on the main thread, which is the thread
 * PR_SET_PDEATHSIG follows.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { processTree } from './procfs.js';

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Child {
  readonly pid: number;
  readonly process: ChildProcess;
  readonly exited: Promise<ChildExit>;
  readonly running: boolean;
  /**
   * SIGTERM, then SIGKILL to it and to everything below it after `graceMs`;
   * resolves once it has exited. Safe to call twice.
   */
  stop(graceMs: number): Promise<ChildExit>;
}

export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly stdio?: StdioOptions;
  readonly cwd?: string;
}

export function spawnChild(cmd: string, args: readonly string[], options: SpawnOptions = {}): Child {
  const child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', cmd, ...args], {
    stdio: options.stdio ?? 'ignore',
    env: options.env ?? process.env,
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
  });
  let running = true;
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('error', () => {
      running = false;
      resolve({ code: null, signal: null });
    });
    child.once('exit', (code, signal) => {
      running = false;
      resolve({ code, signal });
    });
  });
  let stopping: Promise<ChildExit> | null = null;
  const stop = async (graceMs: number): Promise<ChildExit> => {
    if (!running) return exited;
    const pid = child.pid;
    // Its children are found now: once it is gone they are re-parented and lost from view.
    const below = pid === undefined ? [] : (await processTree(pid)).map((p) => p.pid).filter((p) => p !== pid);
    child.kill('SIGTERM');
    const grace = new AbortController();
    const graceful = await Promise.race([exited.then(() => true), sleep(graceMs, false, { signal: grace.signal }).catch(() => false)]);
    grace.abort();
    if (!graceful) child.kill('SIGKILL');
    const exit = await exited;
    // Workers and nginx die with their parent by themselves; this is the belt to those braces.
    for (const p of below) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    return exit;
  };
  return {
    pid: child.pid ?? -1,
    process: child,
    exited,
    get running() {
      return running;
    },
    stop: (graceMs) => (stopping ??= stop(graceMs)),
  };
}

/**
 * Cleanup steps, run last-in first-out exactly once, also on Ctrl-C. The
 * benchmark registers each thing it starts right after starting it.
 */
export class Disposers {
  readonly #steps: { name: string; fn: () => Promise<void> }[] = [];

  /** Registers a cleanup step and returns a function that runs it early (and unregisters it). */
  add(name: string, fn: () => Promise<void>): () => Promise<void> {
    const step = { name, fn };
    this.#steps.push(step);
    return async () => {
      const i = this.#steps.indexOf(step);
      if (i < 0) return;
      this.#steps.splice(i, 1);
      await fn();
    };
  }

  async drain(onError: (name: string, err: unknown) => void): Promise<void> {
    while (this.#steps.length > 0) {
      const step = this.#steps.pop() as { name: string; fn: () => Promise<void> };
      await step.fn().catch((err: unknown) => onError(step.name, err));
    }
  }
}
