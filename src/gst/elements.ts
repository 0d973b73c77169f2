/**
 * The GStreamer elements the service can ask for, and the Debian package of
 * each: pipelines/elements.txt, checked by scripts/setup.sh, by the service
 * at start-up and by test/elements.test.ts against every template. A missing
 * element is then found before any channel needs it, and named with the
 * package that brings it.
 *
 * Imports nothing of the service: setup, main and the demo all use it.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findPipelinesDir } from './templates.js';

const run = promisify(execFile);

export interface ElementEntry {
  readonly element: string;
  readonly pkg: string;
  /** Not named in any template: plugged in by decodebin, uridecodebin or urisourcebin for a supported input. */
  readonly autoplugged: boolean;
}

/** pipelines/elements.txt: `element package [autoplugged]` a line, `#` comments. */
export function readElementManifest(dir: string = findPipelinesDir()): ElementEntry[] {
  const out: ElementEntry[] = [];
  for (const raw of readFileSync(join(dir, 'elements.txt'), 'utf8').split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    const [element, pkg, flag] = line.split(/\s+/);
    if (element === undefined || pkg === undefined || (flag !== undefined && flag !== 'autoplugged')) {
      throw new Error(`pipelines/elements.txt: cannot read the line "${raw}"`);
    }
    out.push({ element, pkg, autoplugged: flag === 'autoplugged' });
  }
  return out;
}

/**
 * Element factory names in launch text: the first word of each chain link.
 * Properties (k=v), caps (type/subtype,…), pad references (name. or
 * name.pad) and links (!) are not elements; quoted values are skipped whole.
 */
export function elementsNamedIn(launch: string): string[] {
  const tokens = launch.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
  const out = new Set<string>();
  for (const t of tokens) {
    if (t === '!' || t.includes('=') || t.includes('/') || t.includes('.') || t.includes('"')) continue;
    if (/^[a-z0-9][a-z0-9_-]*$/.test(t)) out.add(t);
  }
  return [...out];
}

/** Every element factory this machine's GStreamer has (one gst-inspect-1.0 run). */
export async function installedElements(): Promise<Set<string>> {
  const { stdout } = await run('gst-inspect-1.0', [], { maxBuffer: 16 << 20, timeout: 60_000 });
  const out = new Set<string>();
  // Lines read "plugin:  element: description".
  for (const line of stdout.split('\n')) {
    const m = /^[\w-]+:\s+([\w-]+):/.exec(line);
    if (m?.[1] !== undefined) out.add(m[1]);
  }
  return out;
}

/** What to tell a person about missing elements: each with its package, and how to install them. */
export function missingElementsAdvice(missing: readonly ElementEntry[]): string {
  const names = missing.map((m) => `${m.element} (Debian package ${m.pkg})`).join(', ');
  const pkgs = [...new Set(missing.map((m) => m.pkg))].join(' ');
  return `GStreamer element${missing.length > 1 ? 's' : ''} missing: ${names}. Run \`npm run setup\` as root, or \`apt-get install ${pkgs}\``;
}

/** The manifest's entries that this machine's GStreamer lacks. */
export async function missingElements(manifest: readonly ElementEntry[] = readElementManifest()): Promise<ElementEntry[]> {
  const have = await installedElements();
  return manifest.filter((e) => !have.has(e.element));
}

/**
 * One line for a failed gst-launch-1.0 run (execFile's error): a missing
 * element named with its package, else the tool's own first complaint.
 */
export function describeGstFailure(err: unknown): string {
  const e = err as { stderr?: unknown; stdout?: unknown; message?: unknown };
  const text = `${String(e.stderr ?? '')}\n${String(e.stdout ?? '')}`;
  const m = /no element "([^"]+)"/.exec(text);
  if (m?.[1] !== undefined) {
    const element = m[1];
    const entry = readElementManifest().find((x) => x.element === element);
    return missingElementsAdvice([{ element, pkg: entry?.pkg ?? 'unknown: not in pipelines/elements.txt', autoplugged: false }]);
  }
  const first = text.split('\n').map((l) => l.trim()).find((l) => l !== '');
  return first ?? String(e.message ?? err);
}
