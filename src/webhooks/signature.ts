/**
 * X-Vlive-Signature: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
 * keyed with the webhook's secret. The time inside the signed text lets a
 * receiver refuse a replayed delivery (one older than its tolerance), and the
 * HMAC proves the sender knew the secret. Same scheme as Stripe's, so
 * receivers' existing code fits.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const signatureHeader = 'X-Vlive-Signature';

export function sign(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/** A receiver's check: the header's MAC matches and its time is within `toleranceSeconds` of `nowSeconds`. */
export function verify(header: string, secret: string, body: string, nowSeconds: number, toleranceSeconds = 300): boolean {
  const parts = new Map(header.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const));
  const t = Number(parts.get('t'));
  const given = Buffer.from(parts.get('v1') ?? '', 'hex');
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const want = Buffer.from(sign(secret, body, t).split('v1=')[1] ?? '', 'hex');
  return given.length === want.length && timingSafeEqual(given, want);
}
