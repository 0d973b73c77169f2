/**
 * One JSON text per subscription result, however many subscribers it goes
 * to. Subscribers of one shared subscription get the same result object
 * (fanout.ts), but graphql-ws serialises every message it sends, so 1,000
 * consoles following a restart wave serialised each batch 1,000 times: 12 %
 * of the service thread in `npm run bench:fanout -- --scope batch`.
 *
 * How, without changing graphql-ws: its message replacer
 * (`jsonMessageReplacer`) puts a token in place of a next message's `data`,
 * remembering the data's own text (kept per data object, so it is written
 * once), and the socket's send, which graphql-ws calls right after with the
 * text it made, puts that text back in place of the token. The token is
 * random per process, so no client-chosen string (a subscription id) can
 * pose as it.
 */
import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';

const isObject = (v: unknown): v is object => typeof v === 'object' && v !== null;

export class SharedJson {
  readonly #token = `vlive-json-${randomBytes(12).toString('hex')}`;
  readonly #quotedToken = JSON.stringify(this.#token);
  /** Texts of data objects already written. */
  readonly #texts = new WeakMap<object, string>();
  /** Payloads of next messages being written. */
  readonly #payloads = new WeakSet<object>();
  /** The data text the last message's token stands for, until its send. */
  #pending: string | null = null;

  /** graphql-ws's jsonMessageReplacer (JSON.stringify passes the holder as `this`). */
  readonly replacer: (this: unknown, key: string, value: unknown) => unknown;

  constructor() {
    const shared = this;
    this.replacer = function (this: unknown, key: string, value: unknown): unknown {
      return shared.#replace(this, key, value);
    };
  }

  #replace(holder: unknown, key: string, value: unknown): unknown {
    if (key === 'payload' && isObject(holder) && (holder as { type?: unknown }).type === 'next' && isObject(value)) {
      this.#payloads.add(value);
      return value;
    }
    if (key === 'data' && isObject(holder) && this.#payloads.has(holder) && isObject(value)) {
      let text = this.#texts.get(value);
      if (text === undefined) {
        text = JSON.stringify(value);
        this.#texts.set(value, text);
      }
      this.#pending = text;
      return this.#token;
    }
    return value;
  }

  /** The message with the data text back in place of its token. */
  expand(message: string): string {
    const text = this.#pending;
    if (text === null) return message;
    this.#pending = null;
    const at = message.indexOf(this.#quotedToken);
    return at < 0 ? message : message.slice(0, at) + text + message.slice(at + this.#quotedToken.length);
  }

  /** Makes a connection's socket expand what it sends; call before graphql-ws sees the socket. */
  attach(socket: WebSocket): void {
    const send = socket.send.bind(socket) as (data: unknown, ...rest: unknown[]) => void;
    const expand = (data: unknown): unknown => (typeof data === 'string' ? this.expand(data) : data);
    (socket as unknown as { send: (data: unknown, ...rest: unknown[]) => void }).send = (data, ...rest) => send(expand(data), ...rest);
  }
}
