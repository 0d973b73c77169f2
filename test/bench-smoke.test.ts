/**
 * A smoke run of the benchmark (N=2 per side, short windows): not a timed
 * test, only that `npm run bench`'s program runs both sides and writes a
 * well-formed report. The figures themselves come from `npm run bench`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { promisify } from 'node:util';
import { repoPath } from '../src/paths.js';

const run = promisify(execFile);

it('runs both sides at N=2 and writes a well-formed report', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vlive-bench-smoke-'));
  try {
    await run(process.execPath, [repoPath('dist/bench/run.js')], {
      env: {
        ...process.env,
        BENCH_STEPS: '2',
        BENCH_WINDOW_SECONDS: '5',
        BENCH_SETTLE_SECONDS: '1',
        BENCH_RECEIVERS: '1',
        BENCH_WORK_DIR: join(dir, 'work'),
        BENCH_RESULTS_DIR: join(dir, 'results'),
      },
      timeout: 240_000,
      maxBuffer: 16 << 20,
    });
    const report = JSON.parse(await readFile(join(dir, 'results', 'latest.json'), 'utf8')) as {
      machine: { cores: number; memoryBytes: number };
      runs: { side: string; channels: number; pssBytesPerChannel: number; cpuSecondsPerChannelMinute: number; stutterSeconds: number; dtsRegressions: number; startLatencyMs: { p50: number; p99: number } }[];
    };
    assert.ok(report.machine.cores >= 1 && report.machine.memoryBytes > 0);
    assert.deepEqual(report.runs.map((r) => [r.side, r.channels]).sort(), [['ffmpeg', 2], ['vlive', 2]]);
    for (const r of report.runs) {
      assert.ok(r.pssBytesPerChannel > 0, `${r.side} PSS`);
      assert.ok(Number.isFinite(r.cpuSecondsPerChannelMinute) && r.cpuSecondsPerChannelMinute >= 0, `${r.side} CPU`);
      assert.ok(Number.isFinite(r.stutterSeconds) && r.stutterSeconds >= 0);
      assert.ok(Number.isInteger(r.dtsRegressions) && r.dtsRegressions >= 0);
      assert.ok(r.startLatencyMs.p50 > 0 && r.startLatencyMs.p99 >= r.startLatencyMs.p50);
    }
    assert.ok((await stat(join(dir, 'results', 'latest.md'))).size > 0);
    assert.match(await readFile(join(dir, 'results', 'latest.svg'), 'utf8'), /<svg/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
