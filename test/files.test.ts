/**
 * Files over HTTP: the real API server with `files` routes, asked with raw
 * requests (node:http, so no client normalizes the path first). Ranges,
 * HEAD, content types, confinement (every escape is a bare 404) and the
 * authentication GraphQL queries have.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { hashToken, type TokenTable } from '../src/api/auth.js';
import type { ApiDeps } from '../src/api/resolvers.js';
import { startApiServer, type ApiServer } from '../src/api/server.js';
import { StatusEvents } from '../src/channels/events.js';
import { createLogger } from '../src/log.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request with `path` sent exactly as written. */
function raw(port: number, path: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

// Resolvers are built lazily: a files test never reaches channels or VOD resources.
const deps: ApiDeps = {
  channels: {} as ApiDeps['channels'],
  vods: {} as ApiDeps['vods'],
  events: new StatusEvents(),
  workers: () => [],
  nodes: async () => [],
};

const segment = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
const snapshot = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]);

let scratch: string;
let dataDir: string;
let outside: string;

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'vlive-files-test-'));
  dataDir = join(scratch, 'data');
  outside = join(scratch, 'outside');
  await mkdir(join(dataDir, 'recordings', 'ch'), { recursive: true });
  await mkdir(join(dataDir, 'snapshots'), { recursive: true });
  await mkdir(outside, { recursive: true });
  await writeFile(join(dataDir, 'recordings', 'ch', 'seg.mp4'), segment);
  await writeFile(join(dataDir, 'recordings', 'ch', 'notes.txt'), 'plain');
  await writeFile(join(dataDir, 'recordings', 'ch', 'empty.mp4'), '');
  await writeFile(join(dataDir, 'snapshots', 'ch.jpg'), snapshot);
  await writeFile(join(dataDir, 'secret.mp4'), 'in the data dir, outside the served root');
  await writeFile(join(outside, 'secret.mp4'), 'outside');
  // A symlink that stays inside is served; ones that lead out are not.
  await symlink(join(dataDir, 'recordings', 'ch', 'seg.mp4'), join(dataDir, 'recordings', 'ch', 'alias.mp4'));
  await symlink(join(outside, 'secret.mp4'), join(dataDir, 'recordings', 'ch', 'escape.mp4'));
  await symlink(outside, join(dataDir, 'recordings', 'linkdir'));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function startServer(tokens: TokenTable): Promise<ApiServer> {
  return startApiServer(deps, {
    host: '127.0.0.1',
    port: 0,
    tokens,
    log: createLogger({ proc: 'files-test' }),
    routes: { '/metrics': (res) => void res.end('metrics here') },
    files: { '/recordings/': join(dataDir, 'recordings'), '/snapshots/': join(dataDir, 'snapshots') },
  });
}

describe('files in demo mode (no tokens)', () => {
  let api: ApiServer;
  before(async () => {
    api = await startServer(null);
  });
  after(async () => api?.close());

  it('serves a whole file with its length, type and Accept-Ranges', async () => {
    const r = await raw(api.port, '/recordings/ch/seg.mp4');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, segment);
    assert.equal(r.headers['content-length'], '1000');
    assert.equal(r.headers['content-type'], 'video/mp4');
    assert.equal(r.headers['accept-ranges'], 'bytes');
    assert.equal(r.headers['content-range'], undefined);
    assert.notEqual(r.headers['cache-control'], 'no-cache');
  });

  it('answers single byte ranges with 206 and Content-Range', async () => {
    const cases: [string, number, number][] = [
      ['bytes=0-99', 0, 99],
      ['bytes=100-', 100, 999],
      ['bytes=-50', 950, 999],
      ['bytes=990-5000', 990, 999],
      ['bytes=-5000', 0, 999],
      ['bytes=999-999', 999, 999],
    ];
    for (const [range, start, end] of cases) {
      const r = await raw(api.port, '/recordings/ch/seg.mp4', { headers: { range } });
      assert.equal(r.status, 206, range);
      assert.equal(r.headers['content-range'], `bytes ${start}-${end}/1000`, range);
      assert.equal(r.headers['content-length'], String(end - start + 1), range);
      assert.deepEqual(r.body, segment.subarray(start, end + 1), range);
    }
  });

  it('answers unsatisfiable ranges with 416 and the size', async () => {
    for (const range of ['bytes=999999-', 'bytes=1000-', 'bytes=-0']) {
      const r = await raw(api.port, '/recordings/ch/seg.mp4', { headers: { range } });
      assert.equal(r.status, 416, range);
      assert.equal(r.headers['content-range'], 'bytes */1000', range);
      assert.equal(r.body.length, 0);
    }
    const empty = await raw(api.port, '/recordings/ch/empty.mp4', { headers: { range: 'bytes=0-' } });
    assert.equal(empty.status, 416);
    assert.equal(empty.headers['content-range'], 'bytes */0');
  });

  it('ignores Range headers it does not serve (several ranges, other units, malformed)', async () => {
    for (const range of ['bytes=0-1,5-6', 'items=0-1', 'bytes=5-2', 'bytes=abc', 'bytes=-']) {
      const r = await raw(api.port, '/recordings/ch/seg.mp4', { headers: { range } });
      assert.equal(r.status, 200, range);
      assert.deepEqual(r.body, segment, range);
    }
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const whole = await raw(api.port, '/recordings/ch/seg.mp4', { method: 'HEAD' });
    assert.equal(whole.status, 200);
    assert.equal(whole.headers['content-length'], '1000');
    assert.equal(whole.headers['content-type'], 'video/mp4');
    assert.equal(whole.body.length, 0);
    const part = await raw(api.port, '/recordings/ch/seg.mp4', { method: 'HEAD', headers: { range: 'bytes=0-99' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-length'], '100');
    assert.equal(part.headers['content-range'], 'bytes 0-99/1000');
    assert.equal(part.body.length, 0);
  });

  it('types files by extension; snapshots are not cached', async () => {
    const jpg = await raw(api.port, '/snapshots/ch.jpg');
    assert.equal(jpg.status, 200);
    assert.equal(jpg.headers['content-type'], 'image/jpeg');
    assert.equal(jpg.headers['cache-control'], 'no-cache');
    assert.deepEqual(jpg.body, snapshot);
    const txt = await raw(api.port, '/recordings/ch/notes.txt');
    assert.equal(txt.headers['content-type'], 'application/octet-stream');
    assert.equal(txt.headers['x-content-type-options'], 'nosniff');
    const empty = await raw(api.port, '/recordings/ch/empty.mp4');
    assert.equal(empty.status, 200);
    assert.equal(empty.headers['content-length'], '0');
  });

  it('serves a symlink that stays inside the root', async () => {
    const r = await raw(api.port, '/recordings/ch/alias.mp4', { headers: { range: 'bytes=0-9' } });
    assert.equal(r.status, 206);
    assert.deepEqual(r.body, segment.subarray(0, 10));
  });

  it('answers every escape with a bare 404 that names no path', async () => {
    const escapes = [
      '/recordings/..%2Fsecret.mp4',
      '/recordings/..%2F..%2Foutside%2Fsecret.mp4',
      '/recordings/ch%2F..%2F..%2Fsecret.mp4',
      '/recordings/ch/..%2f..%2f..%2foutside/secret.mp4',
      '/recordings/%2e%2e%2Fsecret.mp4',
      '/recordings/..%5Csecret.mp4',
      `/recordings/${encodeURIComponent(join(dataDir, 'secret.mp4'))}`,
      '/recordings/%2Fetc%2Fpasswd',
      '/recordings/ch/seg.mp4%00',
      '/recordings/ch/seg.mp4%00.jpg',
      '/recordings/ch/escape.mp4',
      '/recordings/linkdir/secret.mp4',
      '/recordings/ch',
      '/recordings/ch/',
      '/recordings/',
      '/recordings/ch/missing.mp4',
      '/recordings/%E0%A4%A',
      '/snapshots/..%2Frecordings%2Fch%2Fseg.mp4',
    ];
    for (const path of escapes) {
      for (const method of ['GET', 'HEAD']) {
        const r = await raw(api.port, path, { method });
        assert.equal(r.status, 404, `${method} ${path}`);
        if (method === 'GET') assert.deepEqual(JSON.parse(r.body.toString('utf8')), { error: 'not found' }, path);
        for (const header of Object.values(r.headers)) {
          assert.ok(!String(header).includes(scratch), `${path}: a header names a server path`);
        }
      }
    }
  });

  it('leaves other methods, other paths and the existing routes alone', async () => {
    const post = await raw(api.port, '/recordings/ch/seg.mp4', { method: 'POST' });
    assert.equal(post.status, 404);
    assert.equal((await raw(api.port, '/recordingsch/seg.mp4')).status, 404);
    const metrics = await raw(api.port, '/metrics');
    assert.equal(metrics.body.toString(), 'metrics here');
    const health = await raw(api.port, '/healthz');
    assert.equal(health.status, 200);
    const res = await fetch(`http://127.0.0.1:${api.port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ workers { id } }' }),
    });
    assert.deepEqual(await res.json(), { data: { workers: [] } });
  });
});

describe('files with tokens', () => {
  let api: ApiServer;
  before(async () => {
    const tokens = new Map([
      [hashToken('view-secret'), { name: 'wall', role: 'viewer' as const }],
      [hashToken('op-secret'), { name: 'ops', role: 'operator' as const }],
    ]);
    api = await startServer(tokens);
  });
  after(async () => api?.close());

  it('needs a token, and a viewer token is enough', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'Basic b3A6c2VjcmV0' }]) {
      for (const method of ['GET', 'HEAD']) {
        const r = await raw(api.port, '/recordings/ch/seg.mp4', { method, headers });
        assert.equal(r.status, 401, `${method} ${JSON.stringify(headers)}`);
        assert.equal(r.headers['www-authenticate'], 'Bearer');
      }
    }
    // Refused before the path is looked at: no way to probe for files without a token.
    assert.equal((await raw(api.port, '/recordings/ch/missing.mp4')).status, 401);
    for (const token of ['view-secret', 'op-secret']) {
      const r = await raw(api.port, '/snapshots/ch.jpg', { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200, token);
      assert.deepEqual(r.body, snapshot);
    }
  });

  it('refuses a files key that is not a folder prefix, naming the option', async () => {
    await assert.rejects(
      startApiServer(deps, { host: '127.0.0.1', port: 0, tokens: null, log: createLogger(), files: { '/recordings': dataDir } }),
      /options\.files key "\/recordings" must start and end with "\/"/,
    );
  });
});
