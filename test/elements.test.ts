/**
 * Every GStreamer element the service can ask for is listed in
 * pipelines/elements.txt with the Debian package that really holds it, that
 * package is installed by scripts/setup.sh, and this machine has the element.
 * A template that names a new element fails here until it is listed, so a
 * missing package is found by setup, never by a user's channel.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import {
  describeGstFailure,
  elementsNamedIn,
  installedElements,
  missingElements,
  readElementManifest,
} from '../src/gst/elements.js';
import { findPipelinesDir, loadTemplate } from '../src/gst/templates.js';
import { repoPath } from '../src/paths.js';

const run = promisify(execFile);
const dir = findPipelinesDir();
const manifest = readElementManifest(dir);
const templates = readdirSync(dir).filter((f) => f.endsWith('.gst')).map((f) => f.slice(0, -4));

test('the parser finds elements, not properties, caps, pad references or quoted values', () => {
  const launch = 'videotestsrc num-buffers=3 ! video/x-raw,width=2 ! timeoverlay font-desc="Sans 36" ! mux. demux.video ! queue ! mp4mux name=mux';
  assert.deepEqual(elementsNamedIn(launch).sort(), ['mp4mux', 'queue', 'timeoverlay', 'videotestsrc']);
});

test('every element a template names is in pipelines/elements.txt, and every listed one is used', () => {
  const named = new Map<string, string>();
  for (const name of templates) for (const e of elementsNamedIn(loadTemplate(name, dir))) named.set(e, name);
  assert.ok(named.size > 30, `only ${named.size} elements found in ${templates.length} templates`);
  const listed = new Set(manifest.map((m) => m.element));
  const unlisted = [...named].filter(([e]) => !listed.has(e)).map(([e, t]) => `${e} (in ${t}.gst)`);
  assert.deepEqual(unlisted, [], 'elements named by templates but missing from pipelines/elements.txt');
  const unused = manifest.filter((m) => !m.autoplugged && !named.has(m.element)).map((m) => m.element);
  assert.deepEqual(unused, [], 'listed as named by a template, but no template names them (mark autoplugged or remove)');
});

test('this machine has every listed element', async () => {
  assert.deepEqual((await missingElements(manifest)).map((m) => m.element), []);
  const have = await installedElements();
  assert.ok(!have.has('no-such-element-vlive'), 'the listing must not accept anything');
});

test('each listed package is the one that holds the element, and setup installs it', async () => {
  const setup = readFileSync(repoPath('scripts/setup.sh'), 'utf8');
  const setupList = /packages=\(([\s\S]*?)\n\)/.exec(setup)?.[1]?.replace(/#.*/g, '').split(/\s+/).filter((p) => p !== '') ?? [];
  for (const { element, pkg } of manifest) {
    assert.ok(setupList.includes(pkg), `${pkg} (for ${element}) is not in scripts/setup.sh's packages`);
    const { stdout } = await run('gst-inspect-1.0', [element]);
    const file = /Filename\s+(\S+)/.exec(stdout)?.[1];
    assert.ok(file !== undefined, `gst-inspect-1.0 ${element} names no plugin file`);
    // Debian 12 merged /lib into /usr/lib; dpkg knows the path it shipped.
    const owners = await run('dpkg', ['-S', file.startsWith('/usr/') ? file : join('/usr', file)]).catch(() => run('dpkg', ['-S', file]));
    const owner = owners.stdout.split(':')[0];
    assert.equal(owner, pkg, `${element} is in ${owner}, not ${pkg}`);
  }
});

test('a gst-launch failure for a missing element names its package', () => {
  const err = Object.assign(new Error('Command failed'), { stderr: 'WARNING: erroneous pipeline: no element "timeoverlay"\n' });
  const line = describeGstFailure(err);
  assert.match(line, /timeoverlay \(Debian package gstreamer1\.0-x\)/);
  assert.match(line, /npm run setup/);
});
