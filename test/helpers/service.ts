/**
 * Runs the service as a real child process (node dist/src/main.js), for tests
 * that kill it or stop it with a signal. The disposer SIGKILLs it if it is
 * still there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { repoPath } from '../../src/paths.js';

export interface ServiceProcess {
  proc: ChildProcess;
  url: string;
  exited: Promise<number | null>;
  output(): string;
  kill(signal?: NodeJS.Signals): void;
}

export async function spawnService(env: Record<string, string>, args: string[] = []): Promise<ServiceProcess> {
  const proc = spawn(process.execPath, [repoPath('dist/src/main.js'), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not come up:\n${out}`)), 30_000);
    const check = (): void => {
      const m = /GraphQL \(HTTP and WebSocket\): (\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    proc.stdout?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with ${code} before it came up:\n${out}`));
    });
  });
  return {
    proc,
    url,
    exited,
    output: () => out,
    kill: (signal = 'SIGKILL') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    },
  };
}

/** True while the process exists and is not a zombie. */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The state follows the parenthesised command name.
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Polls until pred() is true, or throws after timeoutMs. For state outside our process only. */
export async function eventually(pred: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  await pollUntil(pred, (ok) => ok, timeoutMs, what);
}

/** Polls get() until ok() accepts its value, and returns it; throws after timeoutMs with the last value seen. */
export async function pollUntil<T>(get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
