/**
 * A throwaway PostgreSQL cluster on a free loopback port: initdb + pg_ctl from the
 * Debian package `postgresql`, trust authentication, no fsync, everything under one
 * scratch folder that `stop()` removes. Used by scripts/migration-new.ts (to write
 * PostgreSQL migrations) and by the cluster tests (three nodes on one database).
 *
 * PostgreSQL refuses to run as root, so when we are root its tools run as the
 * `postgres` user (runuser), and the folder is handed to that user.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const { Client } = pg;

const run = promisify(execFile);

export interface ScratchPostgres {
  readonly port: number;
  /** The superuser, with trust authentication on loopback. */
  readonly user: string;
  /** postgres://vlive@127.0.0.1:<port>/<database> */
  url(database?: string): string;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server (immediate mode) and removes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** The folder with initdb and pg_ctl: on PATH, else Debian's versioned folder. */
export async function postgresBinDir(): Promise<string> {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir !== '' && existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl'))) return dir;
  }
  const versions = await readdir('/usr/lib/postgresql').catch(() => []);
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (newest !== undefined && existsSync(path.join('/usr/lib/postgresql', newest, 'bin', 'initdb'))) {
    return path.join('/usr/lib/postgresql', newest, 'bin');
  }
  throw new Error('initdb not found: install the Debian package postgresql');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

export interface ScratchPostgresOptions {
  /** Extra `-c name=value` server settings, e.g. shared_preload_libraries. */
  readonly settings?: Readonly<Record<string, string>>;
}

/** Starts a fresh cluster; about 2–10 s. */
export async function startScratchPostgres(options: ScratchPostgresOptions = {}): Promise<ScratchPostgres> {
  const bin = await postgresBinDir();
  const dir = await mkdtemp(path.join(tmpdir(), 'vlive-pg-'));
  const asRoot = process.getuid?.() === 0;
  const pg = (tool: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', path.join(bin, tool), ...args]) : run(path.join(bin, tool), args);
  const user = 'vlive';
  const data = path.join(dir, 'data');
  let started = false;
  const stop = async (): Promise<void> => {
    if (started) {
      started = false;
      await pg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    if (asRoot) {
      await run('chown', ['postgres', dir]);
      // mkdtemp makes it 0700; runuser's postgres must reach it through the parents too.
      await chmod(dir, 0o700);
    }
    await pg('initdb', ['-D', data, '-U', user, '--auth=trust', '-E', 'UTF8', '--no-sync']);
    const port = await freePort();
    const extra = Object.entries(options.settings ?? {}).map(([k, v]) => `-c ${k}=${v}`);
    const opts = [`-p ${port}`, `-k ${dir}`, '-c listen_addresses=127.0.0.1', '-F', ...extra].join(' ');
    await pg('pg_ctl', ['-D', data, '-o', opts, '-l', path.join(dir, 'server.log'), '-w', 'start']);
    started = true;
    const url = (database = 'postgres'): string => `postgres://${user}@127.0.0.1:${port}/${database}`;
    return {
      port,
      user,
      url,
      createDatabase: async (name) => {
        if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
        const client = new Client({ connectionString: url() });
        await client.connect();
        try {
          await client.query(`CREATE DATABASE ${name}`);
        } finally {
          await client.end();
        }
        return url(name);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
