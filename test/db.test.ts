/**
 * The SQLite database layer: DATABASE_URL parsing, migrations applied at open (fresh
 * and existing files, refusals, rollback, several processes at once), the models
 * through the generated client, and agreement with Prisma's own schema engine.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  DatabaseUrlError,
  defaultMigrationsDir,
  MigrationError,
  openDatabase,
  sqlitePathFromUrl,
  type Database,
} from '../src/db/client.js';
import { checksumMatches } from '../src/db/migrate.js';
import { readMigrationList, MigrationEngine } from '../src/db/schema-engine.js';

let scratch: string;
before(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'vlive-db-test-'));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

let counter = 0;
/** A database URL in a folder that does not exist yet. */
function freshUrl(): string {
  counter += 1;
  return `file:${path.join(scratch, `case-${counter}`, 'nested', 'vlive.db')}`;
}

/** A private copy of the real migrations, to add or spoil migrations in. */
async function copyOfMigrations(): Promise<string> {
  counter += 1;
  const dir = path.join(scratch, `migrations-${counter}`);
  await cp(defaultMigrationsDir(), dir, { recursive: true });
  return dir;
}

async function withDatabase<T>(db: Database, fn: (db: Database) => Promise<T>): Promise<T> {
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

const vod = {
  name: 'bars',
  path: 'clips/bars.mp4',
  sizeBytes: 123_456,
  container: 'mp4',
  durationSeconds: 4.02,
  videoCodec: 'h264',
  width: 640,
  height: 360,
  frameRate: 25,
  audioCodec: 'aac',
  copyable: true,
};

async function rejectsWith(promise: Promise<unknown>, reason: MigrationError['reason'], ...fragments: string[]) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof MigrationError, `expected a MigrationError, got ${String(error)}`);
    assert.equal(error.reason, reason);
    for (const fragment of fragments) assert.match(error.message, new RegExp(fragment));
    return true;
  });
}

describe('the schemas', () => {
  it('keep identical models for SQLite and PostgreSQL', async () => {
    const prismaDir = path.join(defaultMigrationsDir(), '..', '..');
    // Everything from the first doc comment or block after the datasource.
    const models = async (provider: string): Promise<string> => {
      const text = await readFile(path.join(prismaDir, provider, 'schema.prisma'), 'utf8');
      const afterDatasource = text.slice(text.search(/^datasource /m));
      return afterDatasource.slice(afterDatasource.search(/^(\/\/\/|model |enum |type |view )/m));
    };
    const sqlite = await models('sqlite');
    assert.match(sqlite, /^\/\/\/ A media file/);
    assert.equal(await models('postgres'), sqlite);
    for (const [provider, locked] of [
      ['sqlite', 'sqlite'],
      ['postgres', 'postgresql'],
    ] as const) {
      const lock = await readFile(path.join(prismaDir, provider, 'migrations', 'migration_lock.toml'), 'utf8');
      assert.match(lock, new RegExp(`^provider = "${locked}"$`, 'm'));
    }
  });
});

describe('DATABASE_URL', () => {
  it('accepts file: URLs of SQLite files', () => {
    assert.equal(sqlitePathFromUrl('file:/var/lib/vlive/vlive.db'), '/var/lib/vlive/vlive.db');
    assert.equal(sqlitePathFromUrl('file:///var/lib/vlive/vlive.db'), '/var/lib/vlive/vlive.db');
    assert.equal(sqlitePathFromUrl('file:data/vlive.db'), path.resolve('data/vlive.db'));
  });

  it('refuses other schemes, naming DATABASE_URL and never echoing the URL', async () => {
    const cases = [
      ['postgresql://vlive:s3cret@db:5432', /DATABASE_URL: needs a host and a database name/],
      ['mysql://vlive:s3cret@db/vlive', /DATABASE_URL: unsupported scheme "mysql:".*postgres:\/\/.*\(PostgreSQL\)/],
      ['/var/lib/vlive.db', /DATABASE_URL: not a URL/],
      ['file:/var/lib/vlive.db?mode=ro', /DATABASE_URL: parameters are not supported/],
      ['file::memory:', /DATABASE_URL: needs a database file/],
    ] as const;
    for (const [url, message] of cases) {
      await assert.rejects(openDatabase(url), (error: unknown) => {
        assert.ok(error instanceof DatabaseUrlError);
        assert.match(error.message, message);
        assert.doesNotMatch(error.message, /s3cret/);
        return true;
      });
    }
  });
});

describe('a fresh database', () => {
  let url: string;
  let db: Database;

  before(async () => {
    url = freshUrl();
    db = await openDatabase(url);
  });
  after(async () => {
    await db.close();
  });

  it('gets every migration, recorded as Prisma records them', async () => {
    const onDisk = await readMigrationNames();
    assert.ok(onDisk.length >= 1);
    assert.deepEqual(db.migrations, { applied: onDisk, total: onDisk.length });

    const tables = await db.prisma.$queryRawUnsafe<{ name: string }[]>(
      "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
    );
    assert.deepEqual(
      tables.map((t) => t.name),
      ['Node', 'PlayedItem', 'PlaylistItem', 'PlaylistLiveItem', 'Programme', 'ProgrammeEntry', 'ProgrammeEntryItem', 'ProgrammeFillerItem', 'PushTarget', 'Recording', 'Schedule', 'VirtualLive', 'VodRendition', 'VodResource', 'Webhook', 'WebhookDelivery', '_prisma_migrations'],
    );

    const rows = await db.prisma.$queryRawUnsafe<
      { migration_name: string; checksum: string; finished_at: unknown; rolled_back_at: unknown; applied_steps_count: unknown }[]
    >('SELECT * FROM _prisma_migrations ORDER BY migration_name');
    assert.deepEqual(
      rows.map((r) => r.migration_name),
      onDisk,
    );
    for (const row of rows) {
      const script = await readFile(path.join(defaultMigrationsDir(), row.migration_name, 'migration.sql'));
      assert.equal(row.checksum, createHash('sha256').update(script).digest('hex'));
      assert.notEqual(row.finished_at, null);
      assert.equal(row.rolled_back_at, null);
      assert.equal(Number(row.applied_steps_count), 1);
    }
  });

  it('is in WAL mode with foreign keys on', async () => {
    const [journal] = await db.prisma.$queryRawUnsafe<{ journal_mode: string }[]>('PRAGMA journal_mode');
    assert.equal(journal?.journal_mode, 'wal');
    const [fk] = await db.prisma.$queryRawUnsafe<{ foreign_keys: unknown }[]>('PRAGMA foreign_keys');
    assert.equal(Number(fk?.foreign_keys), 1);
  });

  it('stores a VOD resource and a virtual live with push targets, and cascades their deletion', async () => {
    const resource = await db.prisma.vodResource.create({ data: vod });
    const created = await db.prisma.virtualLive.create({
      data: {
        name: 'channel one',
        sourceType: 'VOD',
        vodResourceId: resource.id,
        pushTargets: {
          create: [
            { position: 1, url: 'rtmp://a.example/live/key1' },
            { position: 2, url: 'rtmps://b.example/live/key2' },
          ],
        },
      },
    });

    const read = await db.prisma.virtualLive.findUniqueOrThrow({
      where: { id: created.id },
      include: { pushTargets: { orderBy: { position: 'asc' } }, vodResource: true },
    });
    assert.equal(read.name, 'channel one');
    assert.equal(read.desiredState, 'STOPPED');
    assert.equal(read.status, 'STOPPED');
    assert.equal(read.loop, true);
    assert.equal(read.connectTimeoutMs, 10000);
    assert.ok(read.createdAt instanceof Date);
    assert.equal(read.vodResource?.durationSeconds, 4.02);
    assert.equal(read.vodResource?.copyable, true);
    assert.deepEqual(
      read.pushTargets.map((t) => [t.position, t.url]),
      [
        [1, 'rtmp://a.example/live/key1'],
        [2, 'rtmps://b.example/live/key2'],
      ],
    );

    // One position per channel.
    await assert.rejects(
      db.prisma.pushTarget.create({ data: { virtualLiveId: created.id, position: 1, url: 'rtmp://c.example/x' } }),
      /Unique constraint/,
    );
    // A resource in use cannot go (onDelete: Restrict).
    await assert.rejects(db.prisma.vodResource.delete({ where: { id: resource.id } }));

    await db.prisma.virtualLive.delete({ where: { id: created.id } });
    assert.equal(await db.prisma.pushTarget.count({ where: { virtualLiveId: created.id } }), 0);
    await db.prisma.vodResource.delete({ where: { id: resource.id } });
  });

  it('applies nothing when reopened', async () => {
    await db.close();
    db = await openDatabase(url);
    const onDisk = await readMigrationNames();
    assert.deepEqual(db.migrations, { applied: [], total: onDisk.length });
    const [count] = await db.prisma.$queryRawUnsafe<{ n: unknown }[]>('SELECT count(*) AS n FROM _prisma_migrations');
    assert.equal(Number(count?.n), onDisk.length);
  });
});

async function readMigrationNames(): Promise<string[]> {
  const list = await readMigrationList(defaultMigrationsDir());
  return list.migrationDirectories.map((d) => d.path);
}

describe('refusals', () => {
  it('refuses a migration file changed after it was applied, and names it', async () => {
    const migrationsDir = await copyOfMigrations();
    const url = freshUrl();
    await (await openDatabase(url, { migrationsDir })).close();
    const [first] = await readMigrationNames();
    assert.ok(first !== undefined);
    const file = path.join(migrationsDir, first, 'migration.sql');
    await writeFile(file, `${await readFile(file, 'utf8')}\n-- an afterthought\n`);
    await rejectsWith(
      openDatabase(url, { migrationsDir }),
      'CHECKSUM_MISMATCH',
      `migration ${first} was modified after it was applied`,
      'Restore the original migration.sql',
    );
  });

  it('refuses a tampered checksum in _prisma_migrations', async () => {
    const url = freshUrl();
    await withDatabase(await openDatabase(url), (db) =>
      db.prisma.$executeRawUnsafe(`UPDATE _prisma_migrations SET checksum = '${'0'.repeat(64)}'`),
    );
    await rejectsWith(openDatabase(url), 'CHECKSUM_MISMATCH', `checksum recorded ${'0'.repeat(64)}`);
  });

  it('accepts a file whose line endings git changed, as Prisma does', async () => {
    const migrationsDir = await copyOfMigrations();
    const url = freshUrl();
    await (await openDatabase(url, { migrationsDir })).close();
    for (const name of await readMigrationNames()) {
      const file = path.join(migrationsDir, name, 'migration.sql');
      await writeFile(file, (await readFile(file, 'utf8')).replaceAll('\n', '\r\n'));
    }
    await withDatabase(await openDatabase(url, { migrationsDir }), async (db) => {
      assert.deepEqual(db.migrations.applied, []);
    });
    assert.equal(checksumMatches('a\r\nb', createHash('sha256').update('a\nb').digest('hex')), true);
  });

  it('refuses a database migrated by a newer build', async () => {
    const url = freshUrl();
    await withDatabase(await openDatabase(url), (db) =>
      db.prisma.$executeRawUnsafe(
        "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, started_at, applied_steps_count) " +
          `VALUES ('x', '${'1'.repeat(64)}', '2099-01-01T00:00:00.000+00:00', '20990101000000_future', '2099-01-01T00:00:00.000+00:00', 1)`,
      ),
    );
    await rejectsWith(openDatabase(url), 'UNKNOWN_MIGRATION', '20990101000000_future is applied to this database but is not in');
  });

  it('refuses a migration that Prisma recorded as failed', async () => {
    const url = freshUrl();
    await withDatabase(await openDatabase(url), (db) =>
      db.prisma.$executeRawUnsafe("UPDATE _prisma_migrations SET finished_at = NULL, logs = 'boom'"),
    );
    await rejectsWith(openDatabase(url), 'FAILED_MIGRATION', 'never finished', 'logs: boom');
  });

  it('rolls a failing migration back whole and tries it again at the next start', async () => {
    const migrationsDir = await copyOfMigrations();
    const broken = path.join(migrationsDir, '29990101000000_broken');
    await mkdir(broken);
    await writeFile(
      path.join(broken, 'migration.sql'),
      'CREATE TABLE "Half" ("id" TEXT NOT NULL PRIMARY KEY);\nINSERT INTO "NoSuchTable" VALUES (1);\n',
    );
    const url = freshUrl();
    const applied: string[] = [];
    await rejectsWith(
      openDatabase(url, { migrationsDir, onMigrationApplied: (name) => applied.push(name) }),
      'APPLY_FAILED',
      'migration 29990101000000_broken failed and was rolled back: no such table: NoSuchTable',
    );
    // The migrations before it were committed one by one; nothing of the broken one stayed.
    assert.deepEqual(applied, await readMigrationNames());
    await rm(broken, { recursive: true });
    await withDatabase(await openDatabase(url, { migrationsDir }), async (db) => {
      assert.deepEqual(db.migrations.applied, []);
      const half = await db.prisma.$queryRawUnsafe<unknown[]>("SELECT name FROM sqlite_master WHERE name = 'Half'");
      assert.deepEqual(half, []);
    });
    await writeFile(path.join(migrationsDir, 'migration_lock.toml'), 'provider = "postgresql"\n');
    await rejectsWith(openDatabase(url, { migrationsDir }), 'MIGRATIONS_DIR_INVALID', 'is for provider "postgresql"');
  });
});

describe('later migrations', () => {
  it('redefine a parent table without cascading into its children', async () => {
    // Prisma's shape for a SQLite change it cannot ALTER: copy into new_X, drop X,
    // rename. Inside a transaction with foreign keys on, DROP TABLE "VirtualLive"
    // would cascade-delete every push target.
    const migrationsDir = await copyOfMigrations();
    const url = freshUrl();
    // The table as every migration so far left it.
    let create = '';
    await withDatabase(await openDatabase(url, { migrationsDir }), async (db) => {
      await db.prisma.virtualLive.create({
        data: {
          name: 'kept',
          sourceType: 'ONLINE',
          sourceUrl: 'rtmp://in.example/live/s',
          pushTargets: { create: [{ position: 1, url: 'rtmp://out.example/live/k' }] },
        },
      });
      const rows = await db.prisma.$queryRawUnsafe<{ sql: string }[]>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'VirtualLive'");
      create = rows[0]?.sql ?? '';
    });
    assert.match(create, /^CREATE TABLE "VirtualLive"/);
    const redefine = [
      '-- RedefineTables',
      'PRAGMA defer_foreign_keys=ON;',
      'PRAGMA foreign_keys=OFF;',
      `${create.replace('CREATE TABLE "VirtualLive"', 'CREATE TABLE "new_VirtualLive"')};`,
      'INSERT INTO "new_VirtualLive" SELECT * FROM "VirtualLive";',
      'DROP TABLE "VirtualLive";',
      'ALTER TABLE "new_VirtualLive" RENAME TO "VirtualLive";',
      'CREATE INDEX "VirtualLive_desiredState_idx" ON "VirtualLive"("desiredState");',
      'PRAGMA foreign_keys=ON;',
      'PRAGMA defer_foreign_keys=OFF;',
      '',
    ].join('\n');

    const folder = path.join(migrationsDir, '29990101000000_redefine_virtual_live');
    await mkdir(folder);
    await writeFile(path.join(folder, 'migration.sql'), redefine);
    await withDatabase(await openDatabase(url, { migrationsDir }), async (db) => {
      assert.deepEqual(db.migrations.applied, ['29990101000000_redefine_virtual_live']);
      assert.equal(await db.prisma.pushTarget.count(), 1);
      // The foreign key still holds on the new table.
      const channel = await db.prisma.virtualLive.findFirstOrThrow();
      await db.prisma.virtualLive.delete({ where: { id: channel.id } });
      assert.equal(await db.prisma.pushTarget.count(), 0);
    });
  });

  it('are applied once when several processes start on one file together', async () => {
    // A slow last migration (about half a second of SQLite work) keeps the write lock
    // long enough for the processes to collide, and they all start at one instant.
    const migrationsDir = await copyOfMigrations();
    const slow = path.join(migrationsDir, '29990101000000_slow');
    await mkdir(slow);
    await writeFile(
      path.join(slow, 'migration.sql'),
      'CREATE TABLE "Slow" AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) ' +
        'SELECT count(*) AS n FROM c;\n',
    );
    const url = freshUrl();
    const client = new URL('../src/db/client.js', import.meta.url).href;
    const startAt = Date.now() + 1500;
    const program =
      `const { openDatabase } = await import(${JSON.stringify(client)});` +
      `await new Promise((r) => setTimeout(r, ${startAt} - Date.now()));` +
      `const db = await openDatabase(${JSON.stringify(url)}, { migrationsDir: ${JSON.stringify(migrationsDir)} });` +
      'process.stdout.write(JSON.stringify(db.migrations.applied)); await db.close();';
    const run = (): Promise<string[]> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', program], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
        });
        child.on('error', reject);
        child.on('exit', (code) => {
          if (code === 0) resolve(JSON.parse(out) as string[]);
          else reject(new Error(`child exited with ${String(code)}`));
        });
      });
    const results = await Promise.all([run(), run(), run()]);
    const names = [...(await readMigrationNames()), '29990101000000_slow'];
    assert.deepEqual(results.flat().sort(), names, 'each migration applied by exactly one process');
  });
});

describe("Prisma's schema engine agrees", () => {
  const schemaPath = (): string => path.join(defaultMigrationsDir(), '..', 'schema.prisma');

  it('that the migrations cover the whole schema (else: scripts/migration-new.ts)', async () => {
    const engine = await MigrationEngine.openSqlite({
      schemaPath: schemaPath(),
      databaseFile: path.join(scratch, 'engine-check.db'),
    });
    try {
      const list = await readMigrationList(defaultMigrationsDir());
      await engine.applyMigrations(list);
      const created = await engine.createMigration(list, 'check');
      assert.equal(created.migrationScript, null, `schema.prisma has changes without a migration:\n${created.migrationScript}`);
    } finally {
      await engine.close();
    }
  });

  it('with a database this runner migrated', async () => {
    const url = freshUrl();
    await (await openDatabase(url)).close();
    const engine = await MigrationEngine.openSqlite({ schemaPath: schemaPath(), databaseFile: sqlitePathFromUrl(url) });
    try {
      const diagnostic = await engine.diagnoseMigrationHistory(await readMigrationList(defaultMigrationsDir()));
      assert.deepEqual(diagnostic, {
        editedMigrationNames: [],
        failedMigrationNames: [],
        hasMigrationsTable: true,
        history: null,
      });
    } finally {
      await engine.close();
    }
  });

  it('and this runner accepts a database Prisma migrated', async () => {
    const url = freshUrl();
    const file = sqlitePathFromUrl(url);
    await mkdir(path.dirname(file), { recursive: true });
    const engine = await MigrationEngine.openSqlite({ schemaPath: schemaPath(), databaseFile: file });
    try {
      await engine.applyMigrations(await readMigrationList(defaultMigrationsDir()));
    } finally {
      await engine.close();
    }
    await withDatabase(await openDatabase(url), async (db) => {
      assert.deepEqual(db.migrations.applied, []);
      await db.prisma.vodResource.create({ data: vod });
    });
  });
});
