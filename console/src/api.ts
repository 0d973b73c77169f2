/**
 * The console's only door to the service: GraphQL over HTTP for queries and
 * mutations, graphql-ws for the status subscription, and fetch with the
 * token for files (snapshots, recordings) that an <img> or <a> cannot
 * authenticate. The token lives in sessionStorage: it is gone when the
 * browser tab closes, and never reaches localStorage or a cookie.
 */
import { createClient, type Client } from 'graphql-ws';

const tokenKey = 'vlive.token';

/** A GraphQL error as the service codes it (README's Error codes table). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly field: string | null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ServiceInfo {
  /** True when the service has API tokens: the console asks for one. */
  readonly tokens: boolean;
  readonly grafanaUrl: string | null;
}

export type Role = 'viewer' | 'operator';

interface GraphQLErrorShape {
  message?: string;
  extensions?: { code?: string; field?: string };
}

function firstError(errors: readonly GraphQLErrorShape[]): ApiError {
  const e = errors[0] ?? {};
  return new ApiError(e.message ?? 'unknown error', e.extensions?.code ?? 'INTERNAL_SERVER_ERROR', e.extensions?.field ?? null);
}

export class Api {
  #token: string | null = sessionStorage.getItem(tokenKey);
  #ws: Client | null = null;

  get token(): string | null {
    return this.#token;
  }

  setToken(token: string | null): void {
    this.#token = token;
    if (token === null) sessionStorage.removeItem(tokenKey);
    else sessionStorage.setItem(tokenKey, token);
    // The socket authenticated with the old token at its connect; start a new one.
    void this.#ws?.dispose();
    this.#ws = null;
  }

  /** Headers for the service's own HTTP routes (GraphQL, /hls/, /snapshots/, /recordings/). */
  authHeaders(): Record<string, string> {
    return this.#token === null ? {} : { authorization: `Bearer ${this.#token}` };
  }

  async info(): Promise<ServiceInfo> {
    const res = await fetch('/console/info');
    return (await res.json()) as ServiceInfo;
  }

  async gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const res = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...this.authHeaders() },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json().catch(() => ({}))) as { data?: T; errors?: GraphQLErrorShape[] };
    if (body.errors && body.errors.length > 0) throw firstError(body.errors);
    if (!res.ok || body.data === undefined) throw new ApiError(`HTTP ${res.status}`, res.status === 401 ? 'UNAUTHENTICATED' : 'BAD_REQUEST', null);
    return body.data;
  }

  /**
   * What the token may do. The API has no "who am I" query, so the console
   * asks for a mutation on an id that cannot exist: a viewer is refused with
   * FORBIDDEN before the lookup, an operator gets NOT_FOUND. Nothing changes.
   */
  async role(): Promise<Role> {
    try {
      await this.gql('mutation Probe { removeSchedule(id: "console-role-probe") }');
      return 'operator';
    } catch (err) {
      if (err instanceof ApiError && err.code === 'FORBIDDEN') return 'viewer';
      // NOT_FOUND (or the id's own check): the role let the mutation through.
      if (err instanceof ApiError && err.code !== 'UNAUTHENTICATED') return 'operator';
      throw err;
    }
  }

  /** Follows a subscription; returns the function that ends it. */
  subscribe<T>(query: string, variables: Record<string, unknown>, onData: (data: T) => void, onError: (err: ApiError) => void): () => void {
    this.#ws ??= createClient({
      url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`,
      // Read at each (re)connect, so a new sign-in is what the next socket presents.
      connectionParams: () => (this.#token === null ? {} : { authorization: `Bearer ${this.#token}` }),
      retryAttempts: Infinity,
      shouldRetry: () => true,
    });
    return this.#ws.subscribe<T>(
      { query, variables },
      {
        next: (msg) => {
          if (msg.errors && msg.errors.length > 0) onError(firstError(msg.errors as GraphQLErrorShape[]));
          else if (msg.data) onData(msg.data);
        },
        error: (err) => onError(Array.isArray(err) ? firstError(err as GraphQLErrorShape[]) : new ApiError(String(err), 'BAD_REQUEST', null)),
        complete: () => undefined,
      },
    );
  }

  /** A file of the service as an object URL (the caller revokes it). */
  async objectUrl(path: string): Promise<string | null> {
    const res = await fetch(path, { headers: this.authHeaders() });
    if (!res.ok) return null;
    return URL.createObjectURL(await res.blob());
  }
}
