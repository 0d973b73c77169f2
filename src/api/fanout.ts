/**
 * Shared subscriptions: subscribers that ask for the same thing (the same
 * document, operation and variables, with the same role) share one source
 * and one execution per event, and each gets the same result object. Without
 * it every event was executed once per subscriber: 1,000 consoles watching
 * 200 channels through a restart wave meant 600,000 executions, and the last
 * subscriber heard of a change seconds after it happened
 * (bench/results/fanout-*.json).
 *
 * Why the role is in the key: it is the only part of a subscriber's context
 * that resolvers read (auth.ts decides by role); the first subscriber's
 * context serves everyone who shares its key.
 *
 * Each subscriber still has its own bounded buffer (subscriptions.ts's
 * Feed), so a slow socket holds up no one else.
 */
import { print, subscribe, type ExecutionArgs, type ExecutionResult } from 'graphql';
import { Feed, maxBuffered } from './subscriptions.js';

type Subscribed = AsyncIterableIterator<ExecutionResult> | ExecutionResult;

interface Share {
  readonly source: AsyncIterator<ExecutionResult>;
  /** Its entry in the table, to take out when it closes (and no newer one). */
  readonly entry: Promise<Share | ExecutionResult> | undefined;
  readonly listeners: Set<Feed<ExecutionResult>>;
  closed: boolean;
}

/** What a subscriber's context must hold for it to share: its role. */
export interface ShareableContext {
  readonly principal?: { readonly role: string };
}

export class SharedSubscriptions {
  readonly #shares = new Map<string, Promise<Share | ExecutionResult>>();

  #subscribers = 0;

  /** Subscriptions running, each shared by one or more subscribers. */
  get size(): number {
    return this.#shares.size;
  }

  /** Subscribers of all the shares. */
  get subscribers(): number {
    return this.#subscribers;
  }

  /** graphql-ws's `subscribe`: joins the share for these args, opening it if none runs. */
  readonly subscribe = async (args: ExecutionArgs): Promise<Subscribed> => {
    const role = (args.contextValue as ShareableContext | undefined)?.principal?.role;
    if (role === undefined) return subscribe(args);
    const key = JSON.stringify([role, args.operationName ?? null, print(args.document), args.variableValues ?? null]);
    for (;;) {
      let entry = this.#shares.get(key);
      if (entry === undefined) {
        entry = this.#open(key, args);
        this.#shares.set(key, entry);
      }
      const share = await entry;
      if (!('listeners' in share)) return share; // the subscription itself failed (a bad id, a refusal)
      if (share.closed) continue; // its last subscriber left while this one waited: open a new one
      const feed: Feed<ExecutionResult> = new Feed(maxBuffered, () => this.#leave(key, share, feed));
      share.listeners.add(feed);
      this.#subscribers += 1;
      return feed;
    }
  };

  async #open(key: string, args: ExecutionArgs): Promise<Share | ExecutionResult> {
    let result: Awaited<ReturnType<typeof subscribe>>;
    try {
      result = await subscribe(args);
    } catch (err) {
      this.#shares.delete(key);
      throw err;
    }
    if (!(Symbol.asyncIterator in result)) {
      this.#shares.delete(key);
      return result;
    }
    // The table holds this call's promise since it returned (before its first await).
    const share: Share = { source: result[Symbol.asyncIterator](), entry: this.#shares.get(key), listeners: new Set(), closed: false };
    void this.#pump(key, share);
    return share;
  }

  /** Hands each result to every subscriber of the share, until the source ends or the share closes. */
  async #pump(key: string, share: Share): Promise<void> {
    try {
      for (;;) {
        const r = await share.source.next();
        if (r.done === true || share.closed) break;
        for (const l of share.listeners) l.push(r.value);
      }
    } finally {
      this.#close(key, share);
      for (const l of [...share.listeners]) l.end();
    }
  }

  #leave(key: string, share: Share, feed: Feed<ExecutionResult>): void {
    if (share.listeners.delete(feed)) this.#subscribers -= 1;
    if (share.listeners.size === 0) this.#close(key, share);
  }

  #close(key: string, share: Share): void {
    if (share.closed) return;
    share.closed = true;
    if (this.#shares.get(key) === share.entry) this.#shares.delete(key);
    void share.source.return?.();
  }
}
