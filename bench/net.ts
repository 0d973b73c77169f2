/** Free ports and a minimal GraphQL-over-HTTP client, all on loopback. */
import { createServer } from 'node:net';

/** A TCP port that was free a moment ago on 127.0.0.1 (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('listen(0) gave no port'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

export class GqlError extends Error {
  constructor(
    /** extensions.code, e.g. RATE_LIMITED; null for transport failures. */
    readonly code: string | null,
    message: string,
  ) {
    super(code === null ? message : `${code}: ${message}`);
    this.name = 'GqlError';
  }
}

/** Runs a query that must succeed; a GraphQL error or a timeout rejects with its message and code. */
export async function gql<T>(url: string, query: string, variables: Record<string, unknown>, timeoutMs: number): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = (await res.json()) as { data?: T | null; errors?: { message: string; extensions?: { code?: string } }[] };
  const err = body.errors?.[0];
  if (err !== undefined) throw new GqlError(err.extensions?.code ?? null, err.message);
  if (body.data === undefined || body.data === null) throw new GqlError(null, `HTTP ${res.status} without data`);
  return body.data;
}
