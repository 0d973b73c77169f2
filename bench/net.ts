/** Free ports and a minimal GraphQL-over-HTTP client, all on loopback. */
import { createServer } from 'node:net';

/**
 * Ports this process has handed out. The kernel may give the same port to two
 * listen(0) calls in a row once the first is closed, and a service given the
 * same port twice (RTMP and HLS, say) cannot start.
 */
const handedOut = new Set<number>();

/** A TCP port that was free a moment ago on 127.0.0.1 (the kernel picks it), never one handed out before. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await kernelPort();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

function kernelPort(): Promise<number> {
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
  const ports: number[] = [];
  while (ports.length < n) ports.push(await freePort());
  return ports;
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
