/**
 * Prepared statements kept across queries (src/db/statement-cache.ts), on a
 * real SQLite file through the real driver adapter: the same SQL is prepared
 * once, every call still gets its own arguments, and writes, reads, raw
 * queries and interactive transactions (BEGIN, COMMIT, ROLLBACK) behave as
 * without the cache.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import type { SqlDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { openDatabase } from '../src/db/client.js';
import { withStatementCache } from '../src/db/statement-cache.js';
import { PrismaClient } from '../src/generated/prisma-sqlite/client.js';

let scratch = '';
let prisma: PrismaClient;
/** SQL texts the database was asked to prepare, under the cache. */
const prepared: string[] = [];

/** The real factory, with its connection's prepare counted before the cache wraps it. */
function counted(inner: SqlDriverAdapterFactory): SqlDriverAdapterFactory {
  return {
    provider: inner.provider,
    adapterName: inner.adapterName,
    async connect() {
      const adapter = await inner.connect();
      const client = (adapter as unknown as { client: { prepare(sql: string): unknown } }).client;
      const prepare = client.prepare.bind(client);
      client.prepare = (sql) => {
        prepared.push(sql);
        return prepare(sql);
      };
      return adapter;
    },
  };
}

before(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'vlive-stmt-test-'));
  const file = path.join(scratch, 'vlive.db');
  // Migrated by the service's own opening, then opened again with the count in place.
  await (await openDatabase(`file://${file}`)).close();
  prisma = new PrismaClient({ adapter: withStatementCache(counted(new PrismaBetterSqlite3({ url: `file:${file}` }))) });
  await prisma.$connect();
});

after(async () => {
  await prisma.$disconnect();
  await rm(scratch, { recursive: true, force: true });
});

const vod = (name: string) => ({ name, path: `clips/${name}.mp4`, sizeBytes: 1000, container: 'mp4', durationSeconds: 4, videoCodec: 'h264', width: 640, height: 360, copyable: true });

it('prepares each SQL text once and binds every call its own arguments', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) ids.push((await prisma.vodResource.create({ data: vod(`clip-${i}`) })).id);
  const before = prepared.length;
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 20; i++) {
      const row = await prisma.vodResource.findUnique({ where: { id: ids[i] ?? '' } });
      assert.equal(row?.name, `clip-${i}`);
    }
  }
  // 60 lookups of one shape: at most a couple of new texts (the lookup's), not 60.
  const lookups = prepared.slice(before);
  assert.ok(lookups.length <= 2, `prepared ${lookups.length} times for 60 lookups`);
  const creates = new Set(prepared.slice(0, before));
  assert.ok(creates.size === prepared.slice(0, before).length, 'a text was prepared twice');
  assert.equal(await prisma.vodResource.count({ where: { name: { startsWith: 'clip-1' } } }), 11);
  assert.equal(await prisma.vodResource.count({ where: { name: { startsWith: 'clip-2' } } }), 1);
});

it('keeps interactive transactions whole: a commit lands, a rollback leaves nothing', async () => {
  await prisma.$transaction(async (tx) => {
    await tx.vodResource.create({ data: vod('committed') });
  });
  await assert.rejects(
    prisma.$transaction(async (tx) => {
      await tx.vodResource.create({ data: vod('rolled-back') });
      throw new Error('abort');
    }),
    /abort/,
  );
  // The same statements again after both, from the cache.
  await prisma.$transaction(async (tx) => {
    await tx.vodResource.create({ data: vod('again') });
  });
  const names = (await prisma.vodResource.findMany({ where: { name: { in: ['committed', 'rolled-back', 'again'] } } })).map((v) => v.name).sort();
  assert.deepEqual(names, ['again', 'committed']);
  assert.equal(prepared.filter((s) => s === 'BEGIN').length, 1, 'BEGIN prepared once for three transactions');
  const [row] = await prisma.$queryRawUnsafe<{ n: bigint | number }[]>('SELECT count(*) AS n FROM VodResource WHERE name = ?', 'again');
  assert.equal(Number(row?.n), 1);
});
