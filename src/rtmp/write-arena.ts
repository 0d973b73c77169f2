/**
 * Memory for socket writes, reused. Every RTMP batch (connection.ts) is laid
 * out in one region and handed to the socket in one write; the region comes
 * back once that write's callback has run, i.e. once the kernel has taken
 * the bytes. Why: a fresh buffer per batch (25 a second per channel) would
 * be a malloc, an ArrayBuffer for V8 to track and a free after a scavenge;
 * a buffer per connection would be sized for its largest batch (a keyframe)
 * and mostly idle.
 *
 * A bump allocator over slabs shared by every connection of the process:
 * regions are cut from the current slab in turn; a full slab is retired and
 * goes back to a short free list once its last region is released. Writes
 * that reach the kernel at once (the steady state) release their regions on
 * the next tick, so a few slabs serve any number of channels. A region held
 * by a slow peer pins its slab, never more. Regions larger than a quarter
 * of a slab get a buffer of their own.
 */

interface Slab {
  readonly buf: Buffer;
  used: number;
  /** Regions handed out and not yet released. */
  out: number;
}

export interface Region {
  readonly buf: Buffer;
  /** Call once the write that used `buf` has completed (its callback ran, with or without an error). */
  readonly release: () => void;
}

const noop = (): void => undefined;

export class WriteArena {
  readonly #slabBytes: number;
  readonly #maxFree: number;
  #slab: Slab;
  readonly #free: Slab[] = [];

  constructor(slabBytes = 1024 * 1024, maxFree = 64) {
    this.#slabBytes = slabBytes;
    this.#maxFree = maxFree;
    this.#slab = this.#newSlab();
  }

  /** `n` bytes to fill and write. */
  take(n: number): Region {
    if (n > this.#slabBytes / 4) return { buf: Buffer.allocUnsafeSlow(n), release: noop };
    if (this.#slab.used + n > this.#slab.buf.length) {
      const full = this.#slab;
      this.#slab = this.#free.pop() ?? this.#newSlab();
      this.#recycle(full);
    }
    const slab = this.#slab;
    const buf = slab.buf.subarray(slab.used, slab.used + n);
    slab.used += n;
    slab.out += 1;
    let released = false;
    return {
      buf,
      release: () => {
        if (released) return;
        released = true;
        slab.out -= 1;
        if (slab !== this.#slab) this.#recycle(slab);
      },
    };
  }

  /** Slabs that hold nothing: kept for reuse, up to the free list's length. */
  get freeSlabs(): number {
    return this.#free.length;
  }

  /** A retired slab with nothing out goes back to the free list, or to the collector. */
  #recycle(slab: Slab): void {
    if (slab.out > 0 || this.#free.includes(slab)) return;
    if (this.#free.length >= this.#maxFree) return;
    slab.used = 0;
    this.#free.push(slab);
  }

  #newSlab(): Slab {
    return { buf: Buffer.allocUnsafeSlow(this.#slabBytes), used: 0, out: 0 };
  }
}

/** The process's arena: every RTMP connection of a worker writes through it. */
export const writeArena = new WriteArena();
