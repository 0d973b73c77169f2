/**
 * Where the managed origin's TCP_NODELAY preload is (src/origin/nodelay.c,
 * built by scripts/build-nodelay.sh into dist/native/), and the environment
 * nginx runs with to load it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** dist/src/origin/nodelay.js → dist/native/libnodelay.so. */
export const nodelayLibrary = fileURLToPath(new URL('../../native/libnodelay.so', import.meta.url));

/**
 * `env` with the preload added in front of any LD_PRELOAD already there, or
 * null when the library was not built (nginx then runs as Debian ships it).
 */
export function withNodelay(env: NodeJS.ProcessEnv, library: string = nodelayLibrary): NodeJS.ProcessEnv | null {
  if (!existsSync(library)) return null;
  const prior = env['LD_PRELOAD'];
  return { ...env, LD_PRELOAD: prior === undefined || prior === '' ? library : `${library}:${prior}` };
}
