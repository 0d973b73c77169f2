/**
 * A VOD channel's output profile (issue #21 item 5): the one shape every item
 * of its playlist goes out in, so that files of any size, rate and audio
 * format can share one publish session. Video is H.264 and audio AAC,
 * implied. An item that already has this shape plays as it is; any other is
 * played from a rendition transcoded once to the profile (src/vods/conform.ts).
 *
 * Pure rules: validation (BAD_USER_INPUT naming the field), the canonical
 * key a rendition is stored under, and whether a file fits.
 */
import { badInput, VliveError } from '../errors.js';
import type { MediaShape } from './compat.js';

export interface OutputProfile {
  /** Pixels, even, 16..3840. */
  readonly width: number;
  /** Pixels, even, 16..2160. */
  readonly height: number;
  /** Frames per second, 1..120 (NTSC rates such as 29.97 are taken as 30000/1001). */
  readonly frameRate: number;
  /** Hz, one of `audioSampleRates`. */
  readonly audioSampleRate: number;
  /** 1 (mono) or 2 (stereo). */
  readonly audioChannels: number;
}

/** AAC sample rates that FLV players take (RTMP's AAC is carried with its own config). */
export const audioSampleRates: readonly number[] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

export type OutputProfileInput = { [K in keyof OutputProfile]?: number | null };

function evenIn(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max || v % 2 !== 0) {
    throw badInput(`outputProfile.${field}`, `must be an even whole number from ${min} to ${max}`);
  }
  return v;
}

/** @throws BAD_USER_INPUT with extensions.field `outputProfile.<name>`. */
export function checkOutputProfile(input: OutputProfileInput): OutputProfile {
  const width = evenIn('width', input.width, 16, 3840);
  const height = evenIn('height', input.height, 16, 2160);
  const fps = input.frameRate;
  if (typeof fps !== 'number' || !Number.isFinite(fps) || fps < 1 || fps > 120) {
    throw badInput('outputProfile.frameRate', 'must be a number of frames per second from 1 to 120');
  }
  const rate = input.audioSampleRate;
  if (typeof rate !== 'number' || !audioSampleRates.includes(rate)) {
    throw badInput('outputProfile.audioSampleRate', `must be one of ${audioSampleRates.join(', ')} Hz`);
  }
  const ch = input.audioChannels;
  if (ch !== 1 && ch !== 2) throw badInput('outputProfile.audioChannels', 'must be 1 or 2');
  // Rounded to the millisecond-frame so that 29.97 and 29.970001 are one profile.
  return { width, height, frameRate: Math.round(fps * 1000) / 1000, audioSampleRate: rate, audioChannels: ch };
}

/** The canonical JSON a profile is saved and keyed under: equal profiles, equal keys. */
export function profileKey(p: OutputProfile): string {
  return JSON.stringify({ width: p.width, height: p.height, frameRate: p.frameRate, audioSampleRate: p.audioSampleRate, audioChannels: p.audioChannels });
}

/** A saved key back to a profile; null for no profile. */
export function parseProfileKey(key: string | null): OutputProfile | null {
  return key === null ? null : checkOutputProfile(JSON.parse(key) as OutputProfileInput);
}

/**
 * The rate a rendition is made at: an NTSC rate given to the millisecond
 * (23.976, 29.97, 59.94) is the exact n×1000/1001 that cameras and encoders
 * use, so that a conformed item steps like an NTSC file that fits as it is.
 */
export function exactFrameRate(p: OutputProfile): number {
  if (Number.isInteger(p.frameRate)) return p.frameRate;
  const n = Math.round((p.frameRate * 1001) / 1000);
  return Math.abs((n * 1000) / 1001 - p.frameRate) < 0.0015 ? (n * 1000) / 1001 : p.frameRate;
}

/** What a file must be to play as it is under a profile: its probe, and whether it is ready to play. */
export interface ProfiledShape extends MediaShape {
  readonly frameRate: number | null;
  readonly state: string;
}

/**
 * True when the file goes out as it is: READY, H.264 and AAC at the profile's
 * size, frame rate (within 0.1 %), sample rate and channels.
 */
export function fitsProfile(m: ProfiledShape, p: OutputProfile): boolean {
  return (
    m.state === 'READY' &&
    m.videoCodec === 'h264' && m.width === p.width && m.height === p.height &&
    m.frameRate !== null && Math.abs(m.frameRate - p.frameRate) <= p.frameRate * 1e-3 &&
    m.audioCodec === 'aac' && m.audioSampleRate === p.audioSampleRate && m.audioChannels === p.audioChannels
  );
}

/**
 * A profile's items need both tracks: a rendition makes a picture and a
 * sound of the profile's shape from what is there, not from nothing.
 * @throws INCOMPATIBLE_MEDIA naming the first file without one.
 */
export function checkConformable(items: readonly MediaShape[], context = 'the playlist'): void {
  for (const m of items) {
    if (m.videoCodec === null || m.audioCodec === null) {
      throw new VliveError('INCOMPATIBLE_MEDIA', `${context}: "${m.name}" has no ${m.videoCodec === null ? 'video' : 'audio'} track; an output profile needs files with both video and audio`);
    }
  }
}
