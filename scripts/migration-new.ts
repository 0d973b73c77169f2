/**
 * Dev-time tool: writes a new Prisma migration for one provider, offline.
 *
 * The Prisma CLI cannot do this here: `prisma migrate dev` first downloads a native
 * schema engine, which fails without internet. This script drives the same engine
 * compiled to WebAssembly (devDependency `@prisma/schema-engine-wasm`, see
 * src/db/schema-engine.ts) and writes what the CLI would write:
 * `prisma/<provider>/migrations/<UTC yyyyMMddHHmmss>_<name>/migration.sql` and
 * `prisma/<provider>/migrations/migration_lock.toml`.
 *
 * How: the CLI's `migrate dev` flow against a throwaway database. It gets every
 * existing migration; devDiagnostic; createMigration diffs the migration history
 * (replayed on a shadow database) against the schema; the folder is written; then all
 * migrations are applied again, which proves the new one runs on a database at the
 * previous state.
 *   sqlite    a temporary file; the shadow database is in memory.
 *   postgres  a throwaway PostgreSQL cluster (initdb + pg_ctl from the Debian package
 *             `postgresql`, run as the `postgres` user when we are root) on a free
 *             loopback port, removed afterwards (scripts/scratch-postgres.ts, which
 *             the cluster tests use too).
 *
 * Run from the repository root, after editing BOTH prisma/*\/schema.prisma files
 * (their models must stay identical; test/db.test.ts checks):
 *
 *   npx tsc --module nodenext --moduleResolution nodenext --target es2022 --lib es2023 \
 *     --types node --strict --skipLibCheck --rootDir . --outDir dist scripts/migration-new.ts
 *   node dist/scripts/migration-new.js sqlite <migration_name>     # snake_case, e.g. add_record_path
 *   node dist/scripts/migration-new.js postgres <migration_name>   # the same name
 *   node dist/scripts/migration-new.js <provider> --check          # exit 1 if a migration is missing
 *   bash scripts/prisma-generate.sh                                # the clients for the new schema
 *
 * Review the SQL before committing it. A migration is frozen once it is committed:
 * src/db/migrate.ts refuses to start on a database where an applied migration's file
 * changed. More in src/db/MIGRATIONS.md.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { lockfileText, MigrationEngine, readMigrationList } from '../src/db/schema-engine.js';
import { startScratchPostgres, type ScratchPostgres } from './scratch-postgres.js';

// dist/scripts/migration-new.js → the repository root.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const providers = ['sqlite', 'postgres'] as const;
type Provider = (typeof providers)[number];
const usage =
  'usage: node dist/scripts/migration-new.js sqlite|postgres <migration_name>\n' +
  '       node dist/scripts/migration-new.js sqlite|postgres --check';

interface Args {
  provider: Provider;
  /** null with --check. */
  name: string | null;
}

function parseArgs(argv: readonly string[]): Args {
  const [first, second, extra] = argv;
  const provider = providers.find((p) => p === first);
  if (provider === undefined) throw new Error(`the provider must be sqlite or postgres\n${usage}`);
  if (extra !== undefined) throw new Error(`unexpected argument ${JSON.stringify(extra)}\n${usage}`);
  if (second === '--check') return { provider, name: null };
  if (second === undefined || !/^[a-z0-9_]+$/.test(second)) {
    throw new Error(`the migration name must be snake_case ([a-z0-9_]+)\n${usage}`);
  }
  return { provider, name: second };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const providerDir = path.join(repoRoot, 'prisma', args.provider);
  const schemaPath = path.join(providerDir, 'schema.prisma');
  const migrationsDir = path.join(providerDir, 'migrations');
  const shown = path.relative(repoRoot, schemaPath);
  const debug = process.env['DEBUG_SCHEMA_ENGINE'] === '1';
  const log = debug ? { log: (line: string) => process.stderr.write(`${line}\n`) } : {};

  const scratch = await mkdtemp(path.join(tmpdir(), 'vlive-migration-'));
  let postgres: ScratchPostgres | null = null;
  try {
    let engine: MigrationEngine;
    if (args.provider === 'sqlite') {
      engine = await MigrationEngine.openSqlite({ schemaPath, databaseFile: path.join(scratch, 'dev.db'), ...log });
    } else {
      postgres = await startScratchPostgres();
      engine = await MigrationEngine.openPostgres({
        schemaPath,
        connection: { host: '127.0.0.1', port: postgres.port, user: 'vlive', database: 'postgres' },
        ...log,
      });
    }
    try {
      // On a fresh database the migrations go in before devDiagnostic, or it asks for a reset.
      await engine.applyMigrations(await readMigrationList(migrationsDir));
      const created = await engine.createMigration(await readMigrationList(migrationsDir), args.name ?? 'check');
      if (created.migrationScript === null) {
        console.log(`${shown}: no changes, no migration needed`);
        return 0;
      }
      if (args.name === null) {
        console.error(
          `${shown} has changes that no migration covers:\n\n${created.migrationScript}\n` +
            `write one with: node dist/scripts/migration-new.js ${args.provider} <migration_name>`,
        );
        return 1;
      }
      const folder = path.join(migrationsDir, created.generatedMigrationName);
      await mkdir(migrationsDir, { recursive: true });
      // Not recursive: an existing folder is an error, as in the CLI.
      await mkdir(folder);
      await writeFile(path.join(folder, `migration.${created.extension}`), created.migrationScript, 'utf8');
      await writeFile(path.join(migrationsDir, 'migration_lock.toml'), lockfileText(created.connectorType), 'utf8');

      const applied = await engine.applyMigrations(await readMigrationList(migrationsDir));
      if (!applied.includes(created.generatedMigrationName)) {
        throw new Error(`${created.generatedMigrationName} was written but did not apply`);
      }
      console.log(`wrote ${path.relative(repoRoot, folder)}/migration.${created.extension} (it applies cleanly)`);
      return 0;
    } finally {
      await engine.close();
    }
  } finally {
    await postgres?.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`migration-new: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
