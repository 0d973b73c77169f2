/**
 * A real HTTP receiver of webhooks on loopback, for the tests: it answers each
 * POST with the status `answer(n)` gives the n-th request (1-based) and keeps
 * the bodies and signatures of the ones it accepted.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  body: string;
  signature: string;
  json: { id: string; event: string; at: string; data: Record<string, unknown> };
}

export interface WebhookReceiver {
  url: string;
  ok: Received[];
  requests: () => number;
  close: () => Promise<void>;
}

export async function webhookReceiver(answer: (n: number) => number): Promise<WebhookReceiver> {
  const ok: Received[] = [];
  let n = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = answer(++n);
      const body = Buffer.concat(chunks).toString('utf8');
      if (status >= 200 && status < 300) ok.push({ body, signature: String(req.headers['x-vlive-signature'] ?? ''), json: JSON.parse(body) as Received['json'] });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    ok,
    requests: () => n,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        // The service keeps its posts' connections alive; they are not ours to wait for.
        server.closeAllConnections();
      }),
  };
}

