/**
 * Webhooks against a real HTTP receiver on loopback (so the service runs with
 * VLIVE_WEBHOOK_ALLOW_PRIVATE=on, except where the refusal of private
 * addresses is the point). The receiver fails the first attempts; every event
 * must still arrive, signed as the README says (checked here with node:crypto,
 * not with the service's own code), and the API must show the retries. The
 * outbox lives in the real SQLite database: a restart loses nothing, and two
 * nodes' delivery loops on one database post each event once.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { startApp } from '../src/app.js';
import { openDatabase } from '../src/db/client.js';
import { createLogger } from '../src/log.js';
import { WebhookOutbox } from '../src/webhooks/outbox.js';
import { registerClip, startTestApp } from './helpers/app.js';
import { gqlErrorCode, gqlOk } from './helpers/gql.js';
import { webhookReceiver as receiver, type Received } from './helpers/webhook-receiver.js';

const SECRET = 'a-test-secret-of-some-length';

/** The README's recipe: HMAC-SHA256 of "<t>.<body>" with the secret, and a fresh t. */
function signatureHolds(r: Received, secret: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(r.signature);
  if (m === null) return false;
  const t = Number(m[1]);
  const mac = createHmac('sha256', secret).update(`${t}.${r.body}`).digest('hex');
  return mac === m[2] && Math.abs(Date.now() / 1000 - t) < 300;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await cond()); await sleep(100)) {
    if (Date.now() > deadline) assert.fail(`not within ${timeoutMs} ms: ${what}`);
  }
}

const addQ = 'mutation($i: AddWebhookInput!) { addWebhook(input: $i) { id url events secret } }';
const listQ = '{ webhooks { id url secret events deliveries { id event status attempts responseStatus lastError deliveredAt } } }';
type List = { webhooks: { id: string; secret: string; events: string[]; deliveries: { event: string; status: string; attempts: number; responseStatus: number | null; lastError: string | null }[] }[] };

describe('webhooks', () => {
  const disposers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const d of disposers.reverse()) await d();
  });

  it('refuses private, malformed and credential-bearing URLs, unknown events and short secrets, and stores nothing for them', async () => {
    const t = await startTestApp();
    disposers.push(() => t.dispose());
    const add = (i: Record<string, unknown>) => gqlErrorCode(t.url, addQ, { i: { url: 'https://example.com/hook', events: ['STATUS_CHANGED'], secret: SECRET, ...i } });
    assert.equal(await add({ url: 'http://127.0.0.1:9/hook' }), 'URL_NOT_ALLOWED');
    assert.equal(await add({ url: 'http://localhost:9/hook' }), 'URL_NOT_ALLOWED');
    assert.equal(await add({ url: 'http://[::1]:9/hook' }), 'URL_NOT_ALLOWED');
    assert.equal(await add({ url: 'http://10.1.2.3/hook' }), 'URL_NOT_ALLOWED');
    assert.equal(await add({ url: 'http://169.254.169.254/latest/meta-data' }), 'URL_NOT_ALLOWED');
    assert.equal(await add({ url: 'ftp://example.com/hook' }), 'URL_NOT_ALLOWED');
    assert.equal(await add({ url: 'https://user:pw@example.com/hook' }), 'URL_NOT_ALLOWED');
    assert.equal(await add({ url: 'not a url' }), 'URL_NOT_ALLOWED');
    assert.equal(await add({ secret: 'short' }), 'BAD_USER_INPUT');
    assert.equal(await add({ events: [] }), 'BAD_USER_INPUT');
    assert.equal(await add({ events: ['NOPE'] }), 'BAD_USER_INPUT');
    assert.deepEqual((await gqlOk<List>(t.url, listQ)).webhooks, []);
    // A public address is accepted (a literal: this machine has no DNS for the internet).
    await gqlOk(t.url, addQ, { i: { url: 'https://93.184.215.14/hook', events: ['ERROR'], secret: SECRET } });
    assert.equal((await gqlOk<List>(t.url, listQ)).webhooks.length, 1);
  });

  it('delivers signed events through a receiver that fails its first attempts, and shows the retries', async () => {
    const rx = await receiver((n) => (n <= 2 ? 500 : 200));
    disposers.push(rx.close);
    const t = await startTestApp({ VLIVE_WEBHOOK_ALLOW_PRIVATE: 'on' });
    disposers.push(() => t.dispose());
    const added = await gqlOk<{ addWebhook: { id: string; secret: string; events: string[] } }>(t.url, addQ, {
      i: { url: rx.url, events: ['STATUS_CHANGED', 'ITEM_STARTED', 'ERROR'], secret: SECRET },
    });
    assert.equal(added.addWebhook.secret, `••••${SECRET.slice(-4)}`, 'the secret is masked');

    const vod = await registerClip(t, 2);
    const ch = await gqlOk<{ createVirtualLive: { id: string } }>(t.url, 'mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }', {
      i: { name: 'hooked', sourceType: 'VOD', vodResourceId: vod, loop: true },
    });
    const id = ch.createVirtualLive.id;
    await gqlOk(t.url, 'mutation($id: ID!) { startVirtualLive(id: $id) { status } }', { id });
    // STOPPED → STARTING → LIVING, and the clip on air; the first two posts fail (500), retried after 1 s and 2 s.
    const got = (event: string, test: (d: Record<string, unknown>) => boolean = () => true) => rx.ok.some((r) => r.json.event === event && test(r.json.data));
    await until('STARTING, LIVING and an item at the receiver', () => got('STATUS_CHANGED', (d) => d['status'] === 'STARTING') && got('STATUS_CHANGED', (d) => d['status'] === 'LIVING') && got('ITEM_STARTED'), 15_000);
    await gqlOk(t.url, 'mutation($id: ID!) { stopVirtualLive(id: $id) { status } }', { id });
    await until('STOPPED at the receiver', () => got('STATUS_CHANGED', (d) => d['status'] === 'STOPPED'), 15_000);

    for (const r of rx.ok) {
      assert.ok(signatureHolds(r, SECRET), `signature of ${r.body}`);
      assert.equal(r.json.data['channelId'], id);
    }
    assert.ok(!rx.ok.some((r) => signatureHolds(r, `${SECRET}x`)), 'another secret does not verify');
    assert.equal(new Set(rx.ok.map((r) => r.json.id)).size, rx.ok.length, 'each event delivered once');
    const item = rx.ok.find((r) => r.json.event === 'ITEM_STARTED');
    assert.equal(item?.json.data['itemId'], vod);

    const list = (await gqlOk<List>(t.url, listQ)).webhooks;
    assert.equal(list.length, 1);
    const deliveries = list[0]?.deliveries ?? [];
    assert.ok(deliveries.length >= 4);
    assert.ok(deliveries.every((d) => d.status === 'DELIVERED' && d.responseStatus === 200), JSON.stringify(deliveries));
    // Two requests failed: what they carried went out again.
    assert.equal(deliveries.reduce((n, d) => n + d.attempts, 0), deliveries.length + 2);
    assert.equal(rx.requests(), deliveries.length + 2);

    // Removed: nothing more is posted.
    await gqlOk(t.url, 'mutation($id: ID!) { removeWebhook(id: $id) }', { id: list[0]?.id });
    assert.equal(await gqlErrorCode(t.url, 'mutation($id: ID!) { removeWebhook(id: $id) }', { id: list[0]?.id }), 'NOT_FOUND');
    const before = rx.requests();
    await gqlOk(t.url, 'mutation($id: ID!) { startVirtualLive(id: $id) { status } }', { id });
    await gqlOk(t.url, 'mutation($id: ID!) { stopVirtualLive(id: $id) { status } }', { id });
    await sleep(1500);
    assert.equal(rx.requests(), before);
  });

  it('keeps an undelivered event across a restart and delivers it after', async () => {
    let up = false;
    const rx = await receiver(() => (up ? 200 : 503));
    disposers.push(rx.close);
    const t = await startTestApp({ VLIVE_WEBHOOK_ALLOW_PRIVATE: 'on' });
    disposers.push(() => t.dispose());
    await gqlOk(t.url, addQ, { i: { url: rx.url, events: ['STATUS_CHANGED'], secret: SECRET } });
    const vod = await registerClip(t, 2);
    const ch = await gqlOk<{ createVirtualLive: { id: string } }>(t.url, 'mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }', {
      i: { name: 'kept', sourceType: 'VOD', vodResourceId: vod, loop: true },
    });
    await gqlOk(t.url, 'mutation($id: ID!) { startVirtualLive(id: $id) { status } }', { id: ch.createVirtualLive.id });
    await gqlOk(t.url, 'mutation($id: ID!) { stopVirtualLive(id: $id) { status } }', { id: ch.createVirtualLive.id });
    await until('a refused attempt', () => rx.requests() > 0, 10_000);
    await t.app.stop();
    assert.equal(rx.ok.length, 0);

    up = true;
    // The same data dir and database; t.dispose() stops only the first app, so this one is stopped here.
    const again = await startApp(t.config, createLogger({ proc: 'test-app-2' }));
    disposers.push(() => again.stop());
    // STARTING, LIVING and STOPPED were written before the restart; a resumed start adds nothing (the channel is stopped).
    await until('the three status changes delivered after the restart', () => rx.ok.length >= 3, 20_000);
    await sleep(500);
    assert.deepEqual(rx.ok.map((r) => r.json.data['status']).sort(), ['LIVING', 'STARTING', 'STOPPED']);
    assert.equal(new Set(rx.ok.map((r) => r.json.id)).size, rx.ok.length);
  });

  it('posts each event once when two nodes deliver from one database', async () => {
    const rx = await receiver(() => 200);
    disposers.push(rx.close);
    const t = await startTestApp({ VLIVE_WEBHOOK_ALLOW_PRIVATE: 'on' });
    disposers.push(() => t.dispose());
    await gqlOk(t.url, addQ, { i: { url: rx.url, events: ['ERROR'], secret: SECRET } });
    // A second node's outbox on its own connection to the same database file.
    const db2 = await openDatabase(t.config.databaseUrl);
    const log = createLogger({ proc: 'test-node-b' });
    const a = new WebhookOutbox({ db: db2.prisma, log, nodeId: 'a', allowPrivate: true, pollMs: 20 });
    const b = new WebhookOutbox({ db: db2.prisma, log, nodeId: 'b', allowPrivate: true, pollMs: 20 });
    try {
      a.start();
      b.start();
      for (let i = 0; i < 40; i++) await (i % 2 === 0 ? a : b).enqueue('ERROR', { n: i });
      await until('40 events received', () => rx.ok.filter((r) => typeof r.json.data['n'] === 'number').length >= 40, 20_000);
      await sleep(500);
      const ns = rx.ok.map((r) => r.json.data['n']).filter((n) => typeof n === 'number');
      assert.equal(ns.length, 40, 'no event posted twice');
      assert.deepEqual(new Set(ns).size, 40);
    } finally {
      await a.stop();
      await b.stop();
      await db2.close();
    }
  });
});
