/**
 * What the programme's history costs the service thread per item boundary:
 * PlayedItem rows inserted one by one (as src/guide/played-log.ts does) and
 * in batches of 50 (createMany), on a scratch SQLite file through the
 * service's own client, in CPU time of this process. For README's figure:
 *
 *   node dist/bench/played-insert.js [rows=2000] [rounds=3]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../src/db/client.js';

const [rows = 2000, rounds = 3] = process.argv.slice(2).map(Number);
const dir = await mkdtemp(join(tmpdir(), 'vlive-played-'));
const db = await openDatabase(`file:${join(dir, 'bench.db')}`);
try {
  const channel = (await db.prisma.virtualLive.create({ data: { name: 'bench', sourceType: 'VOD' } })).id;
  const row = (i: number) => ({ virtualLiveId: channel, vodResourceId: 'vod', position: 0, startedAt: new Date(Date.now() + i), endedAt: new Date(Date.now() + i + 1) });
  const cpuMs = async (work: () => Promise<void>): Promise<number> => {
    const before = process.cpuUsage();
    await work();
    const used = process.cpuUsage(before);
    return (used.user + used.system) / 1000;
  };
  for (let r = 0; r < rounds; r++) {
    const single = await cpuMs(async () => {
      for (let i = 0; i < rows; i++) await db.prisma.playedItem.create({ data: row(i) });
    });
    const batched = await cpuMs(async () => {
      for (let i = 0; i < rows; i += 50) await db.prisma.playedItem.createMany({ data: Array.from({ length: 50 }, (_, k) => row(i + k)) });
    });
    console.log(`${rows} rows: one insert each ${((single / rows) * 1000).toFixed(0)} µs of CPU per row, in batches of 50 ${((batched / rows) * 1000).toFixed(0)} µs per row`);
  }
} finally {
  await db.close();
  await rm(dir, { recursive: true, force: true });
}
