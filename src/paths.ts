/** Files that ship with the repo (schema.graphql, pipelines/) are found from here, in src/ and in dist/src/ alike. */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(resolve(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the vlive repository root');
    dir = up;
  }
  return dir;
}

export const repoRoot = findRoot();

export const repoPath = (...parts: string[]): string => resolve(repoRoot, ...parts);
