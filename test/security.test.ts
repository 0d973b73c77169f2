/**
 * Security: tokens and roles over HTTP and WebSocket, hostile strings that
 * must never become pipeline syntax or files, and the API's limits.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { access, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { loadTokens } from '../src/api/auth.js';
import { apiLimits } from '../src/api/limits.js';
import { startTestApp, writeTokensFile, type TestApp } from './helpers/app.js';
import { gql, gqlErrorCode, gqlOk } from './helpers/gql.js';
import { makeMp4 } from './helpers/media.js';

const sha = (t: string): string => createHash('sha256').update(t).digest('hex');
const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

describe('authentication and roles', () => {
  let t: TestApp;
  before(async () => {
    const file = await writeTokensFile([
      { name: 'ops', role: 'operator', secret: 'op-secret' },
      { name: 'wall', role: 'viewer', secret: 'view-secret' },
      { name: 'script', role: 'operator', secret: 'script-secret', startStopsPer10s: 3 },
    ]);
    t = await startTestApp({ VLIVE_TOKENS_FILE: file, VLIVE_WORKERS: '1' });
  });
  after(async () => t?.dispose());

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const create = 'mutation { createVirtualLive(input: { name: "x", sourceType: ONLINE, sourceUrl: "rtmp://127.0.0.1/live/x" }) { id } }';

  it('refuses requests without a valid token with UNAUTHENTICATED and HTTP 401', async () => {
    for (const headers of [{}, bearer('wrong'), { authorization: 'Basic b3A6c2VjcmV0' }, bearer('x'.repeat(10_000))]) {
      const res = await fetch(t.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query: '{ virtualLives { id } }' }),
      });
      assert.equal(res.status, 401);
      const body = (await res.json()) as { errors: { extensions: { code: string } }[] };
      assert.equal(body.errors[0]?.extensions.code, 'UNAUTHENTICATED');
    }
  });

  it('lets viewers read but not change, with FORBIDDEN; operators change', async () => {
    const read = await gql(t.url, '{ virtualLives { id } workers { id } }', {}, bearer('view-secret'));
    assert.equal(read.errors, undefined);
    const denied = await gql(t.url, create, {}, bearer('view-secret'));
    assert.equal(denied.errors?.[0]?.extensions?.code, 'FORBIDDEN');
    const none = await gql<{ virtualLives: unknown[] }>(t.url, '{ virtualLives { id } }', {}, bearer('op-secret'));
    assert.deepEqual(none.data?.virtualLives, [], 'the viewer created nothing');
    const made = await gql(t.url, create, {}, bearer('op-secret'));
    assert.equal(made.errors, undefined);
  });

  it("holds a token to its own start/stop budget from the tokens file, and refuses a bad one", async () => {
    const startQ = 'mutation { startVirtualLive(id: "nope") { id } }';
    const codes = async (token: string, n: number): Promise<string[]> => {
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push(String((await gql(t.url, startQ, {}, bearer(token))).errors?.[0]?.extensions?.code));
      return out;
    };
    assert.deepEqual(await codes('script-secret', 4), ['NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND', 'RATE_LIMITED']);
    assert.deepEqual(await codes('op-secret', 4), ['NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND'], 'another token keeps the default budget');
    const bad = join(t.dir, 'bad-tokens.json');
    await writeFile(bad, JSON.stringify({ tokens: [{ name: 'x', role: 'operator', sha256: sha('x'), startStopsPer10s: 0 }] }));
    assert.throws(() => loadTokens(bad), /tokens\[0\]\.startStopsPer10s must be a positive integer/);
  });

  it('authenticates subscriptions through connectionParams', async () => {
    const connect = (params: Record<string, string>) =>
      new Promise<string>((resolve) => {
        const client = createClient({
          url: t.url.replace(/^http/, 'ws'),
          webSocketImpl: WebSocket,
          retryAttempts: 0,
          connectionParams: params,
          on: { connected: () => resolve('connected'), closed: (e) => resolve(`closed ${(e as { code?: number }).code}`) },
          lazy: false,
        });
        setTimeout(() => void client.dispose(), 2000);
      });
    assert.equal(await connect({}), 'closed 4403');
    assert.equal(await connect({ authorization: 'Bearer wrong' }), 'closed 4403');
    assert.equal(await connect({ authorization: 'Bearer view-secret' }), 'connected');
  });
});

describe('hostile input and limits (demo mode)', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ VLIVE_WORKERS: '1' });
  });
  after(async () => t?.dispose());

  const hostile = [
    'x ! filesink location=/tmp/vlive-pwned-1',
    '" ! filesink location=/tmp/vlive-pwned-2 "',
    "a' b\nc\r\n! filesink location=/tmp/vlive-pwned-3",
    'nul\u0000byte',
    'x'.repeat(5000),
    '\u202Egnp.exe\u0301\u{1F600}',
  ];

  it('never turns hostile names, paths or URLs into pipeline syntax or files', async () => {
    const dir = join(t.mediaRoot, 'odd');
    await mkdir(dir, { recursive: true });
    // A real file whose name is launch syntax: it must play as a plain file name.
    // (No slash can be in a file name, so the hostile location is relative: the worker's cwd.)
    await makeMp4(dir, { name: `odd ! filesink location=vlive-pwned.mp4 "q" 'y'`, seconds: 2, width: 160, height: 120 });
    const [file] = await readdir(dir);
    assert.ok(file);
    const vod = await gqlOk<{ registerVodResource: { id: string } }>(
      t.url,
      'mutation($i: RegisterVodResourceInput!) { registerVodResource(input: $i) { id } }',
      { i: { name: 'odd ! name', path: `odd/${file}` } },
    );
    const ch = await gqlOk<{ createVirtualLive: { id: string } }>(
      t.url,
      'mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }',
      { i: { name: hostile[0], sourceType: 'VOD', vodResourceId: vod.registerVodResource.id } },
    );
    const live = await gqlOk<{ startVirtualLive: { status: string; errorString: string | null } }>(
      t.url,
      'mutation($id: ID!) { startVirtualLive(id: $id) { status errorString } }',
      { id: ch.createVirtualLive.id },
    );
    assert.equal(live.startVirtualLive.status, 'LIVING', live.startVirtualLive.errorString ?? '');
    await gqlOk(t.url, 'mutation($id: ID!) { stopVirtualLive(id: $id) { status } }', { id: ch.createVirtualLive.id });

    const createQ = 'mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }';
    const regQ = 'mutation($i: RegisterVodResourceInput!) { registerVodResource(input: $i) { id } }';
    const codes = new Set<string>();
    for (const s of hostile) {
      codes.add(await gqlErrorCode(t.url, createQ, { i: { name: 'x', sourceType: 'ONLINE', sourceUrl: `rtmp://127.0.0.1/live/${s}` } }));
      codes.add(await gqlErrorCode(t.url, createQ, { i: { name: 'x', sourceType: 'VOD', vodResourceId: vod.registerVodResource.id, pushTargets: [`rtmp://127.0.0.1/live/${s}`] } }));
      codes.add(await gqlErrorCode(t.url, regQ, { i: { name: 'x', path: s } }));
      codes.add(await gqlErrorCode(t.url, 'mutation($id: ID!) { startVirtualLive(id: $id) { id } }', { id: s }));
    }
    for (const c of codes) assert.ok(['URL_NOT_ALLOWED', 'BAD_USER_INPUT', 'PATH_OUTSIDE_MEDIA_ROOT', 'MEDIA_UNREADABLE'].includes(c), c);
    // Names are data: stored and shown as given (trimmed), or refused when they carry control characters.
    assert.equal(await gqlErrorCode(t.url, createQ, { i: { name: hostile[2], sourceType: 'VOD', vodResourceId: vod.registerVodResource.id } }), 'BAD_USER_INPUT');
    assert.equal(await gqlErrorCode(t.url, createQ, { i: { name: hostile[4], sourceType: 'VOD', vodResourceId: vod.registerVodResource.id } }), 'BAD_USER_INPUT');

    for (let i = 1; i <= 3; i++) assert.equal(await exists(`/tmp/vlive-pwned-${i}`), false);
    assert.equal(await exists(join(process.cwd(), 'vlive-pwned.mp4')), false, 'no filesink ran');
    assert.equal(await exists(join(dir, 'vlive-pwned.mp4')), false, 'no filesink ran');
  });

  it('bounds query depth and size, body size, start/stop rate and subscriptions per connection', async () => {
    const deep = '{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } }';
    assert.equal(await gqlErrorCode(t.url, deep), 'QUERY_TOO_COMPLEX');
    const wide = `{ ${Array.from({ length: 400 }, (_, i) => `a${i}: __typename`).join(' ')} }`;
    assert.equal(await gqlErrorCode(t.url, wide), 'QUERY_TOO_COMPLEX');

    const big = await fetch(t.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ workers { id } }', variables: { pad: 'x'.repeat(2 << 20) } }),
    });
    assert.equal(big.status, 413);

    const startQ = 'mutation { startVirtualLive(id: "nope") { id } }';
    const seen: string[] = [];
    const limit = apiLimits.startStopPerWindow;
    for (let i = 0; i <= limit; i++) seen.push(await gqlErrorCode(t.url, startQ));
    // The earlier test in this suite spent a few of the same token's starts and stops.
    const firstLimited = seen.indexOf('RATE_LIMITED');
    assert.ok(firstLimited >= limit - 15 && firstLimited <= limit, `first refusal at request ${firstLimited}`);
    assert.deepEqual(new Set(seen.slice(0, firstLimited)), new Set(['NOT_FOUND']));
    assert.deepEqual(new Set(seen.slice(firstLimited)), new Set(['RATE_LIMITED']));

    const client = createClient({ url: t.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      const outcomes: Promise<string>[] = [];
      for (let i = 0; i < 21; i++) {
        outcomes.push(
          new Promise((resolve) => {
            client.subscribe(
              { query: 'subscription { virtualLiveStatusChanged { id } }' },
              {
                next: () => undefined,
                error: (e) => resolve(JSON.stringify(e)),
                complete: () => resolve('complete'),
              },
            );
            setTimeout(() => resolve('open'), 1500);
          }),
        );
      }
      const results = await Promise.all(outcomes);
      assert.equal(results.filter((r) => r === 'open').length, 20);
      assert.match(results.find((r) => r !== 'open') ?? '', /RATE_LIMITED/);
    } finally {
      await client.dispose();
    }
    const ok = await gql(t.url, '{ workers { id } }');
    assert.equal(ok.errors, undefined, 'the service still answers');
  });
});
