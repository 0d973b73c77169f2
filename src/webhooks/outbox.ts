/**
 * Webhooks: registration, the outbox, and delivery.
 *
 * An event becomes one WebhookDelivery row per webhook that wants it, written
 * when the event happens (the outbox), so a restart loses none. Deliveries
 * are posted by a loop that claims due rows one by one with a conditional
 * update (only a row nobody holds, or whose claim ran out, is taken), so in a
 * cluster each is posted by one node; a node that dies mid-post leaves its
 * claim to run out after `claimMs` and another posts it again (at least once,
 * never two at a time: receivers dedupe by the body's `id`).
 *
 * A failed post (no answer within the timeout, or not 2xx) is retried after
 * 1 s, 2 s, 4 s … up to 10 min between tries, for at most `retryForMs`
 * (default a day) after the event; then the row is FAILED. Redirects are not
 * followed: they could lead to an address the URL check refused.
 *
 * Owns: the Webhook and WebhookDelivery rows. Imports address.ts,
 * signature.ts, serial-pass.ts, errors.ts and the Prisma client's types.
 */
import { randomUUID } from 'node:crypto';
import type { PrismaClient, Webhook, WebhookDelivery } from '../generated/prisma-sqlite/client.js';
import { badInput, notFound } from '../errors.js';
import type { Logger } from '../log.js';
import { SerialPass } from '../serial-pass.js';
import { checkWebhookUrl } from './address.js';
import { sign, signatureHeader } from './signature.js';

export const webhookEvents = ['STATUS_CHANGED', 'ERROR', 'ITEM_STARTED', 'RECORDING_FINISHED', 'CUT_IN_STARTED', 'CUT_IN_ENDED', 'CUE_POINT'] as const;
export type WebhookEvent = (typeof webhookEvents)[number];

export interface WebhookOutboxDeps {
  db: PrismaClient;
  log: Logger;
  /** This node's name: who holds a claim. */
  nodeId: string;
  /** VLIVE_WEBHOOK_ALLOW_PRIVATE: loopback and private receivers allowed. */
  allowPrivate: boolean;
  timeoutMs?: number;
  retryForMs?: number;
  firstRetryMs?: number;
  maxRetryMs?: number;
  /** How often due rows are looked for when nothing new was written, ms. */
  pollMs?: number;
  claimMs?: number;
}

export interface AddWebhookInput {
  url: string;
  events: readonly string[];
  secret: string;
}

const keep = { deliveriesPerWebhook: 20 } as const;

export class WebhookOutbox {
  readonly #d: Required<WebhookOutboxDeps>;
  /** Webhooks by event, read again after every change here and every 10 s (other nodes' changes). */
  #hooks: readonly Pick<Webhook, 'id' | 'events'>[] | null = null;
  #hooksReadAt = 0;
  #timer: NodeJS.Timeout | null = null;
  readonly #passes = new SerialPass(
    () => this.#pass(),
    (err) => this.#d.log.warn('webhook pass failed', { err: String(err) }),
  );
  #prunedAt = 0;

  constructor(deps: WebhookOutboxDeps) {
    this.#d = {
      timeoutMs: 10_000,
      retryForMs: 24 * 3600_000,
      firstRetryMs: 1000,
      maxRetryMs: 600_000,
      pollMs: 1000,
      claimMs: 60_000,
      ...deps,
    };
  }

  async add(input: AddWebhookInput): Promise<Webhook> {
    const events = [...new Set(input.events)];
    if (events.length === 0) throw badInput('events', 'name at least one event');
    const unknown = events.find((e) => !(webhookEvents as readonly string[]).includes(e));
    if (unknown !== undefined) throw badInput('events', `${JSON.stringify(unknown)} is not one of ${webhookEvents.join(', ')}`);
    if (input.secret.length < 16 || input.secret.length > 256) throw badInput('secret', 'must be 16 to 256 characters');
    // Last: it may ask DNS.
    const url = await checkWebhookUrl(input.url, this.#d.allowPrivate);
    const hook = await this.#d.db.webhook.create({ data: { url: url.href, events: events.join(','), secret: input.secret } });
    this.#hooks = null;
    this.#d.log.info('webhook added', { webhook: hook.id, events });
    return hook;
  }

  async remove(id: string): Promise<void> {
    const { count } = await this.#d.db.webhook.deleteMany({ where: { id } });
    if (count === 0) throw notFound('webhook', id);
    this.#hooks = null;
    this.#d.log.info('webhook removed', { webhook: id });
  }

  async list(): Promise<(Webhook & { deliveries: WebhookDelivery[] })[]> {
    return this.#d.db.webhook.findMany({
      orderBy: { createdAt: 'asc' },
      include: { deliveries: { orderBy: { createdAt: 'desc' }, take: keep.deliveriesPerWebhook } },
    });
  }

  /** Writes the event for every webhook that wants it; nothing at all when none does. */
  async enqueue(event: WebhookEvent, data: Record<string, unknown>): Promise<void> {
    if (this.#passes.stopped) return;
    const hooks = (await this.#webhooks()).filter((h) => h.events.split(',').includes(event));
    if (hooks.length === 0) return;
    const at = new Date();
    const body = (): string => JSON.stringify({ id: randomUUID(), event, at: at.toISOString(), data });
    await this.#d.db.webhookDelivery.createMany({ data: hooks.map((h) => ({ webhookId: h.id, event, body: body(), nextAttemptAt: at })) });
    this.#kick();
  }

  start(): void {
    this.#timer = setInterval(() => this.#kick(), this.#d.pollMs);
    this.#timer.unref();
    this.#kick();
  }

  /** Ends the loop after the posts in flight; rows not yet posted wait in the database. */
  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    await this.#passes.stop();
  }

  async #webhooks(): Promise<readonly Pick<Webhook, 'id' | 'events'>[]> {
    if (this.#hooks === null || Date.now() - this.#hooksReadAt > 10_000) {
      this.#hooks = await this.#d.db.webhook.findMany({ select: { id: true, events: true } });
      this.#hooksReadAt = Date.now();
    }
    return this.#hooks;
  }

  /** One pass at a time; a kick during a pass runs another after it. */
  #kick(): void {
    this.#passes.run();
  }

  async #pass(): Promise<void> {
    // No webhook, no delivery to look for (a cascade removed a deleted one's): the
    // list is read every 10 s at most, the due rows every second otherwise.
    if ((await this.#webhooks()).length === 0) return;
    const now = new Date();
    if (now.getTime() - this.#prunedAt > 3600_000) {
      // Settled rows are history for the API's listing; a week of it is plenty.
      this.#prunedAt = now.getTime();
      await this.#d.db.webhookDelivery.deleteMany({ where: { status: { in: ['DELIVERED', 'FAILED'] }, createdAt: { lt: new Date(now.getTime() - 7 * 86_400_000) } } });
    }
    const free = { OR: [{ claimedUntil: null }, { claimedUntil: { lt: now } }] };
    const due = await this.#d.db.webhookDelivery.findMany({
      where: { status: 'PENDING', nextAttemptAt: { lte: now }, ...free },
      orderBy: { createdAt: 'asc' },
      take: 50,
      include: { webhook: true },
    });
    const claimed = [];
    for (const row of due) {
      const { count } = await this.#d.db.webhookDelivery.updateMany({
        where: { id: row.id, status: 'PENDING', ...free },
        data: { claimedBy: this.#d.nodeId, claimedUntil: new Date(now.getTime() + this.#d.claimMs) },
      });
      if (count === 1) claimed.push(row);
    }
    await Promise.all(claimed.map((row) => this.#deliver(row, row.webhook)));
  }

  async #deliver(row: WebhookDelivery, hook: Webhook): Promise<void> {
    const attempts = row.attempts + 1;
    let status: number | null = null;
    let error: string | null = null;
    try {
      await checkWebhookUrl(hook.url, this.#d.allowPrivate);
      const res = await fetch(hook.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'vlive-webhooks', [signatureHeader]: sign(hook.secret, row.body, Math.floor(Date.now() / 1000)) },
        body: row.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#d.timeoutMs),
      });
      status = res.status;
      // Read to the end (answers to webhooks are short): a cancelled body can leave undici's socket holding the process open.
      await res.arrayBuffer().catch(() => undefined);
      if (status < 200 || status > 299) error = `HTTP ${status}`;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    const done = { claimedBy: null, claimedUntil: null, attempts, responseStatus: status };
    if (error === null) {
      await this.#d.db.webhookDelivery.update({ where: { id: row.id }, data: { ...done, status: 'DELIVERED', deliveredAt: new Date(), lastError: null } });
      return;
    }
    const wait = Math.min(this.#d.maxRetryMs, this.#d.firstRetryMs * 2 ** (attempts - 1));
    const next = Date.now() + wait;
    const giveUp = next > row.createdAt.getTime() + this.#d.retryForMs;
    await this.#d.db.webhookDelivery.update({
      where: { id: row.id },
      data: { ...done, lastError: error.slice(0, 500), ...(giveUp ? { status: 'FAILED' } : { nextAttemptAt: new Date(next) }) },
    });
    this.#d.log.warn(giveUp ? 'webhook delivery given up' : 'webhook delivery failed; will retry', { webhook: hook.id, delivery: row.id, attempts, error, ...(giveUp ? {} : { waitMs: wait }) });
  }
}
