/**
 * The HTTP face of the service: GraphQL over HTTP (Apollo) and over
 * WebSocket (graphql-ws) on one port at /graphql, plus a health check.
 * Apollo runs without a web framework: a small handler feeds it requests.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { ApolloServer, HeaderMap, type ApolloServerPlugin, type BaseContext } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { GraphQLError, specifiedRules, validate, type GraphQLFormattedError } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { SharedSubscriptions } from './fanout.js';
import { SharedJson } from './shared-json.js';
import type { Logger } from '../log.js';
import { repoPath } from '../paths.js';
import { authenticate, type Principal, type TokenTable } from './auth.js';
import { serveFile } from './files.js';
import { formatError } from './errors.js';
import { apiLimits, queryCostRule } from './limits.js';
import { createResolvers, type ApiDeps } from './resolvers.js';

/** Request bodies above this are refused before parsing. */
const maxBodyBytes = 1 << 20;

export interface ApiServer {
  readonly port: number;
  /** Subscriptions over WebSocket: subscribers, and the executions they share (fanout.ts). */
  subscriptions(): { subscribers: number; executions: number };
  close(): Promise<void>;
}

/** Answers a request it owns and returns true; returns false for any other. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;

export interface ApiOptions {
  host: string;
  port: number;
  log: Logger;
  /** Hashed API tokens; null for demo mode (no authentication). */
  tokens: TokenTable;
  /** Extra GET routes (e.g. /metrics), answered before GraphQL. */
  routes?: Record<string, (res: ServerResponse) => Promise<void> | void>;
  /** Handlers tried in order after /healthz, before everything else (e.g. the console); each returns true when it answered. */
  handlers?: RouteHandler[];
  /** Extra Apollo plugins (e.g. operation metrics). */
  plugins?: ApolloServerPlugin<BaseContext>[];
  /**
   * URL prefix (starting and ending with "/", e.g. "/recordings/") → folder whose
   * files it serves to GET and HEAD, with the authentication of GraphQL queries.
   * The longest matching prefix wins. Default: none.
   */
  files?: Record<string, string>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export async function startApiServer(deps: ApiDeps, opts: ApiOptions): Promise<ApiServer> {
  const fileRoots = Object.entries(opts.files ?? {})
    .map(([prefix, root]) => {
      if (!prefix.startsWith('/') || !prefix.endsWith('/') || prefix.length < 3) {
        throw new Error(`options.files key ${JSON.stringify(prefix)} must start and end with "/", as in "/recordings/"`);
      }
      return { prefix, root: resolve(root) };
    })
    .sort((a, b) => b.prefix.length - a.prefix.length);
  const typeDefs = readFileSync(repoPath('schema.graphql'), 'utf8');
  const schema = makeExecutableSchema({ typeDefs, resolvers: createResolvers(deps) });
  const format = formatError(opts.log);
  const httpServer: Server = createServer();
  const wss = new WebSocketServer({ server: httpServer, path: '/graphql', maxPayload: maxBodyBytes });
  const wsPrincipals = new WeakMap<object, Principal>();
  const shared = new SharedSubscriptions();
  // Before graphql-ws's own listener: its sends must go through the expansion (shared-json.ts).
  const sharedJson = new SharedJson();
  wss.on('connection', (socket) => sharedJson.attach(socket));
  const wsCleanup = useServer(
    {
      schema,
      jsonMessageReplacer: sharedJson.replacer,
      validate: (sch, doc) => validate(sch, doc, [...specifiedRules, queryCostRule]),
      // The token comes in connectionParams ({ authorization: "Bearer …" }); a bad one closes the socket (4403).
      onConnect: (ctx) => {
        const params = ctx.connectionParams ?? {};
        const credential = params['authorization'] ?? params['Authorization'] ?? params['token'];
        try {
          wsPrincipals.set(ctx, authenticate(opts.tokens, typeof credential === 'string' ? credential : undefined));
          return true;
        } catch {
          return false;
        }
      },
      onSubscribe: (ctx) => {
        // ctx.subscriptions already holds the one being subscribed.
        if (Object.keys(ctx.subscriptions).length > apiLimits.maxSubscriptionsPerConnection) {
          return [
            new GraphQLError(`at most ${apiLimits.maxSubscriptionsPerConnection} subscriptions per connection`, {
              extensions: { code: 'RATE_LIMITED' },
            }),
          ];
        }
        return undefined;
      },
      context: (ctx) => ({ principal: wsPrincipals.get(ctx) }),
      // Identical subscriptions share one execution per event (fanout.ts).
      subscribe: shared.subscribe,
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => format(e.toJSON(), e)),
      onNext: (_ctx, _id, _payload, _args, result) => {
        if (!result.errors) return undefined;
        return {
          data: result.data ?? null,
          errors: result.errors.map((e): GraphQLFormattedError => format(e.toJSON(), e)),
        };
      },
    },
    wss,
  );
  const apollo = new ApolloServer({
    schema,
    formatError: format,
    validationRules: [queryCostRule],
    includeStacktraceInErrorResponses: false,
    // main.ts owns the signals and stops the parts in order; Apollo must not race it.
    stopOnTerminationSignals: false,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      ApolloServerPluginLandingPageDisabled(),
      { serverWillStart: async () => ({ drainServer: async () => wsCleanup.dispose() }) },
      ...(opts.plugins ?? []),
    ],
  });
  await apollo.start();

  httpServer.on('request', (req, res) => {
    void handle(req, res).catch((err: unknown) => {
      opts.log.error('http handler failed', { err: String(err) });
      if (!res.headersSent) sendJson(res, 500, { error: 'internal server error' });
      else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/healthz') return sendJson(res, 200, { ok: true });
    for (const handler of opts.handlers ?? []) if (await handler(req, res, url)) return;
    const route = req.method === 'GET' ? opts.routes?.[url.pathname] : undefined;
    if (route) return route(res);
    const files = req.method === 'GET' || req.method === 'HEAD' ? fileRoots.find((f) => url.pathname.startsWith(f.prefix)) : undefined;
    if (files) {
      try {
        authenticate(opts.tokens, req.headers.authorization);
      } catch (err) {
        res.setHeader('www-authenticate', 'Bearer');
        return sendJson(res, 401, { error: (err as Error).message });
      }
      let rel: string;
      try {
        rel = decodeURIComponent(url.pathname.slice(files.prefix.length));
      } catch {
        return sendJson(res, 404, { error: 'not found' });
      }
      return serveFile(req, res, files.root, rel);
    }
    if (url.pathname !== '/graphql') return sendJson(res, 404, { error: 'not found' });
    let body: unknown = undefined;
    if (req.method === 'POST') {
      // Refused on the declared length before reading a byte; the connection is
      // closed after the answer so the rest of the upload is never read.
      if (Number(req.headers['content-length'] ?? 0) > maxBodyBytes) {
        res.setHeader('connection', 'close');
        res.on('finish', () => req.destroy());
        return sendJson(res, 413, { errors: [{ message: 'request body too large', extensions: { code: 'BAD_REQUEST' } }] });
      }
      let text: string;
      try {
        text = await readBody(req);
      } catch {
        return sendJson(res, 413, { errors: [{ message: 'request body too large', extensions: { code: 'BAD_REQUEST' } }] });
      }
      try {
        body = text === '' ? {} : JSON.parse(text);
      } catch {
        return sendJson(res, 400, { errors: [{ message: 'request body is not JSON', extensions: { code: 'BAD_REQUEST' } }] });
      }
    }
    const headers = new HeaderMap();
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
    }
    const result = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body },
      context: async () => {
        try {
          return { principal: authenticate(opts.tokens, req.headers.authorization) };
        } catch (err) {
          throw new GraphQLError((err as Error).message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
        }
      },
    });
    for (const [k, v] of result.headers) res.setHeader(k, v);
    res.statusCode = result.status ?? 200;
    if (result.body.kind === 'complete') {
      res.end(result.body.string);
      return;
    }
    for await (const chunk of result.body.asyncIterator) res.write(chunk);
    res.end();
  }

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(opts.port, opts.host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const port = (httpServer.address() as AddressInfo).port;
  return {
    port,
    subscriptions: () => ({ subscribers: shared.subscribers, executions: shared.size }),
    close: async () => {
      opts.log.debug('api: stopping apollo');
      await apollo.stop();
      opts.log.debug('api: closing websocket server');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      opts.log.debug('api: closed');
    },
  };
}
