/**
 * What one cluster node costs its PostgreSQL at rest (README, "Several nodes").
 *
 * Starts a throwaway PostgreSQL with pg_stat_statements, one node (default lease and
 * heartbeat unless VLIVE_LEASE_MS / VLIVE_NODE_HEARTBEAT_MS are set), and measures
 * statements, commits and updated rows over a window twice: with no channel, then
 * with N channels LIVING. The difference divided by N is the cost of a channel.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/cluster-db-load.js [channels=20] [windowSeconds=60]
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startScratchPostgres } from '../scripts/scratch-postgres.js';
import { repoPath } from '../src/paths.js';
import { makeClip } from './media.js';
import { freePort, gql } from './net.js';

const channels = Number(process.argv[2] ?? 20);
const windowSeconds = Number(process.argv[3] ?? 60);

interface Sample {
  statements: number;
  commits: number;
  rowsUpdated: number;
}

async function sample(db: pg.Client): Promise<Sample> {
  // Our own measuring queries are left out by their text.
  const st = await db.query<{ calls: string }>(`SELECT coalesce(sum(calls), 0) AS calls FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat%' AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`);
  const d = await db.query<{ xact_commit: string; tup_updated: string }>(`SELECT xact_commit, tup_updated FROM pg_stat_database WHERE datname = current_database()`);
  return { statements: Number(st.rows[0]?.calls ?? 0), commits: Number(d.rows[0]?.xact_commit ?? 0), rowsUpdated: Number(d.rows[0]?.tup_updated ?? 0) };
}

async function measure(db: pg.Client): Promise<Sample> {
  await db.query('SELECT pg_stat_reset()');
  await db.query('SELECT pg_stat_statements_reset()');
  const a = await sample(db);
  await new Promise((r) => setTimeout(r, windowSeconds * 1000));
  // pg_stat_database is updated by backends at most every 500 ms.
  await new Promise((r) => setTimeout(r, 1000));
  const b = await sample(db);
  const per = (x: number): number => x / windowSeconds;
  return { statements: per(b.statements - a.statements), commits: per(b.commits - a.commits), rowsUpdated: per(b.rowsUpdated - a.rowsUpdated) };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vlive-dbload-'));
  const postgres = await startScratchPostgres({ settings: { shared_preload_libraries: 'pg_stat_statements' } });
  let child: ReturnType<typeof spawn> | null = null;
  try {
    const url = await postgres.createDatabase('vlive_load');
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    const media = join(dir, 'media');
    await mkdir(media, { recursive: true });
    await makeClip(media, { seconds: 4, width: 320, height: 240, fps: 25, videoKbps: 300, audioKbps: 64 });
    const port = await freePort();
    child = spawn(process.execPath, [repoPath('dist/src/main.js')], {
      env: { ...process.env, DATABASE_URL: url, VLIVE_DATA_DIR: join(dir, 'data'), VLIVE_MEDIA_ROOT: media, VLIVE_HTTP_PORT: String(port), VLIVE_RTMP_PORT: String(await freePort()), VLIVE_HLS_PORT: String(await freePort()), VLIVE_WORKERS: '1', VLIVE_CPU_BUDGET: '1', VLIVE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const api = `http://127.0.0.1:${port}/graphql`;
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child?.stdout?.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('GraphQL')) resolve();
      });
      child?.once('exit', (code) => reject(new Error(`service exited with ${code}`)));
    });
    const idle = await measure(db);
    const vod = await gql<{ registerVodResource: { id: string } }>(api, 'mutation { registerVodResource(input: { name: "clip", path: "clip.mp4" }) { id } }', {}, 30_000);
    for (let i = 0; i < channels; i++) {
      const c = await gql<{ createVirtualLive: { id: string } }>(api, 'mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }', { i: { name: `c${i}`, sourceType: 'VOD', vodResourceId: vod.registerVodResource.id } }, 30_000);
      const s = await gql<{ startVirtualLive: { status: string } }>(api, 'mutation($id: ID!) { startVirtualLive(id: $id) { status } }', { id: c.createVirtualLive.id }, 60_000);
      if (s.startVirtualLive.status !== 'LIVING') throw new Error(`channel ${i} is ${s.startVirtualLive.status}`);
    }
    await new Promise((r) => setTimeout(r, 5000));
    const busy = await measure(db);
    const top = await db.query<{ calls: string; query: string }>(
      `SELECT calls, regexp_replace(left(query, 90), '\\s+', ' ', 'g') AS query FROM pg_stat_statements
       WHERE query NOT ILIKE '%pg_stat%' AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY calls DESC LIMIT 8`,
    );
    const perChannel = (k: keyof Sample): string => ((busy[k] - idle[k]) / Math.max(1, channels)).toFixed(3);
    const f = (s: Sample): string => `statements ${s.statements.toFixed(2)}/s, commits ${s.commits.toFixed(2)}/s, rows updated ${s.rowsUpdated.toFixed(2)}/s`;
    console.log(`window ${windowSeconds} s, lease ${process.env['VLIVE_LEASE_MS'] ?? 10000} ms, heartbeat ${process.env['VLIVE_NODE_HEARTBEAT_MS'] ?? 2000} ms`);
    console.log(`node, 0 channels:         ${f(idle)}`);
    console.log(`node, ${channels} channels LIVING: ${f(busy)}`);
    console.log(`per channel at rest:      statements ${perChannel('statements')}/s, commits ${perChannel('commits')}/s, rows updated ${perChannel('rowsUpdated')}/s`);
    console.log(`statements in the last window (calls/s):`);
    for (const r of top.rows) console.log(`  ${(Number(r.calls) / windowSeconds).toFixed(2)}  ${r.query}`);
    await db.end();
  } finally {
    if (child !== null && child.exitCode === null) {
      const c = child;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    }
    await postgres.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
