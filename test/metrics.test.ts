/**
 * Prometheus metrics end to end: the app in-process (real workers, real
 * nginx-rtmp), a real Prometheus scraping GET /metrics every second, and
 * promtool linting the exposition. Every PromQL expression of every Grafana
 * dashboard panel must return data through Prometheus's HTTP API.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventLoopSampleMs } from '../src/metrics/metrics.js';
import { repoPath } from '../src/paths.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { collect, gql, gqlOk, wsClient } from './helpers/gql.js';
import { makeMp4 } from './helpers/media.js';
import { promtoolCheckMetrics, startPrometheus, type Prometheus } from './helpers/prometheus.js';

interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition into samples (comments skipped). */
function parseExposition(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ''] = l[2] ?? '';
    out.push({ name: m[1] ?? '', labels, value: Number(m[3]) });
  }
  return out;
}

function pick(series: Series[], name: string, labels: Record<string, string> = {}): Series[] {
  return series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The single value of a series; fails naming it when absent or ambiguous. */
function value(series: Series[], name: string, labels: Record<string, string> = {}): number {
  const found = pick(series, name, labels);
  assert.equal(found.length, 1, `expected one ${name}${JSON.stringify(labels)}, found ${found.length}`);
  return found[0]?.value ?? NaN;
}

interface Panel {
  title: string;
  description?: string;
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: { expr?: string }[];
  panels?: Panel[];
}

describe('Prometheus metrics and dashboards', () => {
  let t: TestApp;
  let prom: Prometheus;
  let publisher: ChildProcess | null = null;
  let healthy: string;
  let relay: string;
  let metricsUrl: string;

  const scrape = async (): Promise<{ text: string; series: Series[] }> => {
    const res = await fetch(metricsUrl);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    return { text, series: parseExposition(text) };
  };

  const createAndStart = async (input: Record<string, unknown>): Promise<string> => {
    const { createVirtualLive } = await gqlOk<{ createVirtualLive: { id: string } }>(
      t.url,
      'mutation CreateChannel($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }',
      { i: input },
    );
    const { startVirtualLive } = await gqlOk<{ startVirtualLive: { status: string; errorString: string | null } }>(
      t.url,
      'mutation StartChannel($id: ID!) { startVirtualLive(id: $id) { status errorString } }',
      { id: createVirtualLive.id },
    );
    assert.equal(startVirtualLive.status, 'LIVING', `start failed: ${startVirtualLive.errorString}`);
    return createVirtualLive.id;
  };

  before(async () => {
    t = await startTestApp();
    metricsUrl = `http://127.0.0.1:${t.app.api.port}/metrics`;
    prom = await startPrometheus({ targets: [`127.0.0.1:${t.app.api.port}`], scrapeIntervalSeconds: 1 });
    await mkdir(join(t.mediaRoot, 'clips'), { recursive: true });
    const file = await makeMp4(join(t.mediaRoot, 'clips'), { name: 'bars', seconds: 4, fps: 25 });
    const { registerVodResource } = await gqlOk<{ registerVodResource: { id: string } }>(
      t.url,
      'mutation RegisterVod($i: RegisterVodResourceInput!) { registerVodResource(input: $i) { id } }',
      { i: { name: 'bars', path: 'clips/bars.mp4' } },
    );
    healthy = await createAndStart({ name: 'healthy', sourceType: 'VOD', vodResourceId: registerVodResource.id, loop: true });

    // The starved channel relays a live source that the test can freeze (SIGSTOP) at will.
    publisher = spawn('ffmpeg', ['-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', file, '-c', 'copy', '-f', 'flv', t.app.origin.publishUrl('upstream')], {
      stdio: 'ignore',
    });
    await t.app.origin.waitForPublish('upstream', 10_000);
    relay = await createAndStart({ name: 'relay', sourceType: 'ONLINE', sourceUrl: t.app.origin.publishUrl('upstream') });
  });

  after(async () => {
    if (publisher !== null && publisher.exitCode === null) {
      publisher.kill('SIGCONT');
      publisher.kill('SIGKILL');
    }
    await prom?.dispose();
    await t?.dispose();
  });

  it('serves per-worker, per-channel, pool and API series that promtool accepts', async () => {
    // An anonymous query, an error, and a named query, to see the operation labels.
    await gqlOk(t.url, '{ virtualLives { id } }');
    const bad = await gql(t.url, 'query BadId { virtualLive(id: "bad id!") { id } }');
    assert.ok(bad.errors?.length);
    await gqlOk(t.url, 'query Workers { workers { id pipelines } }');
    // The per-channel memory estimate needs a heartbeat that shows the channels on their worker.
    await new Promise((r) => setTimeout(r, 1500));
    const { text, series } = await scrape();

    const lint = await promtoolCheckMetrics(text);
    assert.equal(lint.code, 0, `promtool check metrics:\n${lint.output}`);

    assert.equal(value(series, 'vlive_channels', { status: 'LIVING' }), 2);
    assert.equal(value(series, 'vlive_channels', { status: 'STOPPED' }), 0);
    assert.equal(value(series, 'vlive_channels', { status: 'ERROR' }), 0);

    const workers = pick(series, 'vlive_worker_pipelines');
    assert.deepEqual(workers.map((s) => s.labels['worker']).sort(), ['w0', 'w1']);
    // Least-loaded placement: two channels on two workers, one each.
    assert.deepEqual(workers.map((s) => s.value), [1, 1]);
    for (const w of ['w0', 'w1']) {
      const pss = value(series, 'vlive_worker_pss_bytes', { worker: w });
      const rss = value(series, 'vlive_worker_rss_bytes', { worker: w });
      assert.ok(pss > 10 * 2 ** 20 && pss <= rss, `${w}: PSS ${pss}, RSS ${rss}`);
      assert.equal(value(series, 'vlive_worker_restarts_total', { worker: w }), 0);
      assert.ok(value(series, 'vlive_worker_cpu_seconds_total', { worker: w }) > 0);
    }
    assert.equal(value(series, 'vlive_workers', { state: 'ready' }), 2);
    assert.equal(value(series, 'vlive_pool_pipeline_slots'), 2 * t.config.maxPipelinesPerWorker);
    assert.equal(value(series, 'vlive_pool_pipelines'), 2);
    // Taken before the first channel started; every worker hosts one now.
    assert.ok(value(series, 'vlive_worker_idle_pss_bytes') > 0);

    for (const id of [healthy, relay]) {
      const mem = value(series, 'vlive_channel_memory_bytes', { channel: id });
      assert.ok(mem >= 0 && mem < 200 * 2 ** 20, `memory estimate of ${id}: ${mem}`);
      assert.ok(value(series, 'vlive_channel_position_seconds', { channel: id }) > 0);
      assert.equal(value(series, 'vlive_channel_reconnects_total', { channel: id }), 0);
      assert.equal(value(series, 'vlive_channel_restarts_total', { channel: id }), 0);
    }

    assert.equal(value(series, 'vlive_graphql_operations_total', { operation: 'StartChannel', outcome: 'ok' }), 2);
    assert.equal(value(series, 'vlive_graphql_operations_total', { operation: 'BadId', outcome: 'error' }), 1);
    assert.ok(value(series, 'vlive_graphql_operations_total', { operation: 'anonymous', outcome: 'ok' }) >= 1);
    assert.equal(value(series, 'vlive_graphql_operation_duration_seconds_count', { operation: 'StartChannel', outcome: 'ok' }), 2);
    assert.ok(value(series, 'vlive_process_cpu_seconds_total') > 0);
    assert.ok(value(series, 'vlive_nodejs_heap_size_used_bytes') > 0);

    // Cardinality: channel series carry ids and target indices, never URLs or names.
    for (const s of series) {
      for (const v of Object.values(s.labels)) assert.doesNotMatch(v, /rtmp:|healthy|relay/, `${s.name} has label value ${v}`);
    }
  });

  it('measures frame rate out for a VOD channel and a relay, both of 25 fps sources', async () => {
    for (const id of [healthy, relay]) {
      const expr = `rate(vlive_channel_output_frames_total{channel="${id}"}[10s])`;
      // The rate needs a few scrapes of the counter before it settles.
      const [r] = await prom.waitFor(expr, (x) => Number(x[0]?.value[1] ?? 0) > 20, 30_000);
      const fps = Number(r?.value[1] ?? 0);
      assert.ok(fps > 20 && fps < 30, `${id}: ${fps} frames/s out`);
    }
  });

  it('counts stutter for a starved channel and none for a healthy one', async () => {
    const stutter = (id: string) => `vlive_channel_stutter_seconds_total{channel="${id}"}`;
    const { series } = await scrape();
    const relayBefore = pick(series, 'vlive_channel_stutter_seconds_total', { channel: relay });
    assert.equal(
      relayBefore.length,
      1,
      'vlive_channel_stutter_seconds_total is missing: the worker heartbeat does not report stutterSeconds (PipelineStats in src/pool/ipc.ts)',
    );
    const before = relayBefore[0]?.value ?? NaN;

    // Starve the relay: its upstream publisher freezes for 3 s, then resumes.
    assert.ok(publisher !== null);
    publisher.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, 3000));
    publisher.kill('SIGCONT');

    // A 3 s freeze is about 3 s - 2 frames of stutter; ask for well over one second.
    await prom.waitFor(stutter(relay), (r) => Number(r[0]?.value[1] ?? 0) > before + 1.5, 15_000);
    const after = await scrape();
    // Shorter than the 5 s stall watchdog: stutter, but no stall and no reconnect.
    assert.equal(value(after.series, 'vlive_channel_stalls_total', { channel: relay }), 0);
    assert.equal(value(after.series, 'vlive_channel_reconnects_total', { channel: relay }), 0);
    assert.equal(value(after.series, 'vlive_channel_stutter_seconds_total', { channel: healthy }), 0);
    const [healthyInProm] = await prom.query(stutter(healthy));
    assert.equal(healthyInProm?.value[1], '0');
  });

  it('counts a stall, the reconnect it causes and the restart after it', async () => {
    assert.ok(publisher !== null);
    const client = wsClient(t.url);
    const sub = collect<{ virtualLiveStatusChanged: { status: string } }>(
      client,
      'subscription($id: ID) { virtualLiveStatusChanged(id: $id) { status } }',
      { id: relay },
    );
    try {
      // Past the worker's 5 s stall watchdog: the pipeline fails and the channel reconnects.
      publisher.kill('SIGSTOP');
      await sub.until((e) => e.some((x) => x.virtualLiveStatusChanged.status === 'RECONNECTING'), 15_000);
      publisher.kill('SIGCONT');
      // LIVING after the RECONNECTING: detail events (viewers) may say LIVING before it.
      const livingAgain = (e: { virtualLiveStatusChanged: { status: string } }[]): boolean => {
        const from = e.findIndex((x) => x.virtualLiveStatusChanged.status === 'RECONNECTING');
        return from >= 0 && e.slice(from + 1).some((x) => x.virtualLiveStatusChanged.status === 'LIVING');
      };
      await sub.until(livingAgain, 20_000);
    } finally {
      publisher.kill('SIGCONT');
      sub.dispose();
      await client.dispose();
    }
    // The stall comes in a worker heartbeat, which may follow the LIVING event by up to an interval.
    let { series } = await scrape();
    for (const deadline = Date.now() + 5000; value(series, 'vlive_channel_stalls_total', { channel: relay }) < 1 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 250));
      ({ series } = await scrape());
    }
    assert.equal(value(series, 'vlive_channel_stalls_total', { channel: relay }), 1);
    assert.equal(value(series, 'vlive_channel_reconnects_total', { channel: relay }), 1);
    assert.equal(value(series, 'vlive_channel_restarts_total', { channel: relay }), 1);
    assert.equal(value(series, 'vlive_channel_reconnects_total', { channel: healthy }), 0);
  });

  it('answers every dashboard panel query with data through Prometheus', async () => {
    const dir = repoPath('grafana', 'dashboards');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
    assert.deepEqual(files, ['channel-detail.json', 'fleet-overview.json', 'pool-and-api.json']);
    // Rates over 10 s need two scrapes inside the window of every series.
    await prom.waitFor('count(vlive_worker_pipelines) >= 2 and min(count_over_time(vlive_worker_pipelines[10s])) >= 5', (r) => r.length > 0, 20_000);
    // GraphQL traffic inside the rate window, for the API panels.
    await gqlOk(t.url, 'query Channels { virtualLives { id status } }');
    await gql(t.url, 'query BadId { virtualLive(id: "bad id!") { id } }');
    await new Promise((r) => setTimeout(r, 2000));

    const failures: string[] = [];
    let checked = 0;
    for (const file of files) {
      const dash = JSON.parse(await readFile(join(dir, file), 'utf8')) as { panels: Panel[]; templating?: { list: { name: string }[] } };
      const panels = dash.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
      for (const p of panels) {
        if (!p.fieldConfig?.defaults?.unit) failures.push(`${file} "${p.title}": no unit`);
        if (!p.description) failures.push(`${file} "${p.title}": no description`);
        if (!p.targets?.length) failures.push(`${file} "${p.title}": no query`);
        for (const target of p.targets ?? []) {
          // Channel panels for both kinds: a looping VOD and a live relay.
          const channels = (target.expr ?? '').includes('$channel') ? [healthy, relay] : [''];
          for (const channel of channels) {
            const expr = (target.expr ?? '')
              .replaceAll('$channel', channel)
              .replaceAll('$__rate_interval', '10s')
              .replaceAll('$__interval', '5s');
            checked += 1;
            try {
              const result = await prom.query(expr);
              if (result.length === 0) failures.push(`${file} "${p.title}": no data for ${expr}`);
            } catch (err) {
              failures.push(`${file} "${p.title}": ${(err as Error).message}`);
            }
          }
        }
      }
    }
    assert.ok(checked >= 30, `only ${checked} queries`);
    assert.deepEqual(failures, []);
  });

  it('takes the lag monitor\'s own period off in the dashboard: its series never reads below that period', async () => {
    const dash = JSON.parse(await readFile(repoPath('grafana', 'dashboards', 'pool-and-api.json'), 'utf8')) as { panels: Panel[] };
    const exprs = dash.panels.flatMap((p) => p.targets ?? []).map((q) => q.expr ?? '').filter((e) => e.includes('eventloop_lag_p99'));
    assert.deepEqual(exprs, [`clamp_min(vlive_nodejs_eventloop_lag_p99_seconds - ${eventLoopSampleMs / 1000}, 0)`]);
    // The series counts firing to firing: never below the period, whatever the load.
    const res = await fetch(metricsUrl);
    const line = (await res.text()).split('\n').find((l) => l.startsWith('vlive_nodejs_eventloop_lag_min_seconds '));
    assert.ok(line !== undefined, 'vlive_nodejs_eventloop_lag_min_seconds is served');
    assert.ok(Number(line.split(' ')[1]) >= (eventLoopSampleMs / 1000) * 0.95, line);
  });

  it('removes a stopped channel\'s series from the scrape', async () => {
    const has = (text: string, id: string) => text.includes(`channel="${id}"`);
    const before = await scrape();
    assert.ok(has(before.text, healthy));
    const { stopVirtualLive } = await gqlOk<{ stopVirtualLive: { status: string } }>(
      t.url,
      'mutation StopChannel($id: ID!) { stopVirtualLive(id: $id) { status } }',
      { id: healthy },
    );
    assert.equal(stopVirtualLive.status, 'STOPPED');
    // A heartbeat taken before the stop must not bring the series back.
    await new Promise((r) => setTimeout(r, 1500));
    const after = await scrape();
    assert.equal(has(after.text, healthy), false, after.text.split('\n').filter((l) => l.includes(healthy)).join('\n'));
    assert.ok(has(after.text, relay), 'the other channel keeps its series');
    assert.equal(value(after.series, 'vlive_channels', { status: 'STOPPED' }), 1);
    assert.equal(value(after.series, 'vlive_channels', { status: 'LIVING' }), 1);
    assert.equal(value(after.series, 'vlive_pool_pipelines'), 1);
  });
});
