/**
 * The house's floors: every import between two parts of src/ points down,
 * or sideways within a floor, and no two parts import each other, however
 * indirectly. A part is a folder under src/, or a file directly in src/
 * (named without its extension). A plain scan of the import lines of the
 * sources, type-only imports included: a type import is a dependency too.
 *
 * The order is issue #19's: api → channels, ondemand, schedule, cluster →
 * pool, worker, origin, vods → media, gst → db, config, errors. The parts
 * that list does not name sit where their imports really put them:
 * - app, main and demo compose everything (the composition root, on top);
 * - metrics reads the channels, the pool, schedules and on-demand, and only
 *   app.ts reads it: the floor of api;
 * - recording (retention) is imported by channels and reads db and config:
 *   beside pool;
 * - guide (the programme guide) reads the channels' records and events and
 *   api serves it: beside channels;
 * - rtmp (RTMP on a socket) imports nothing of ours and the worker uses it:
 *   beside media and gst;
 * - names (shared input rules), log, paths, procfs, cleanups, v8-flags and
 *   generated (the Prisma clients) sit on the ground floor with db, config
 *   and errors.
 * A new folder or root file fails the first test until it is placed here.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

/** Floors from the top; a part may import parts on its own floor or any floor below. */
const floors: readonly (readonly string[])[] = [
  ['app', 'main', 'demo'],
  ['api', 'metrics'],
  ['channels', 'ondemand', 'schedule', 'cluster', 'webhooks', 'guide'],
  ['pool', 'worker', 'origin', 'vods', 'recording'],
  ['media', 'gst', 'rtmp'],
  ['db', 'config', 'errors', 'names', 'log', 'paths', 'procfs', 'cleanups', 'v8-flags', 'generated', 'serial-pass'],
];

const floorOf = new Map<string, number>(floors.flatMap((parts, i) => parts.map((p) => [p, floors.length - i] as const)));

/** src/ of the repository, from test/ (tsx) or dist/test/ (the built suite). */
function findSrc(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src'))) return join(dir, 'src');
    const up = dirname(dir);
    if (up === dir) throw new Error('no repository root above this test');
    dir = up;
  }
}

const src = findSrc();

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The part a path under src/ belongs to: its first folder, or the root file's name. */
function partOf(path: string): string {
  const first = relative(src, path).split(sep)[0] ?? '';
  return first.replace(/\.(ts|js)$/, '');
}

/** Relative specifiers of static imports, re-exports and dynamic imports with a literal. */
function importsOf(text: string): string[] {
  const specs: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"`;]*?from\s+'([^']+)'/g)) specs.push(m[1]!);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s+'([^']+)'/g)) specs.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) specs.push(m[1]!);
  return specs.filter((s) => s.startsWith('.'));
}

interface Edge {
  readonly from: string;
  readonly to: string;
  /** The importing file and its specifier, for the failure message. */
  readonly where: string;
}

function edges(): Edge[] {
  const out: Edge[] = [];
  for (const file of sources(src)) {
    const from = partOf(file);
    if (from === 'generated') continue; // Prisma's own output: it imports only itself.
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec);
      assert.ok(target.startsWith(src + sep), `${relative(src, file)} imports ${spec}, outside src/`);
      const to = partOf(target);
      if (to !== from) out.push({ from, to, where: `${relative(src, file)} → ${spec}` });
    }
  }
  return out;
}

/** Every cycle's parts, found by a depth-first search over the part graph. */
function cycles(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 'open') found.push([...stack.slice(stack.indexOf(m)), m]);
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return found;
}

describe('layers of src/', () => {
  const all = edges();

  it('finds the imports it judges (the scan is not blind)', () => {
    assert.ok(all.length > 100, `only ${all.length} imports between parts found`);
    for (const [from, to] of [['api', 'channels'], ['worker', 'gst'], ['vods', 'media'], ['app', 'cluster'], ['channels', 'names']]) {
      assert.ok(all.some((e) => e.from === from && e.to === to), `no ${from} → ${to} import seen`);
    }
  });

  it('places every folder and root file of src/ on a floor', () => {
    const parts = new Set(readdirSync(src).map((n) => n.replace(/\.ts$/, '')));
    const unplaced = [...parts].filter((p) => !floorOf.has(p));
    assert.deepEqual(unplaced, [], `place these in test/layers.test.ts's floors: ${unplaced.join(', ')}`);
  });

  it('has every import point down or sideways, never up', () => {
    const up = all.filter((e) => (floorOf.get(e.to) ?? 0) > (floorOf.get(e.from) ?? 0)).map((e) => `${e.from} → ${e.to} (${e.where})`);
    assert.deepEqual(up, []);
  });

  it('has no cycle between parts', () => {
    const graph = new Map<string, Set<string>>();
    for (const e of all) {
      const set = graph.get(e.from) ?? new Set<string>();
      set.add(e.to);
      graph.set(e.from, set);
    }
    const found = cycles(graph).map((c) => c.join(' → '));
    assert.deepEqual(found, []);
  });

  it('judges a made-up graph right: an up import and a sideways cycle are caught', () => {
    const g = new Map<string, Set<string>>([
      ['channels', new Set(['cluster', 'pool'])],
      ['cluster', new Set(['channels'])],
      ['pool', new Set(['media'])],
    ]);
    assert.deepEqual(cycles(g), [['channels', 'cluster', 'channels']]);
    assert.ok((floorOf.get('channels') ?? 0) > (floorOf.get('media') ?? 0));
    assert.ok((floorOf.get('media') ?? 0) < (floorOf.get('pool') ?? 0), 'media → pool would point up');
    assert.deepEqual(importsOf("import type { A } from '../x/a.js';\nexport { b } from './b.js';\nconst c = await import('../c.js');\nimport './side.js';"), ['../x/a.js', './b.js', './side.js', '../c.js']);
  });
});
