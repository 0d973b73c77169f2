/**
 * Applies pending Prisma migrations at service start, without the Prisma CLI (which
 * cannot run offline, see src/db/MIGRATIONS.md).
 *
 * It keeps Prisma's own bookkeeping, so the CLI and this runner can take turns on one
 * database: the same `_prisma_migrations` table, one row per applied migration, the
 * checksum being the sha256 of migration.sql in lowercase hex, timestamps written as
 * Prisma's engine writes them on SQLite.
 *
 * Differences from `prisma migrate deploy`, on purpose:
 * - Each migration runs in its own transaction, together with its bookkeeping row.
 *   A failed migration leaves nothing behind, not even a failed row, so the next
 *   start simply tries again. (Prisma leaves a failed row that blocks later deploys;
 *   such a row, written by the CLI, makes this runner refuse too.)
 * - An applied migration whose file changed stops start-up (CHECKSUM_MISMATCH):
 *   Prisma's deploy only notices that in `migrate dev`.
 * - A migration recorded in the database but absent on disk stops start-up
 *   (UNKNOWN_MIGRATION): the database was migrated by a newer or different build.
 *
 * SQLite specifics: foreign keys are switched off around each transaction (the pragma
 * is a no-op inside one) and checked with `PRAGMA foreign_key_check` before commit.
 * Prisma's table-redefinition migrations (`INSERT INTO new_X SELECT … ; DROP TABLE X`)
 * rely on that: with foreign keys on, dropping a parent table fires its ON DELETE
 * CASCADE actions and empties the child tables.
 *
 * Several processes on one SQLite file are safe: each migration transaction starts
 * with BEGIN IMMEDIATE, which takes the write lock (waiting up to the busy timeout),
 * and the applied list is read again inside it. PostgreSQL has its own runner with an
 * advisory lock, src/db/migrate-pg.ts, sharing the checks below.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import type { SqlDriverAdapter, SqlQuery } from '@prisma/driver-adapter-utils';

/** One migration folder on disk. */
export interface MigrationFile {
  /** The folder name, `<UTC yyyyMMddHHmmss>_<name>`; migrations apply in its order. */
  readonly name: string;
  readonly script: string;
  /** sha256 of migration.sql, lowercase hex: what `_prisma_migrations.checksum` holds. */
  readonly checksum: string;
}

export type MigrationErrorReason =
  /** The migrations folder is missing, a folder lacks migration.sql, or the lock file names another provider. */
  | 'MIGRATIONS_DIR_INVALID'
  /** An applied migration's file changed since it was applied. */
  | 'CHECKSUM_MISMATCH'
  /** `_prisma_migrations` holds a migration that started and never finished. */
  | 'FAILED_MIGRATION'
  /** `_prisma_migrations` holds a migration that is not on disk. */
  | 'UNKNOWN_MIGRATION'
  /** A migration's SQL failed, or left broken foreign keys; it was rolled back. */
  | 'APPLY_FAILED'
  /** Another connection kept the database locked past the busy timeout. */
  | 'LOCKED';

/** Stops start-up: the database and the migrations on disk disagree. */
export class MigrationError extends Error {
  constructor(
    readonly reason: MigrationErrorReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

export interface ApplyMigrationsOptions {
  /** The folder holding `<timestamp>_<name>/migration.sql` and migration_lock.toml. */
  readonly migrationsDir: string;
  /** Called after each migration is committed, with how long it took in ms. */
  readonly onApplied?: (name: string, durationMs: number) => void;
}

export interface MigrationReport {
  /** Migrations applied by this call, in order; empty when the database was up to date. */
  readonly applied: readonly string[];
  /** Every migration on disk, all of them now applied. */
  readonly total: number;
}

const lockfileName = 'migration_lock.toml';

/** The table exactly as Prisma's schema engine creates it on SQLite. */
const createMigrationsTable = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
)`;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * Prisma's rule (schema engine, checksum.rs): the stored checksum matches the script
 * as it is, with CRLF turned into LF, or with LF turned into CRLF (git may have
 * changed line endings); and checksums written by old engines lack zero padding.
 */
export function checksumMatches(script: string, stored: string): boolean {
  const variants = [script, script.replaceAll('\r\n', '\n'), script.replaceAll('\n', '\r\n')];
  return variants.some((variant) => {
    const digest = sha256(variant);
    const rendered =
      stored.length === 64
        ? digest.toString('hex')
        : Array.from(digest, (byte) => byte.toString(16)).join('');
    return rendered === stored;
  });
}

/** Prisma's engine writes `2026-01-31T12:34:56.789+00:00` into DATETIME columns. */
function prismaTimestamp(date: Date): string {
  return date.toISOString().replace(/Z$/, '+00:00');
}

/** Reads the migrations folder: every sub-folder is one migration, sorted by name. */
export async function readMigrationFiles(migrationsDir: string, provider: 'sqlite' | 'postgresql' = 'sqlite'): Promise<MigrationFile[]> {
  const entries = await readdir(migrationsDir, { withFileTypes: true }).catch((error: unknown) => {
    throw new MigrationError('MIGRATIONS_DIR_INVALID', `cannot read the migrations folder ${migrationsDir}`, {
      cause: error,
    });
  });
  const lockfile = await readFile(path.join(migrationsDir, lockfileName), 'utf8').catch(() => null);
  if (lockfile !== null) {
    const locked = /^\s*provider\s*=\s*"([^"]*)"/m.exec(lockfile)?.[1];
    if (locked !== provider) {
      throw new MigrationError(
        'MIGRATIONS_DIR_INVALID',
        `${path.join(migrationsDir, lockfileName)} is for provider ${JSON.stringify(locked ?? null)}, not "${provider}"`,
      );
    }
  }
  const files: MigrationFile[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const file = path.join(migrationsDir, entry.name, 'migration.sql');
    const script = await readFile(file, 'utf8').catch((error: unknown) => {
      throw new MigrationError('MIGRATIONS_DIR_INVALID', `migration ${entry.name} has no readable ${file}`, {
        cause: error,
      });
    });
    files.push({ name: entry.name, script, checksum: sha256(script).toString('hex') });
  }
  // Code-unit order, which is the timestamp order for Prisma's folder names.
  return files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface AppliedRow {
  readonly name: string;
  readonly checksum: string;
  readonly finishedAt: string | null;
  readonly logs: string | null;
}

function sqlQuery(sql: string, args: readonly (string | number)[]): SqlQuery {
  return {
    sql,
    args: [...args],
    argTypes: args.map((arg) => ({ scalarType: typeof arg === 'number' ? 'int' : 'string', arity: 'scalar' })),
  };
}

async function readApplied(db: SqlDriverAdapter): Promise<AppliedRow[]> {
  const result = await db.queryRaw(
    sqlQuery(
      'SELECT migration_name, checksum, finished_at, logs FROM _prisma_migrations ' +
        'WHERE rolled_back_at IS NULL ORDER BY started_at, migration_name',
      [],
    ),
  );
  const text = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));
  return result.rows.map((row) => ({
    name: String(row[0]),
    checksum: String(row[1]),
    finishedAt: text(row[2]),
    logs: text(row[3]),
  }));
}

/** Throws when the database history and the files disagree; returns what is pending. */
export function pendingMigrations(
  files: readonly MigrationFile[],
  applied: readonly AppliedRow[],
  migrationsDir: string,
): MigrationFile[] {
  const byName = new Map(files.map((file) => [file.name, file]));
  for (const row of applied) {
    if (row.finishedAt === null) {
      throw new MigrationError(
        'FAILED_MIGRATION',
        `migration ${row.name} started on this database and never finished` +
          (row.logs === null ? '' : ` (logs: ${row.logs})`) +
          '. Repair the database by hand, then set rolled_back_at (to retry it) or finished_at ' +
          '(if it is in fact applied) on its row in _prisma_migrations.',
      );
    }
    const file = byName.get(row.name);
    if (file === undefined) {
      throw new MigrationError(
        'UNKNOWN_MIGRATION',
        `migration ${row.name} is applied to this database but is not in ${migrationsDir}; ` +
          'the database was migrated by a newer or different build of vlive.',
      );
    }
    if (!checksumMatches(file.script, row.checksum)) {
      throw new MigrationError(
        'CHECKSUM_MISMATCH',
        `migration ${row.name} was modified after it was applied to this database ` +
          `(checksum recorded ${row.checksum}, file now ${file.checksum}). ` +
          'Restore the original migration.sql and put schema changes in a new migration ' +
          '(scripts/migration-new.ts).',
      );
    }
  }
  const done = new Set(applied.map((row) => row.name));
  return files.filter((file) => !done.has(file.name));
}

/**
 * Takes the migration lock and opens the transaction. SQLite: BEGIN IMMEDIATE takes
 * the database write lock now rather than at the first write, so two starting
 * processes serialise here. (PostgreSQL: src/db/migrate-pg.ts.)
 */
async function lockAndBegin(db: SqlDriverAdapter): Promise<void> {
  try {
    await db.executeScript('BEGIN IMMEDIATE');
  } catch (error) {
    throw new MigrationError(
      'LOCKED',
      `could not lock the database to migrate it (${describe(error)}); ` +
        'another process kept it locked past the busy timeout',
      { cause: error },
    );
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // The driver adapter's DriverAdapterError keeps SQLite's text in cause.originalMessage.
  const cause = (error as { cause?: { originalMessage?: unknown } }).cause;
  return typeof cause?.originalMessage === 'string' ? cause.originalMessage : error.message;
}

/**
 * Brings the database up to the last migration on disk. Safe to call on every start:
 * with nothing pending it only reads `_prisma_migrations`.
 *
 * `db` must be one connection of its own (not shared with a PrismaClient), since the
 * transaction is driven with plain BEGIN/COMMIT statements.
 */
export async function applyMigrations(
  db: SqlDriverAdapter,
  options: ApplyMigrationsOptions,
): Promise<MigrationReport> {
  const files = await readMigrationFiles(options.migrationsDir);
  await db.executeScript(createMigrationsTable);
  const applied: string[] = [];
  await db.executeScript('PRAGMA foreign_keys = OFF');
  try {
    for (;;) {
      await lockAndBegin(db);
      let committed = false;
      try {
        const pending = pendingMigrations(files, await readApplied(db), options.migrationsDir);
        const next = pending[0];
        if (next === undefined) {
          await db.executeScript('COMMIT');
          committed = true;
          break;
        }
        const started = new Date();
        try {
          await db.executeScript(next.script);
        } catch (error) {
          throw new MigrationError(
            'APPLY_FAILED',
            `migration ${next.name} failed and was rolled back: ${describe(error)}`,
            { cause: error },
          );
        }
        const broken = await db.queryRaw(sqlQuery('PRAGMA foreign_key_check', []));
        if (broken.rows.length > 0) {
          const tables = [...new Set(broken.rows.map((row) => String(row[0])))].join(', ');
          throw new MigrationError(
            'APPLY_FAILED',
            `migration ${next.name} left ${broken.rows.length} row(s) with broken foreign keys ` +
              `(tables: ${tables}) and was rolled back`,
          );
        }
        await db.executeRaw(
          sqlQuery(
            'INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, logs, ' +
              'rolled_back_at, started_at, applied_steps_count) VALUES (?, ?, ?, ?, NULL, NULL, ?, 1)',
            [randomUUID(), next.checksum, prismaTimestamp(new Date()), next.name, prismaTimestamp(started)],
          ),
        );
        await db.executeScript('COMMIT');
        committed = true;
        applied.push(next.name);
        options.onApplied?.(next.name, Date.now() - started.getTime());
      } finally {
        if (!committed) {
          // The original error matters more than a failed rollback.
          await db.executeScript('ROLLBACK').catch(() => undefined);
        }
      }
    }
  } finally {
    await db.executeScript('PRAGMA foreign_keys = ON');
  }
  return { applied, total: files.length };
}
