/**
 * Which VOD resources can follow each other in one publish session. The
 * worker switches items without a new publish, so the receiver's decoders
 * must be able to go on: the same tracks, codecs, picture size and audio
 * format. New SPS/PPS or AudioSpecificConfig bytes are fine (the worker sends
 * a new sequence header at the switch); a new picture size or sample rate is
 * not, as many players only read those once.
 */
import { VliveError } from '../errors.js';

/** The fields of a VOD resource that decide compatibility. */
export interface MediaShape {
  readonly id: string;
  readonly name: string;
  readonly videoCodec: string | null;
  readonly width: number | null;
  readonly height: number | null;
  readonly audioCodec: string | null;
  readonly audioSampleRate: number | null;
  readonly audioChannels: number | null;
}

function describe(m: MediaShape): string {
  const video = m.videoCodec === null ? 'no video' : `${m.videoCodec} ${m.width ?? '?'}x${m.height ?? '?'}`;
  const audio = m.audioCodec === null ? 'no audio' : `${m.audioCodec} ${m.audioSampleRate ?? '?'} Hz ${m.audioChannels ?? '?'} ch`;
  return `${video}, ${audio}`;
}

const key = (m: MediaShape): string => describe(m);

/** Throws INCOMPATIBLE_MEDIA naming the first item that differs from the first one. */
export function checkCompatible(items: readonly MediaShape[], context = 'the playlist'): void {
  const [first, ...rest] = items;
  if (first === undefined) return;
  for (const m of rest) {
    if (key(m) !== key(first)) {
      throw new VliveError(
        'INCOMPATIBLE_MEDIA',
        `${context}: "${m.name}" (${describe(m)}) cannot follow "${first.name}" (${describe(first)}) in one publish session; give every item the same tracks, codecs, picture size and audio format`,
      );
    }
  }
}
