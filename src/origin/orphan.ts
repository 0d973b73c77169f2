/**
 * Cleaning up an nginx left by a previous run (a crash, a kill -9 between
 * fork and the parent-death signal, a debugger). It would hold our ports.
 * The pid file alone is not proof: pids are reused, so the process must
 * also be an nginx started with our conf path before we kill it.
 */
import { readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.js';

async function readPid(pidFile: string): Promise<number | null> {
  const text = await readFile(pidFile, 'utf8').catch(() => null);
  if (text === null) return null;
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 1 ? pid : null;
}

/** Argument vector of a live process, or null if it is gone or a zombie. */
export async function processArgs(pid: number): Promise<string[] | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return null;
  // Field 3 follows the parenthesised command, which may itself hold spaces.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  if (state === 'Z' || state === 'X') return null;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  if (cmdline === null || cmdline === '') return null;
  return cmdline.split('\0').filter((a) => a !== '');
}

/** An nginx (by argv[0]'s base name) whose arguments name our conf file. */
export function isOurNginx(args: readonly string[], confPath: string): boolean {
  const exe = (args[0] ?? '').split(' ')[0] ?? '';
  const base = exe.slice(exe.lastIndexOf('/') + 1);
  // Matching whole words keeps /x/nginx.conf from matching /x/nginx.conf.bak.
  return /^nginx:?$/.test(base) && args.join(' ').split(' ').includes(confPath);
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await processArgs(pid)) === null) return true;
    await sleep(20);
  }
  return (await processArgs(pid)) === null;
}

/**
 * Kills the nginx named by `pidFile` if it runs our `confPath`, and removes
 * a stale pid file. Returns the pid it killed, or null.
 */
export async function killOrphanNginx(pidFile: string, confPath: string, log: Logger): Promise<number | null> {
  const pid = await readPid(pidFile);
  if (pid === null) return null;
  const args = await processArgs(pid);
  if (args === null || !isOurNginx(args, confPath)) {
    log.info('stale origin pid file removed', { pid });
    await rm(pidFile, { force: true });
    return null;
  }
  log.warn('killing origin nginx left by a previous run', { pid });
  // It is not our child, so we cannot wait() on it: poll /proc instead.
  // SIGKILL straight away: nothing in it is worth a graceful shutdown.
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone between the check and the kill.
  }
  if (!(await waitGone(pid, 5_000))) throw new Error(`origin nginx ${pid} from a previous run did not die after SIGKILL`);
  await rm(pidFile, { force: true });
  return pid;
}
