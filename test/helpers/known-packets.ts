/**
 * Telling a receiver's packets apart by content: the files a channel can
 * play are probed first, and each received packet is looked up by its
 * payload hash (RtmpReceiver.play with `hashes`). Used by the tests that
 * switch between sources in one session (cut-in, live items).
 */
import { probeTracks } from '../../bench/loop-check.js';
import type { ReceivedPacket } from './rtmp-receiver.js';

/** A received packet with the file it came from and its DTS in that file, ms. */
export interface Known<N extends string> {
  name: N;
  p: ReceivedPacket;
  fileMs: number;
}

export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** Packet hash → its file and DTS there; a hash found in two files (or twice) is left out. */
export class ContentIndex<N extends string> {
  readonly #byHash = new Map<string, { name: N; fileMs: number } | null>();

  /** Adds a file's packets; returns the DTS of its last video packet, ms (-1 without video). */
  async add(name: N, file: string): Promise<number> {
    const tracks = await probeTracks(file);
    for (const p of [...tracks.video, ...tracks.audio]) this.#byHash.set(p.hash, this.#byHash.has(p.hash) ? null : { name, fileMs: p.dtsMs });
    return tracks.video.at(-1)?.dtsMs ?? -1;
  }

  lookup(p: ReceivedPacket): { name: N; fileMs: number } | null {
    return p.hash === null ? null : (this.#byHash.get(p.hash) ?? null);
  }

  /** The packets whose content is known, in arrival order. */
  known(packets: readonly ReceivedPacket[]): Known<N>[] {
    return packets.flatMap((p) => {
      const k = this.lookup(p);
      return k === null ? [] : [{ name: k.name, p, fileMs: k.fileMs }];
    });
  }

  /** The source of packet `i`, or of the last known one before it (marked with '?'). */
  nameAt(packets: readonly ReceivedPacket[], i: number): string {
    for (let j = i; j >= 0; j--) {
      const p = packets[j];
      const k = p === undefined ? null : this.lookup(p);
      if (k !== null) return j === i ? k.name : `${k.name}?`;
    }
    return '?';
  }
}

/** Consecutive packets of one source, grouped. */
export function runsOf<N extends string>(seen: readonly Known<N>[]): Known<N>[][] {
  return seen.reduce<Known<N>[][]>((acc, k) => {
    const last = acc.at(-1);
    if (last !== undefined && last[0]?.name === k.name) last.push(k);
    else acc.push([k]);
    return acc;
  }, []);
}

/** A run's A/V offset: output DTS less file DTS, audio against video (median of pairs close in the file), ms. */
export function avOffset<N extends string>(run: readonly Known<N>[]): number {
  const base = (k: Known<N>): number => (k.p.dts ?? 0) * 1000 - k.fileMs;
  const offs: number[] = [];
  let video: Known<N> | null = null;
  for (const k of run) {
    if (k.p.kind === 'video') video = k;
    // Pairs close in the file only: a loop between them shifts both tracks' bases by a period.
    else if (video !== null && Math.abs(k.fileMs - video.fileMs) < 200) offs.push(base(k) - base(video));
  }
  return median(offs);
}
