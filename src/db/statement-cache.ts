/**
 * Prepared statements kept across queries on SQLite. The better-sqlite3
 * driver adapter prepares every query afresh (SQLite parses and plans the
 * SQL each time), and Prisma sends the same few dozen statements over and
 * over: in a restart wave of 200 channels, preparing was 6 % of the service
 * thread, and a steady node spent about a tenth of its database time there
 * (issue #16, #18).
 *
 * The adapter calls `client.prepare(sql).bind(args)` and then `run()`, or
 * `columns()` and `raw().all()`, synchronously, and `prepare(sql).run()` for
 * BEGIN. This hands it, for each SQL text, one statement prepared once,
 * with the arguments given at each call instead of bound for good (a
 * better-sqlite3 statement can be bound only once). The adapter's version
 * is pinned in package.json; a client not shaped like this is left as it is.
 */
import type { SqlDriverAdapter, SqlDriverAdapterFactory } from '@prisma/driver-adapter-utils';

/** Distinct SQL texts kept; Prisma's are a few dozen, so this only bounds a surprise. */
const maxStatements = 512;

/** The part of a better-sqlite3 statement the adapter uses. */
interface Statement {
  readonly reader: boolean;
  run(...args: unknown[]): unknown;
  columns(): unknown[];
  raw(on?: boolean): Statement;
  all(...args: unknown[]): unknown[];
}

interface PreparingClient {
  prepare(sql: string): unknown;
}

const isPreparingClient = (c: unknown): c is PreparingClient =>
  typeof c === 'object' && c !== null && typeof (c as { prepare?: unknown }).prepare === 'function';

/** A statement prepared once, with its columns once asked (SQLite builds them anew at each ask). */
interface Kept {
  readonly stmt: Statement;
  columns?: unknown[];
}

/** `prepare` of a better-sqlite3 database, remembering each statement by its SQL. */
function cachingPrepare(prepare: (sql: string) => Statement): (sql: string) => unknown {
  const cache = new Map<string, Kept>();
  return (sql) => {
    let kept = cache.get(sql);
    if (kept === undefined) {
      kept = { stmt: prepare(sql) };
      if (cache.size >= maxStatements) cache.delete(cache.keys().next().value as string);
      cache.set(sql, kept);
    }
    const k = kept;
    const s = k.stmt;
    return {
      reader: s.reader,
      run: () => s.run(),
      bind: (args: unknown[]) => ({
        reader: s.reader,
        run: () => s.run(args),
        columns: () => (k.columns ??= s.columns()),
        raw: () => ({ all: () => s.raw(true).all(args) }),
      }),
    };
  };
}

/** The factory, whose connections keep their prepared statements. */
export function withStatementCache(factory: SqlDriverAdapterFactory): SqlDriverAdapterFactory {
  return {
    provider: factory.provider,
    adapterName: factory.adapterName,
    async connect(): Promise<SqlDriverAdapter> {
      const adapter = await factory.connect();
      const client: unknown = (adapter as unknown as { client?: unknown }).client;
      if (isPreparingClient(client)) client.prepare = cachingPrepare(client.prepare.bind(client) as (sql: string) => Statement);
      return adapter;
    },
  };
}
