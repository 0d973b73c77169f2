/**
 * What rendering the programme guide costs the service's event loop: the
 * XMLTV and JSON of `channels` channels with `entries` entries each, rendered
 * `runs` times (pure: no database, no HTTP). For README's figure:
 *
 *   node dist/bench/epg-render.js [channels=500] [entries=100] [runs=5]
 */
import type { ChannelProgramme } from '../src/guide/programme.js';
import { renderJson, renderXmltv } from '../src/guide/xmltv.js';

const [channels = 500, entries = 100, runs = 5] = process.argv.slice(2).map(Number);
const now = Date.now();
const window = { from: new Date(now - 6 * 3600_000), to: new Date(now + 24 * 3600_000) };
const programmes: ChannelProgramme[] = Array.from({ length: channels }, (_, c) => ({
  id: `channel${c}`,
  name: `Channel ${c} & "friends"`,
  entries: Array.from({ length: entries }, (_, k) => ({
    start: new Date(now + k * 60_000),
    stop: new Date(now + (k + 1) * 60_000),
    title: `Item ${k} <${c}>`,
    kind: 'PLANNED' as const,
    vodResourceId: 'vod',
    index: k,
  })),
}));
for (let i = 0; i < runs; i++) {
  let t0 = performance.now();
  const xml = renderXmltv(programmes, window);
  const xmlMs = performance.now() - t0;
  t0 = performance.now();
  const json = renderJson(programmes, window);
  const jsonMs = performance.now() - t0;
  console.log(`${channels} channels x ${entries} entries: XMLTV ${xmlMs.toFixed(0)} ms (${(xml.length / 2 ** 20).toFixed(1)} MiB), JSON ${jsonMs.toFixed(0)} ms (${(json.length / 2 ** 20).toFixed(1)} MiB)`);
}
