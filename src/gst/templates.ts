/**
 * Loads the launch-line templates in <repo root>/pipelines/ and renders them.
 * Rendering is the one place launch text is assembled, and it only ever
 * inserts integers: user strings go in as element properties (see
 * src/worker/plan.ts and properties.ts). Imports nothing of ours.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const templateNames = [
  'source-rtmp-av',
  'source-rtsp-tcp',
  'source-rtsp-udp',
  'source-hls',
  'source-httpflv',
  'source-srt',
  'relay-out',
  'live-decode-rtmp',
  'live-decode-uri',
  'live-encode',
  'tap-source',
  'tap-video',
  'tap-record',
  'tap-record-video',
  'tap-record-audio',
  'tap-snapshot',
  'tap-audio-drop',
  'snapshot-decode',
  'target-srt',
] as const;

export type TemplateName = (typeof templateNames)[number];

/** Template text with comments stripped, keyed by name. */
export type Templates = Readonly<Record<TemplateName, string>>;

/**
 * The repo root is the nearest ancestor holding package.json. Walking up
 * rather than a fixed '../..' keeps this right from src/ and dist/src/ alike.
 */
export function findPipelinesDir(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'pipelines');
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${from}: cannot find pipelines/`);
    dir = up;
  }
}

function stripComments(text: string): string {
  return text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** One template's launch text, comments stripped; throws naming the file that is missing or empty. */
export function loadTemplate(name: string, dir: string = findPipelinesDir()): string {
  const file = resolve(dir, `${name}.gst`);
  const text = stripComments(readFileSync(file, 'utf8'));
  if (text === '') throw new Error(`pipeline template ${file} is empty`);
  return text;
}

/** Reads every worker template once. */
export function loadTemplates(dir: string = findPipelinesDir()): Templates {
  const out: Partial<Record<TemplateName, string>> = {};
  for (const name of templateNames) out[name] = loadTemplate(name, dir);
  return out as Templates;
}

/**
 * Fills `{{param}}` placeholders with integers. Everything else in the
 * template is fixed text from the repository, so the result contains no
 * caller-controlled characters beyond digits.
 */
export function render(template: string, params: Readonly<Record<string, number>> = {}): string {
  const out = template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const v = params[key];
    if (v === undefined) throw new Error(`template parameter ${key} has no value`);
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`template parameter ${key} must be a non-negative integer, got ${v}`);
    return String(v);
  });
  if (out.includes('{{') || out.includes('}}')) throw new Error('template has a malformed placeholder');
  return out;
}

/**
 * Launch text as gst-launch-1.0's arguments. The tool escapes the spaces in
 * each argument (gst_parse_launchv), so text goes in a token an argument,
 * with a quoted value's quotes dropped: `font-desc="Sans 36"` becomes the one
 * argument `font-desc=Sans 36`.
 */
export function launchArgv(text: string): string[] {
  return (text.match(/(?:[^\s"]+|"[^"]*")+/g) ?? []).map((t) => t.replace(/"/g, ''));
}

