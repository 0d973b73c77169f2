/** Every error code the service can give is documented in README.md's error table, and every code used in src/ is declared. */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { errorCodes, protocolErrorCodes } from '../src/errors.js';
import { repoPath } from '../src/paths.js';

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name === 'generated') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

it('documents every error code in the README table', async () => {
  const readme = await readFile(repoPath('README.md'), 'utf8');
  for (const code of [...Object.keys(errorCodes), ...Object.keys(protocolErrorCodes)]) {
    assert.match(readme, new RegExp(`^\\| \`${code}\` \\|`, 'm'), `README.md has no table row for ${code}`);
  }
});

it('uses no error code that is not declared', async () => {
  const declared = new Set([...Object.keys(errorCodes), ...Object.keys(protocolErrorCodes)]);
  for (const file of await sourceFiles(repoPath('src'))) {
    const text = await readFile(file, 'utf8');
    for (const m of text.matchAll(/new VliveError\(\s*'([A-Z_]+)'/g)) {
      assert.ok(declared.has(m[1] ?? ''), `${file} uses undeclared code ${m[1]}`);
    }
    for (const m of text.matchAll(/code: '([A-Z_]+)'/g)) {
      assert.ok(declared.has(m[1] ?? ''), `${file} uses undeclared code ${m[1]}`);
    }
  }
});
