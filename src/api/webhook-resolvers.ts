/**
 * Resolvers of the webhook part of schema.graphql: addWebhook, removeWebhook
 * and the webhooks query with recent deliveries. Operators only, queries
 * included: a viewer has no business with the service's integrations. The
 * rules live in src/webhooks/.
 */
import type { Webhook, WebhookDelivery } from '../generated/prisma-sqlite/client.js';
import { badInput } from '../errors.js';
import { checkId } from '../names.js';
import type { WebhookOutbox } from '../webhooks/outbox.js';
import { requireOperator, type Principal } from './auth.js';

type Ctx = { principal: Principal };

/** The last four characters, so an operator can tell secrets apart without reading them. */
const maskSecret = (secret: string): string => `••••${secret.slice(-4)}`;

function view(hook: Webhook & { deliveries?: WebhookDelivery[] }) {
  return {
    id: hook.id,
    url: hook.url,
    events: hook.events.split(','),
    secret: maskSecret(hook.secret),
    createdAt: hook.createdAt,
    deliveries: (hook.deliveries ?? []).map((d) => ({
      id: d.id,
      at: d.createdAt,
      event: d.event,
      status: d.status,
      attempts: d.attempts,
      responseStatus: d.responseStatus,
      lastError: d.lastError,
      nextAttemptAt: d.status === 'PENDING' ? d.nextAttemptAt : null,
      deliveredAt: d.deliveredAt,
    })),
  };
}

export function webhookResolvers(outbox: () => WebhookOutbox) {
  return {
    Query: {
      webhooks: async (_: unknown, _a: unknown, ctx: Ctx) => {
        requireOperator(ctx.principal);
        return (await outbox().list()).map(view);
      },
    },
    Mutation: {
      addWebhook: async (_: unknown, a: { input: { url: string; events: string[]; secret: string } }, ctx: Ctx) => {
        requireOperator(ctx.principal);
        if (a.input.url.trim() === '') throw badInput('url', 'must not be empty');
        return view(await outbox().add(a.input));
      },
      removeWebhook: async (_: unknown, a: { id: string }, ctx: Ctx) => {
        requireOperator(ctx.principal);
        await outbox().remove(checkId('id', a.id));
        return true;
      },
    },
  };
}
