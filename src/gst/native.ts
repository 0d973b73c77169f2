/**
 * The whole native surface of the worker and the transcoder:
 * gstreamer-superficial 1.7.4, a CommonJS addon. Nothing else imports it.
 * This module declares the part we use with opaque handles, turns the
 * addon's throws into NativeError, shapes bus messages into a closed union,
 * and owns the one protocol for giving a pipeline's bus thread back
 * (Pipeline.stop). It imports nothing of ours.
 *
 * Facts about the binding that the rest of the worker relies on (read from
 * its Pipeline.cpp / GObjectWrap.cpp):
 * - `new Pipeline(launch)` runs gst_parse_launch and throws a plain Error on a
 *   syntax error or an unknown element.
 * - `pollBus(cb)` runs gst_bus_timed_pop(bus, forever) on a libuv threadpool
 *   thread and re-queues itself after each message until the pipeline state
 *   is NULL. So every polled pipeline holds one threadpool thread, and a
 *   stopped pipeline only gives it back after one more message is popped.
 * - Property writes turn JS numbers into G_TYPE_FLOAT and strings into
 *   G_TYPE_STRING, then let GLib convert; enum-typed properties cannot be set
 *   from a string, so enums belong in the (fixed) launch text.
 * - Stock 1.7.4 never unrefs anything: a Pipeline lives until the process
 *   ends, and every property read leaks a copy. scripts/patch-gstreamer.sh
 *   applies patches/gstreamer-superficial-1.7.4-leaks.patch: the pipeline is
 *   freed when its JS object is collected (after its bus poller has seen
 *   NULL), property values are freed, element wrappers drop their reference.
 *   V8 is told each pipeline weighs 4 MB so that it collects them promptly.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export type NativeErrorCode = 'LOAD_FAILED' | 'PARSE_FAILED' | 'NO_SUCH_ELEMENT' | 'PROPERTY_REJECTED' | 'BAD_ARGUMENT';

export class NativeError extends Error {
  readonly code: NativeErrorCode;
  constructor(code: NativeErrorCode, message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'NativeError';
    this.code = code;
  }
}


/** GstState names as the binding reports them in state-changed messages. */
export type GstState = 'GST_STATE_VOID_PENDING' | 'GST_STATE_NULL' | 'GST_STATE_READY' | 'GST_STATE_PAUSED' | 'GST_STATE_PLAYING';

/** The bus messages the worker acts on; everything else arrives as 'other'. */
export type BusMessage =
  | { type: 'error'; source: string; message: string; debug: string | null }
  | { type: 'warning'; source: string; debug: string | null }
  | { type: 'eos'; source: string }
  | { type: 'state-changed'; source: string; oldState: GstState; newState: GstState }
  /** An element message: `structure` is its structure's name (patched binding), `fields` its fields. */
  | { type: 'element'; source: string; structure: string; fields: Readonly<Record<string, unknown>> }
  | { type: 'other'; source: string; rawType: string };

// The addon's own shapes. Kept private: callers only see the wrappers below.
interface RawElement {
  [property: string]: unknown;
}
interface RawPipeline {
  play(): void;
  pause(): void;
  stop(): void;
  queryPosition(): number;
  queryDuration(): number;
  findChild(name: string): RawElement | undefined;
  pollBus(cb: (msg: Record<string, unknown>) => void): void;
  sendEOS(): void;
  'auto-flush-bus': boolean;
}
interface RawAddon {
  Pipeline: new (launch: string) => RawPipeline;
}

/** How long stop() waits for a bus poller to hand its thread back, ms. */
export const busReleaseTimeoutMs = 2000;

let addon: RawAddon | null = null;

function load(): RawAddon {
  if (addon !== null) return addon;
  try {
    const require = createRequire(import.meta.url);
    addon = require('gstreamer-superficial') as RawAddon;
    return addon;
  } catch (err) {
    throw new NativeError('LOAD_FAILED', `cannot load gstreamer-superficial: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Loads the addon (which runs gst_init) and reports the GStreamer version.
 * The binding has no version call, so this reads the soname of the
 * libgstreamer that is really mapped into this process: libgstreamer-1.0.so.0.MMmm.0
 * encodes 1.MM.mm.
 */
export function initNative(): { gstVersion: string } {
  load();
  let gstVersion = 'unknown';
  try {
    const maps = readFileSync('/proc/self/maps', 'utf8');
    const m = /libgstreamer-1\.0\.so\.0\.(\d+)\.\d+/.exec(maps);
    if (m?.[1] !== undefined) {
      const n = Number(m[1]);
      gstVersion = `1.${Math.floor(n / 100)}.${n % 100}`;
    }
  } catch {
    // Not Linux, or /proc unavailable: the version is informational only.
  }
  return { gstVersion };
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

const gstStates: ReadonlySet<string> = new Set<GstState>([
  'GST_STATE_VOID_PENDING',
  'GST_STATE_NULL',
  'GST_STATE_READY',
  'GST_STATE_PAUSED',
  'GST_STATE_PLAYING',
]);
const asState = (v: unknown): GstState => (typeof v === 'string' && gstStates.has(v) ? (v as GstState) : 'GST_STATE_VOID_PENDING');

function toBusMessage(raw: Record<string, unknown>): BusMessage {
  const source = str(raw['_src_element_name']) ?? '?';
  const type = str(raw['type']) ?? '?';
  switch (type) {
    case 'error':
      return { type, source, message: str(raw['message']) ?? 'unknown error', debug: str(raw['debug']) };
    case 'warning':
      return { type, source, debug: str(raw['debug']) };
    case 'eos':
      return { type, source };
    case 'state-changed':
      return { type, source, oldState: asState(raw['old-state']), newState: asState(raw['new-state']) };
    case 'element':
      return { type, source, structure: str(raw['_structure_name']) ?? '?', fields: raw };
    default:
      return { type: 'other', source, rawType: type };
  }
}

/** An element found by name inside a Pipeline. */
export class GstElement {
  readonly #raw: RawElement;
  readonly name: string;

  /** @internal Only Pipeline creates these. */
  constructor(raw: RawElement, name: string) {
    this.#raw = raw;
    this.name = name;
  }

  get(property: string): unknown {
    return this.#raw[property];
  }

  /**
   * Pushes one buffer into an appsrc with its presentation time. The binding
   * copies the bytes into a new GstBuffer and takes the time as 8 big-endian
   * bytes of nanoseconds; it sets no DTS or duration.
   */
  push(data: Buffer, ptsNs: bigint): void {
    const push = this.#raw['push'];
    if (typeof push !== 'function') throw new NativeError('BAD_ARGUMENT', `element ${this.name} is not an appsrc`);
    const pts = Buffer.allocUnsafe(8);
    pts.writeBigUInt64BE(ptsNs);
    (push as (this: RawElement, data: Buffer, pts: Buffer) => void).call(this.#raw, data, pts);
  }

  /**
   * Pulls the next sample from an appsink (on a threadpool thread; resolves
   * null at EOS or when the pipeline stops). `caps` holds the caps' fields,
   * buffers (such as codec_data) as Buffers.
   */
  pull(): Promise<{ data: Buffer; caps: Readonly<Record<string, unknown>> } | null> {
    const pull = this.#raw['pull'];
    if (typeof pull !== 'function') return Promise.reject(new NativeError('BAD_ARGUMENT', `element ${this.name} is not an appsink`));
    return new Promise((resolve) => {
      (pull as (this: RawElement, cb: (buf: unknown, caps: unknown) => void) => void).call(this.#raw, (buf, caps) => {
        if (!Buffer.isBuffer(buf)) return resolve(null);
        resolve({ data: buf, caps: typeof caps === 'object' && caps !== null ? (caps as Record<string, unknown>) : {} });
      });
    });
  }

  /**
   * Writes a GObject property. The binding silently ignores unknown property
   * names, so this checks the name exists first.
   */
  set(property: string, value: string | number | boolean): void {
    if (!(property in this.#raw)) {
      throw new NativeError('PROPERTY_REJECTED', `element ${this.name} has no property ${property}`);
    }
    this.#raw[property] = value;
  }
}

/** One GStreamer pipeline. Opaque: the raw addon object never leaves this module. */
export class Pipeline {
  readonly #raw: RawPipeline;
  #polling = false;
  /** True while `pollBus`'s callback runs: a stop made there frees the poller as the callback returns. */
  #inCallback = false;
  /** Set by stop(); the next bus message is the one that lets the poller see NULL. */
  #released: (() => void) | null = null;
  #stopping: Promise<boolean> | null = null;

  private constructor(raw: RawPipeline) {
    this.#raw = raw;
  }

  /**
   * Parses a launch line. Callers build it only from fixed template text,
   * generated element names and integers; user strings go in through
   * GstElement.set after parsing, never through this text.
   */
  static parse(launch: string): Pipeline {
    const { Pipeline: Ctor } = load();
    let raw: RawPipeline;
    try {
      raw = new Ctor(launch);
    } catch (err) {
      throw new NativeError('PARSE_FAILED', `GStreamer could not build the pipeline: ${(err as Error).message}`, { cause: err });
    }
    // Keep messages posted while the pipeline goes to NULL on the bus: the
    // poller needs one more message after stop() to notice NULL and give its
    // threadpool thread back. With auto-flush the bus is emptied at NULL and
    // a poller that had not popped yet would wait forever.
    raw['auto-flush-bus'] = false;
    return new Pipeline(raw);
  }

  element(name: string): GstElement {
    const raw = this.#raw.findChild(name);
    if (raw === undefined) throw new NativeError('NO_SUCH_ELEMENT', `the pipeline has no element named ${name}`);
    return new GstElement(raw, name);
  }

  play(): void {
    this.#raw.play();
  }

  pause(): void {
    this.#raw.pause();
  }

  /**
   * Sets the pipeline to NULL (streaming threads joined, sockets and files
   * closed) and resolves once the bus poller has handed its threadpool
   * thread back: at once when nothing polls or when called from inside the
   * bus callback (the poller sees NULL as the callback returns), otherwise
   * when the next message (the state changes to NULL, kept on the bus by
   * auto-flush-bus=false) is popped. Resolves false if that has not happened
   * within `releaseTimeoutMs`: a thread is still blocked, and a process that
   * exits now would hang in process.exit(). Bus messages after stop() are not
   * delivered to the callback. Safe to call more than once.
   */
  stop(releaseTimeoutMs = busReleaseTimeoutMs): Promise<boolean> {
    if (this.#stopping !== null) return this.#stopping;
    const free = !this.#polling || this.#inCallback;
    this.#stopping = free
      ? Promise.resolve(true)
      : new Promise<boolean>((resolve) => {
          const guard = setTimeout(() => {
            this.#released = null;
            resolve(false);
          }, releaseTimeoutMs);
          // The guard only answers a waiter; it must not keep a process alive.
          guard.unref();
          this.#released = () => {
            clearTimeout(guard);
            resolve(true);
          };
        });
    this.#raw.stop();
    return this.#stopping;
  }

  sendEOS(): void {
    this.#raw.sendEOS();
  }

  /** Running stream position in seconds, or null while unknown. */
  queryPosition(): number | null {
    const p = this.#raw.queryPosition();
    return Number.isFinite(p) && p >= 0 ? p : null;
  }

  queryDuration(): number | null {
    const d = this.#raw.queryDuration();
    return Number.isFinite(d) && d >= 0 ? d : null;
  }

  /**
   * Starts delivering bus messages to `cb` on the main thread. Once per
   * pipeline: each call would hold another threadpool thread.
   */
  pollBus(cb: (msg: BusMessage) => void): void {
    if (this.#polling) throw new NativeError('BAD_ARGUMENT', 'pollBus may be called once per pipeline');
    this.#polling = true;
    this.#raw.pollBus((raw) => {
      if (this.#stopping !== null) {
        const released = this.#released;
        this.#released = null;
        released?.();
        return;
      }
      this.#inCallback = true;
      try {
        cb(toBusMessage(raw));
      } finally {
        this.#inCallback = false;
      }
    });
  }
}
