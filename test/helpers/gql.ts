/** GraphQL clients for tests: plain HTTP POST, and a real graphql-ws client for subscriptions. */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

export interface GqlError {
  message: string;
  extensions?: { code?: string; [k: string]: unknown };
}

export interface GqlResult<T> {
  data?: T | null;
  errors?: GqlError[];
}

export async function gql<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<GqlResult<T>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as GqlResult<T>;
}

/** Runs a query that must succeed and returns its data. */
export async function gqlOk<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<T> {
  const r = await gql<T>(url, query, variables, headers);
  if (r.errors?.length || !r.data) throw new Error(`GraphQL failed: ${JSON.stringify(r.errors)}`);
  return r.data;
}

/** Runs a query that must fail and returns the first error's code. */
export async function gqlErrorCode(url: string, query: string, variables: Record<string, unknown> = {}): Promise<string> {
  const r = await gql(url, query, variables);
  const code = r.errors?.[0]?.extensions?.code;
  if (typeof code !== 'string') throw new Error(`expected an error with a code, got ${JSON.stringify(r)}`);
  return code;
}

export function wsClient(httpUrl: string): Client {
  return createClient({ url: httpUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
}

/** Collects every event of a subscription until disposed. */
export function collect<T>(client: Client, query: string, variables: Record<string, unknown> = {}) {
  const events: T[] = [];
  const errors: unknown[] = [];
  const waiters: { pred: (e: T[]) => boolean; resolve: () => void }[] = [];
  const dispose = client.subscribe<T>(
    { query, variables },
    {
      next: (v) => {
        if (v.data) events.push(v.data as T);
        if (v.errors) errors.push(v.errors);
        for (const w of [...waiters]) {
          if (w.pred(events)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve();
          }
        }
      },
      error: (e) => errors.push(e),
      complete: () => undefined,
    },
  );
  return {
    events,
    errors,
    dispose,
    /** Resolves once the collected events satisfy pred, or rejects after timeoutMs. */
    until(pred: (e: T[]) => boolean, timeoutMs = 15_000): Promise<void> {
      if (pred(events)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for events; have ${JSON.stringify(events)}`)), timeoutMs);
        waiters.push({ pred, resolve: () => (clearTimeout(t), resolve()) });
      });
    },
  };
}
