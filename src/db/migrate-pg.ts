/**
 * The PostgreSQL side of the start-up migration runner (src/db/migrate.ts holds the
 * shared rules: the checks, Prisma's `_prisma_migrations` bookkeeping, one transaction
 * per migration).
 *
 * When several nodes start together exactly one migrates: the whole run holds a
 * session advisory lock (`pg_advisory_lock`) on one dedicated connection, so the
 * others wait for it and then find nothing pending. A session lock rather than
 * a transaction one, because the table creation and every migration transaction
 * must happen under the same lock; it goes with the connection if the process dies.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';

import {
  MigrationError,
  pendingMigrations,
  readMigrationFiles,
  type AppliedRow,
  type ApplyMigrationsOptions,
  type MigrationReport,
} from './migrate.js';

/** Any constant shared by every vlive build: "vlive-migrate" hashed by hand into a bigint. */
const migrationLockKey = '7622154310091230001';

/** The table exactly as Prisma's schema engine creates it on PostgreSQL. */
const createMigrationsTable = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

async function readApplied(client: pg.Client): Promise<AppliedRow[]> {
  const result = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null; logs: string | null }>(
    'SELECT migration_name, checksum, finished_at, logs FROM _prisma_migrations WHERE rolled_back_at IS NULL ORDER BY started_at, migration_name',
  );
  return result.rows.map((row) => ({
    name: row.migration_name,
    checksum: row.checksum,
    finishedAt: row.finished_at === null ? null : row.finished_at.toISOString(),
    logs: row.logs,
  }));
}

/**
 * Brings the PostgreSQL database at `connectionString` up to the last migration on
 * disk, on a connection of its own that it closes. Waits (without a limit) while
 * another node migrates.
 */
export async function applyPostgresMigrations(connectionString: string, options: ApplyMigrationsOptions): Promise<MigrationReport> {
  const files = await readMigrationFiles(options.migrationsDir, 'postgresql');
  const client = new pg.Client({ connectionString });
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1::bigint)', [migrationLockKey]);
    await client.query(createMigrationsTable);
    for (;;) {
      const next = pendingMigrations(files, await readApplied(client), options.migrationsDir)[0];
      if (next === undefined) break;
      const started = new Date();
      await client.query('BEGIN');
      try {
        await client.query(next.script);
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new MigrationError('APPLY_FAILED', `migration ${next.name} failed and was rolled back: ${(error as Error).message}`, { cause: error });
      }
      await client.query(
        'INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count) ' +
          'VALUES ($1, $2, now(), $3, NULL, NULL, $4, 1)',
        [randomUUID(), next.checksum, next.name, started],
      );
      await client.query('COMMIT');
      applied.push(next.name);
      options.onApplied?.(next.name, Date.now() - started.getTime());
    }
  } finally {
    // Closing the session releases the advisory lock too.
    await client.end().catch(() => undefined);
  }
  return { applied, total: files.length };
}
