/**
 * Where a webhook may point. A service that posts to operator-given URLs can
 * be turned against its own network (SSRF): the origin's control port, a
 * database, a cloud metadata endpoint. So http(s) only, no credentials in
 * the URL, and every address the host name resolves to must be public,
 * unless the operator allows private ones (VLIVE_WEBHOOK_ALLOW_PRIVATE, for
 * receivers on the same host or LAN). Checked at registration and again
 * before each delivery, since DNS answers change.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { VliveError } from '../errors.js';

const notPublic = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 3],
] as const) notPublic.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [['::', 127], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) notPublic.addSubnet(net, bits, 'ipv6');

const refuse = (message: string): VliveError => new VliveError('URL_NOT_ALLOWED', `url: ${message}`, 'url');

function isPublic(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped !== undefined) return !notPublic.check(mapped, 'ipv4');
  return !notPublic.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}

/** The URL parsed, or URL_NOT_ALLOWED saying why. */
export async function checkWebhookUrl(raw: string, allowPrivate: boolean): Promise<URL> {
  if (raw.length > 2048) throw refuse('longer than 2048 characters');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refuse('not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw refuse(`scheme ${url.protocol} is not allowed; use http or https`);
  if (url.username !== '' || url.password !== '') throw refuse('credentials in the URL are not allowed; the signature proves the sender');
  if (allowPrivate) return url;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = isIP(host) !== 0 ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  } catch (err) {
    throw refuse(`${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const inside = addresses.find((a) => !isPublic(a));
  if (inside !== undefined) throw refuse(`${host} is ${inside}, a loopback, private or reserved address; set VLIVE_WEBHOOK_ALLOW_PRIVATE=on to allow it`);
  return url;
}
