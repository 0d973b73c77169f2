/**
 * Prisma's schema engine compiled to WebAssembly (`@prisma/schema-engine-wasm`,
 * a devDependency), driven through a driver adapter: better-sqlite3 for SQLite,
 * `@prisma/adapter-pg` (devDependency) for PostgreSQL.
 *
 * Dev and test only: scripts/migration-new.ts writes migrations with it, and
 * test/db.test.ts checks that src/db/migrate.ts and Prisma's engine agree on the
 * `_prisma_migrations` bookkeeping. The service never loads it; migrate.ts applies
 * migrations without it.
 *
 * The dev-only packages are loaded by computed specifiers, and the slices of their
 * APIs used here are declared below, so that the project compiles without them
 * (`npm ci --omit=dev`). The engine is internal to Prisma and breaks without notice:
 * its version must be the one built for our Prisma release (the engines hash in its
 * version string).
 */
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import {
  bindMigrationAwareSqlAdapterFactory,
  type ErrorCapturingSqlMigrationAwareDriverAdapterFactory,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
} from '@prisma/driver-adapter-utils';

export interface SchemaFilter {
  externalTables: string[];
  externalEnums: string[];
}

export interface MigrationDirectory {
  /** Folder name relative to baseDir. */
  path: string;
  migrationFile: {
    path: string;
    content: { tag: 'ok'; value: string } | { tag: 'error'; value: string };
  };
}

export interface MigrationList {
  baseDir: string;
  lockfile: { path: string; content: string | null };
  shadowDbInitScript: string;
  migrationDirectories: MigrationDirectory[];
}

export interface SchemasContainer {
  files: { path: string; content: string }[];
}

export interface CreateMigrationOutput {
  connectorType: 'sqlite' | 'postgresql' | 'cockroachdb';
  /** `<UTC yyyyMMddHHmmss>_<name>`: the folder to create. */
  generatedMigrationName: string;
  /** null when the schema matches the migrations (and draft was false). */
  migrationScript: string | null;
  extension: string;
}

export type HistoryDiagnostic =
  | { diagnostic: 'databaseIsBehind'; unappliedMigrationNames: string[] }
  | { diagnostic: 'migrationsDirectoryIsBehind'; unpersistedMigrationNames: string[] }
  | {
      diagnostic: 'historiesDiverge';
      lastCommonMigrationName: string | null;
      unpersistedMigrationNames: string[];
      unappliedMigrationNames: string[];
    };

export interface DiagnoseMigrationHistoryOutput {
  editedMigrationNames: string[];
  failedMigrationNames: string[];
  hasMigrationsTable: boolean;
  history: HistoryDiagnostic | null;
}

/** The engine object of the package (its class SchemaEngine). */
interface WasmEngine {
  applyMigrations(input: { migrationsList: MigrationList; filters: SchemaFilter }): Promise<{
    appliedMigrationNames: string[];
  }>;
  devDiagnostic(input: { migrationsList: MigrationList; filters: SchemaFilter }): Promise<{
    action: { tag: 'reset'; reason: string } | { tag: 'createMigration' };
  }>;
  createMigration(input: {
    draft: boolean;
    migrationName: string;
    migrationsList: MigrationList;
    schema: SchemasContainer;
    filters: SchemaFilter;
  }): Promise<CreateMigrationOutput>;
  diagnoseMigrationHistory(input: {
    migrationsList: MigrationList;
    optInToShadowDatabase: boolean;
    filters: SchemaFilter;
  }): Promise<DiagnoseMigrationHistoryOutput>;
  free(): void;
}

interface GlueModule {
  __wbg_set_wasm(exports: object): void;
  SchemaEngine: {
    new: (
      options: { datamodels: [string, string][] | undefined },
      log: (line: string) => void,
      adapter: object,
    ) => Promise<WasmEngine>;
  };
}

/**
 * The slice of the WebAssembly global used here: our lib setting (ES2023, no DOM)
 * declares none of it, although Node has it.
 */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, object>) => { exports: Record<string, unknown> };
}

export const schemaEnginePackage = '@prisma/schema-engine-wasm';
const adapterPgPackage = '@prisma/adapter-pg';
const noFilters: SchemaFilter = { externalTables: [], externalEnums: [] };
const lockfileName = 'migration_lock.toml';

let loaded: Promise<GlueModule> | null = null;

/** True when the devDependency is installed (tests skip the engine checks otherwise). */
export function schemaEngineAvailable(): boolean {
  try {
    import.meta.resolve(`${schemaEnginePackage}/schema_engine_bg`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Node 20 cannot `import` a .wasm file, which the package's entry point does, so the
 * module is instantiated by hand around the package's JS glue.
 */
function loadGlue(): Promise<GlueModule> {
  loaded ??= (async () => {
    // The engine reports Rust panics through this global; without it a panic turns
    // into an unreadable TypeError.
    const registry = globalThis as { PRISMA_WASM_PANIC_REGISTRY?: { set_message(message: string): void } };
    registry.PRISMA_WASM_PANIC_REGISTRY ??= {
      set_message(message: string): void {
        process.stderr.write(`schema engine panic: ${message}\n`);
      },
    };
    const glueUrl = import.meta.resolve(`${schemaEnginePackage}/schema_engine_bg`);
    const glue = (await import(glueUrl)) as GlueModule;
    const bytes = await readFile(fileURLToPath(glueUrl).replace(/\.js$/, '.wasm'));
    const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    const instance = new wasm.Instance(new wasm.Module(bytes), { './schema_engine_bg.js': glue });
    glue.__wbg_set_wasm(instance.exports);
    (instance.exports['__wbindgen_start'] as () => void)();
    return glue;
  })();
  return loaded;
}

function isMultiStatementError(error: unknown): boolean {
  return error instanceof RangeError && error.message.includes('more than one statement');
}

/**
 * The engine replays whole migration files on the shadow database through
 * executeRaw/queryRaw, but better-sqlite3 prepares one statement at a time and throws
 * a RangeError on a script. Such a call goes through executeScript instead.
 */
function runScriptsWhole(adapter: SqlDriverAdapter): SqlDriverAdapter {
  const executeRaw = adapter.executeRaw.bind(adapter);
  const queryRaw = adapter.queryRaw.bind(adapter);
  adapter.executeRaw = async (query) => {
    try {
      return await executeRaw(query);
    } catch (error) {
      if (!isMultiStatementError(error) || query.args.length > 0) throw error;
      await adapter.executeScript(query.sql);
      return 0;
    }
  };
  adapter.queryRaw = async (query) => {
    try {
      return await queryRaw(query);
    } catch (error) {
      if (!isMultiStatementError(error) || query.args.length > 0) throw error;
      await adapter.executeScript(query.sql);
      return { columnTypes: [], columnNames: [], rows: [] };
    }
  };
  return adapter;
}

/**
 * Records a connection so that close() can end it (the engine leaves some open), and
 * makes its dispose idempotent, since the engine may have ended it already.
 */
function track(adapter: SqlDriverAdapter, opened: SqlDriverAdapter[]): SqlDriverAdapter {
  const dispose = adapter.dispose.bind(adapter);
  let disposed: Promise<void> | null = null;
  adapter.dispose = () => (disposed ??= dispose());
  opened.push(adapter);
  return adapter;
}

function sqliteAdapterFactory(file: string, opened: SqlDriverAdapter[]): SqlMigrationAwareDriverAdapterFactory {
  // The shadow database is the adapter's default, an in-memory one.
  const inner = new PrismaBetterSqlite3({ url: `file:${file}` });
  return {
    provider: inner.provider,
    adapterName: inner.adapterName,
    connect: async () => track(runScriptsWhole(await inner.connect()), opened),
    connectToShadowDb: async () => track(runScriptsWhole(await inner.connectToShadowDb()), opened),
  };
}

/** Where the PostgreSQL server is. Never a connection string: see postgresAdapterFactory. */
export interface PostgresConnection {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

/** The slice of `@prisma/adapter-pg` used here. */
interface AdapterPgModule {
  PrismaPg: new (config: PostgresConnection) => SqlMigrationAwareDriverAdapterFactory;
}

/** pg's result, as the adapter's private performIO returns it. */
interface PgResult {
  fields: { dataTypeID: number }[];
}

const pgCharOid = 18;
const pgTextOid = 25;

/**
 * adapter-pg 7.10 knows no column of type `"char"` (OID 18) and throws on the
 * engine's catalog queries, which read such columns (pg_class.relkind, …). The
 * values arrive as strings anyway, so they are declared text.
 */
function readCharAsText(adapter: SqlDriverAdapter): SqlDriverAdapter {
  const io = adapter as unknown as { performIO(query: unknown): Promise<PgResult> };
  const performIO = io.performIO.bind(adapter);
  io.performIO = async (query) => {
    const result = await performIO(query);
    for (const field of result.fields) {
      if (field.dataTypeID === pgCharOid) field.dataTypeID = pgTextOid;
    }
    return result;
  };
  return adapter;
}

/**
 * The shadow database is created and dropped here rather than by adapter-pg: its
 * connectToShadowDb drops the database before closing its own pool, which PostgreSQL
 * refuses ("being accessed by other users"), and built from a connection string it
 * would point the shadow at the main database. Hence the separate fields.
 */
async function postgresAdapterFactory(
  connection: PostgresConnection,
  opened: SqlDriverAdapter[],
): Promise<SqlMigrationAwareDriverAdapterFactory> {
  const { PrismaPg } = (await import(adapterPgPackage)) as AdapterPgModule;
  const main = new PrismaPg(connection);
  return {
    provider: main.provider,
    adapterName: main.adapterName,
    connect: async () => track(readCharAsText(await main.connect()), opened),
    connectToShadowDb: async () => {
      const admin = await main.connect();
      const name = `vlive_shadow_${randomUUID().replaceAll('-', '')}`;
      await admin.executeScript(`CREATE DATABASE "${name}"`);
      const shadow = readCharAsText(await new PrismaPg({ ...connection, database: name }).connect());
      const dispose = shadow.dispose.bind(shadow);
      shadow.dispose = async () => {
        await dispose();
        await admin.executeScript(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await admin.dispose();
      };
      return track(shadow, opened);
    },
  };
}

/** Reads a migrations folder the way the Prisma CLI does: same shape, same sort. */
export async function readMigrationList(baseDir: string): Promise<MigrationList> {
  const lockContent = await readFile(path.join(baseDir, lockfileName), 'utf8').catch(() => null);
  const entries = await readdir(baseDir, { withFileTypes: true }).catch(() => []);
  const migrationDirectories: MigrationDirectory[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const content = await readFile(path.join(baseDir, entry.name, 'migration.sql'), 'utf8').then(
      (value) => ({ tag: 'ok' as const, value }),
      (error: unknown) => ({ tag: 'error' as const, value: String(error) }),
    );
    migrationDirectories.push({ path: entry.name, migrationFile: { path: 'migration.sql', content } });
  }
  migrationDirectories.sort((a, b) => a.path.localeCompare(b.path));
  return {
    baseDir,
    lockfile: { path: lockfileName, content: lockContent },
    shadowDbInitScript: '',
    migrationDirectories,
  };
}

/** Byte for byte the migration_lock.toml the CLI writes. */
export function lockfileText(connectorType: string): string {
  return (
    '# Please do not edit this file manually\n' +
    '# It should be added in your version-control system (e.g., Git)\n' +
    `provider = "${connectorType}"\n`
  );
}

/**
 * The schema engine on one database. On SQLite the engine holds the file with
 * `PRAGMA locking_mode=EXCLUSIVE` until close(), which closes its connections
 * (freeing the engine alone does not).
 */
export class MigrationEngine {
  readonly #engine: WasmEngine;
  readonly #adapter: ErrorCapturingSqlMigrationAwareDriverAdapterFactory;
  readonly #connections: SqlDriverAdapter[];
  readonly #schema: SchemasContainer;

  private constructor(
    engine: WasmEngine,
    adapter: ErrorCapturingSqlMigrationAwareDriverAdapterFactory,
    connections: SqlDriverAdapter[],
    schema: SchemasContainer,
  ) {
    this.#engine = engine;
    this.#adapter = adapter;
    this.#connections = connections;
    this.#schema = schema;
  }

  /** `log` receives the engine's JSON trace lines. */
  static async openSqlite(options: {
    schemaPath: string;
    databaseFile: string;
    log?: (line: string) => void;
  }): Promise<MigrationEngine> {
    const connections: SqlDriverAdapter[] = [];
    return MigrationEngine.#open(options, sqliteAdapterFactory(options.databaseFile, connections), connections);
  }

  /**
   * `connection.database` is the engine's main database: it gets the migrations
   * applied. Shadow databases are created next to it and dropped.
   */
  static async openPostgres(options: {
    schemaPath: string;
    connection: PostgresConnection;
    log?: (line: string) => void;
  }): Promise<MigrationEngine> {
    const connections: SqlDriverAdapter[] = [];
    return MigrationEngine.#open(options, await postgresAdapterFactory(options.connection, connections), connections);
  }

  static async #open(
    options: { schemaPath: string; log?: (line: string) => void },
    factory: SqlMigrationAwareDriverAdapterFactory,
    connections: SqlDriverAdapter[],
  ): Promise<MigrationEngine> {
    const glue = await loadGlue();
    const content = await readFile(options.schemaPath, 'utf8');
    const adapter = bindMigrationAwareSqlAdapterFactory(factory);
    const log = options.log ?? ((): void => undefined);
    const engine = await glue.SchemaEngine.new({ datamodels: [[options.schemaPath, content]] }, log, adapter);
    return new MigrationEngine(engine, adapter, connections, { files: [{ path: options.schemaPath, content }] });
  }

  applyMigrations(migrationsList: MigrationList): Promise<string[]> {
    return this.#call(async (e) => (await e.applyMigrations({ migrationsList, filters: noFilters })).appliedMigrationNames);
  }

  /**
   * The `migrate dev` steps: devDiagnostic (createMigration needs it first), then
   * createMigration against the schema file. Apply the existing migrations first.
   */
  createMigration(migrationsList: MigrationList, migrationName: string): Promise<CreateMigrationOutput> {
    return this.#call(async (e) => {
      const diagnostic = await e.devDiagnostic({ migrationsList, filters: noFilters });
      if (diagnostic.action.tag === 'reset') {
        throw new Error(`the migration history does not replay cleanly: ${diagnostic.action.reason}`);
      }
      return e.createMigration({
        draft: false,
        migrationName,
        migrationsList,
        schema: this.#schema,
        filters: noFilters,
      });
    });
  }

  diagnoseMigrationHistory(migrationsList: MigrationList): Promise<DiagnoseMigrationHistoryOutput> {
    return this.#call((e) =>
      e.diagnoseMigrationHistory({ migrationsList, optInToShadowDatabase: false, filters: noFilters }),
    );
  }

  async close(): Promise<void> {
    this.#engine.free();
    const connections = this.#connections.splice(0);
    await Promise.all(connections.map((connection) => connection.dispose()));
  }

  /**
   * The engine reports a driver error as "External error id#N"; the real error waits
   * in the adapter's registry under that id.
   */
  async #call<T>(fn: (engine: WasmEngine) => Promise<T>): Promise<T> {
    try {
      return await fn(this.#engine);
    } catch (error) {
      const message = error instanceof Error ? error.message : JSON.stringify(error);
      const id = /External error id#(\d+)/.exec(message)?.[1];
      const record = id === undefined ? undefined : this.#adapter.errorRegistry.consumeError(Number(id));
      if (record === undefined) throw error instanceof Error ? error : new Error(message);
      const cause = record.error instanceof Error ? record.error.message : JSON.stringify(record.error);
      throw new Error(`${message}\ndriver error: ${cause}`, { cause: record.error });
    }
  }
}
