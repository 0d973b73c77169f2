/**
 * A real Prometheus server for tests (Debian package `prometheus`): a
 * generated prometheus.yml that scrapes the given targets every second, its
 * TSDB in a scratch directory, its web API on a free loopback port. The
 * disposer always stops it and removes the directory. Also `promtool check
 * metrics`, Prometheus's own linter for exposition text.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface Prometheus {
  /** Base URL of the web API, e.g. http://127.0.0.1:9090. */
  readonly url: string;
  /** Instant query through /api/v1/query; rejects when Prometheus reports an error. */
  query(expr: string): Promise<PromSample[]>;
  /** Polls `query(expr)` until `pred` holds, or rejects after timeoutMs with the last result. */
  waitFor(expr: string, pred: (r: PromSample[]) => boolean, timeoutMs?: number): Promise<PromSample[]>;
  /** Output of the server so far, for assertion messages. */
  log(): string;
  dispose(): Promise<void>;
}

export interface PrometheusOptions {
  /** host:port targets scraped at /metrics. */
  targets: string[];
  /** Default 1. */
  scrapeIntervalSeconds?: number;
}

interface QueryResponse {
  status: 'success' | 'error';
  error?: string;
  data?: { resultType: string; result: PromSample[] | [number, string] };
}

export async function startPrometheus(options: PrometheusOptions): Promise<Prometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'vlive-prom-'));
  const interval = `${options.scrapeIntervalSeconds ?? 1}s`;
  const config = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  scrape_timeout: ${interval}`,
    `  evaluation_interval: ${interval}`,
    'scrape_configs:',
    '  - job_name: vlive',
    '    metrics_path: /metrics',
    '    static_configs:',
    `      - targets: [${options.targets.map((t) => JSON.stringify(t)).join(', ')}]`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'prometheus.yml'), config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let tail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (c: string) => {
    tail = (tail + c).slice(-8000);
  });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => {
      tail += `\nspawn failed: ${err.message}`;
      resolve();
    });
  });
  let running = true;
  void exited.then(() => {
    running = false;
  });

  const dispose = async (): Promise<void> => {
    if (running) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  const query = async (expr: string): Promise<PromSample[]> => {
    const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: expr })}`);
    const body = (await res.json()) as QueryResponse;
    if (body.status !== 'success' || body.data === undefined) throw new Error(`query ${expr} failed: ${body.error ?? res.status}`);
    if (body.data.resultType === 'scalar') return [{ metric: {}, value: body.data.result as [number, string] }];
    return body.data.result as PromSample[];
  };

  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (!running) throw new Error(`prometheus exited at start:\n${tail}`);
      const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`prometheus not ready within 20 s:\n${tail}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await dispose();
    throw err;
  }

  return {
    url,
    query,
    async waitFor(expr, pred, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      let last: PromSample[] = [];
      let lastError = '';
      for (;;) {
        try {
          last = await query(expr);
          if (pred(last)) return last;
        } catch (err) {
          lastError = (err as Error).message;
        }
        if (Date.now() > deadline) {
          throw new Error(`timed out waiting on ${expr}; last result ${JSON.stringify(last)} ${lastError}`);
        }
        // Prometheus has new data once per scrape interval; polling is the only way to ask.
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    log: () => tail,
    dispose,
  };
}

/** Runs `promtool check metrics` on exposition text; resolves with its exit code and output. */
export function promtoolCheckMetrics(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}
