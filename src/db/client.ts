/**
 * Opens the service's database: parses DATABASE_URL, applies pending migrations on a
 * connection of their own, then hands out a PrismaClient on the driver adapter.
 *
 * `file:` URLs open SQLite (the embedded default, one node). `postgres://` and
 * `postgresql://` URLs open PostgreSQL through @prisma/adapter-pg (cluster mode,
 * src/cluster/); its migrations run under an advisory lock (src/db/migrate-pg.ts).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { withStatementCache } from './statement-cache.js';

import { PrismaClient } from '../generated/prisma-sqlite/client.js';
import { applyMigrations, type MigrationReport } from './migrate.js';

export { PrismaClient };
export { MigrationError, type MigrationErrorReason } from './migrate.js';

export interface OpenDatabaseOptions {
  /**
   * How long a statement waits for another connection's lock before failing with
   * SQLITE_BUSY, in ms. Default 5000.
   */
  readonly busyTimeoutMs?: number;
  /** Default: prisma/sqlite/migrations of the checkout this module runs from. */
  readonly migrationsDir?: string;
  /** Called after each migration is applied, with how long it took in ms. */
  readonly onMigrationApplied?: (name: string, durationMs: number) => void;
}

export interface Database {
  /**
   * Typed as the SQLite client: the two generated clients have the same models
   * (test/db.test.ts keeps the schemas identical), so the rest of the code is
   * written once against one type.
   */
  readonly prisma: PrismaClient;
  readonly provider: 'sqlite' | 'postgresql';
  /** The connection string, PostgreSQL only (LISTEN/NOTIFY opens its own connection). */
  readonly postgresUrl: string | null;
  /** What start-up did to the schema; `applied` is empty when it was up to date. */
  readonly migrations: MigrationReport;
  /** Disconnects the client; safe to call twice. */
  close(): Promise<void>;
}

/** DATABASE_URL is malformed or names a database this build cannot use. */
export class DatabaseUrlError extends Error {
  constructor(message: string) {
    super(`DATABASE_URL: ${message}`);
    this.name = 'DatabaseUrlError';
  }
}

const sqliteExample = 'file:/absolute/path/vlive.db';
const postgresExample = 'postgres://user:password@host:5432/vlive';

/** True for a URL that names a PostgreSQL database. */
export function isPostgresUrl(databaseUrl: string): boolean {
  return /^postgres(ql)?:\/\//i.test(databaseUrl);
}

/**
 * Returns the SQLite file path of a `file:` URL. Accepts `file:/abs/x.db`,
 * `file:///abs/x.db`, and `file:rel/x.db` (resolved against the working directory).
 * The message never repeats the URL: a PostgreSQL one may carry a password.
 */
export function sqlitePathFromUrl(databaseUrl: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(databaseUrl)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    throw new DatabaseUrlError(`not a URL; use ${sqliteExample} (SQLite)`);
  }
  if (scheme === 'postgres' || scheme === 'postgresql') {
    throw new DatabaseUrlError(`a PostgreSQL URL is not a SQLite file; use ${sqliteExample} (SQLite)`);
  }
  if (scheme !== 'file') {
    throw new DatabaseUrlError(
      `unsupported scheme "${scheme}:"; use ${sqliteExample} (SQLite) or ${postgresExample} (PostgreSQL)`,
    );
  }
  if (databaseUrl.includes('?') || databaseUrl.includes('#')) {
    throw new DatabaseUrlError(`parameters are not supported in a file: URL; use ${sqliteExample}`);
  }
  const rest = databaseUrl.slice('file:'.length);
  let file: string;
  if (rest.startsWith('//')) {
    try {
      file = fileURLToPath(databaseUrl);
    } catch {
      throw new DatabaseUrlError(`a file:// URL needs an empty host, as in file:///absolute/path/vlive.db`);
    }
  } else {
    file = rest;
  }
  if (file === '' || file.endsWith('/') || file.includes(':memory:')) {
    throw new DatabaseUrlError(`needs a database file, as in ${sqliteExample}`);
  }
  return path.resolve(file);
}

/**
 * The migrations folder of the checkout this module runs from. Searched upwards, so
 * it works from src/db (tsx) and from dist/src/db (compiled) alike.
 */
export function defaultMigrationsDir(provider: 'sqlite' | 'postgres' = 'sqlite'): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'prisma', provider, 'migrations');
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(`no prisma/${provider}/migrations folder above ${fileURLToPath(import.meta.url)}`);
    }
    dir = parent;
  }
}

/**
 * Runs `op` again while SQLite answers "database is locked", up to `budgetMs`.
 * Switching a fresh file to WAL needs an exclusive lock, and when several
 * processes open the same new file at once SQLite returns SQLITE_BUSY at once
 * to one of them (its busy handler would deadlock there) instead of waiting.
 */
async function retryWhileLocked<T>(budgetMs: number, op: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (;;) {
    try {
      return await op();
    } catch (err) {
      const locked = /SQLITE_BUSY|database is locked/.test(JSON.stringify((err as { cause?: unknown }).cause ?? '') + String(err));
      if (!locked || Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
    }
  }
}

/**
 * Opens the database at `databaseUrl`, creating the file and its folder when missing,
 * switches it to WAL, applies pending migrations, and returns a connected client.
 * Throws DatabaseUrlError for a URL it cannot use, MigrationError when the database
 * and the migrations on disk disagree.
 */
export async function openDatabase(databaseUrl: string, options: OpenDatabaseOptions = {}): Promise<Database> {
  if (isPostgresUrl(databaseUrl)) return openPostgres(databaseUrl, options);
  const file = sqlitePathFromUrl(databaseUrl);
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new Error('options.busyTimeoutMs must be a non-negative integer');
  }
  await mkdir(path.dirname(file), { recursive: true });
  // better-sqlite3's `timeout` is SQLite's busy timeout; the adapter passes it to
  // every connection it opens, the client's included.
  const factory = new PrismaBetterSqlite3({ url: `file:${file}`, timeout: busyTimeoutMs });

  const setup = await factory.connect();
  let migrations: MigrationReport;
  try {
    // WAL is a property of the file, kept across connections: readers no longer
    // block the writer. It cannot be switched inside a transaction, so before
    // migrating.
    const mode = await retryWhileLocked(busyTimeoutMs, () => setup.queryRaw({ sql: 'PRAGMA journal_mode = WAL', args: [], argTypes: [] }));
    const journal = String(mode.rows[0]?.[0]).toLowerCase();
    if (journal !== 'wal') {
      throw new Error(`${file}: SQLite refused the WAL journal (it kept "${journal}"); is it on a network filesystem?`);
    }
    migrations = await applyMigrations(setup, {
      migrationsDir: options.migrationsDir ?? defaultMigrationsDir(),
      ...(options.onMigrationApplied === undefined ? {} : { onApplied: options.onMigrationApplied }),
    });
  } finally {
    await setup.dispose();
  }

  const prisma = new PrismaClient({ adapter: withStatementCache(factory) });
  try {
    await prisma.$connect();
    // better-sqlite3 is built with foreign keys on, but ON DELETE CASCADE depends on
    // it: say so rather than rely on a build default.
    await prisma.$executeRawUnsafe('PRAGMA foreign_keys = ON');
  } catch (error) {
    await prisma.$disconnect().catch(() => undefined);
    throw error;
  }

  let closing: Promise<void> | null = null;
  return {
    prisma,
    provider: 'sqlite',
    postgresUrl: null,
    migrations,
    close(): Promise<void> {
      closing ??= prisma.$disconnect();
      return closing;
    },
  };
}

/**
 * PostgreSQL: migrations first (one node at a time, src/db/migrate-pg.ts), then a
 * client on a pg pool. The URL is checked for a host and a database; its password
 * never appears in a message.
 */
async function openPostgres(databaseUrl: string, options: OpenDatabaseOptions): Promise<Database> {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new DatabaseUrlError(`not a valid URL; use ${postgresExample}`);
  }
  if (url.hostname === '' || url.pathname.length <= 1) {
    throw new DatabaseUrlError(`needs a host and a database name, as in ${postgresExample}`);
  }
  // Loaded only here: a single SQLite node never pays for pg, its Prisma
  // client and the migrator in memory.
  const [{ PrismaPg }, { PrismaClient: PgPrismaClient }, { applyPostgresMigrations }] = await Promise.all([
    import('@prisma/adapter-pg'),
    import('../generated/prisma-pg/client.js'),
    import('./migrate-pg.js'),
  ]);
  const migrations = await applyPostgresMigrations(databaseUrl, {
    migrationsDir: options.migrationsDir ?? defaultMigrationsDir('postgres'),
    ...(options.onMigrationApplied === undefined ? {} : { onApplied: options.onMigrationApplied }),
  });
  const pgClient = new PgPrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl }) });
  try {
    await pgClient.$connect();
  } catch (error) {
    await pgClient.$disconnect().catch(() => undefined);
    throw error;
  }
  // Same models, same query API: see Database.prisma.
  const prisma = pgClient as unknown as PrismaClient;
  let closing: Promise<void> | null = null;
  return {
    prisma,
    provider: 'postgresql',
    postgresUrl: databaseUrl,
    migrations,
    close(): Promise<void> {
      closing ??= pgClient.$disconnect();
      return closing;
    },
  };
}
