/**
 * Sample indexes of the VOD files a worker plays, loaded once and shared by
 * every channel that plays the same file (a hundred channels of one file cost
 * one index). Keyed by path, size and mtime, so a replaced file is re-read.
 */
import { stat } from 'node:fs/promises';
import { readMp4, type Mp4Track } from '../media/mp4.js';
import type { VodItem } from '../pool/pipeline-spec.js';
import type { ItemMedia } from './vod-timeline.js';

/** Distinct files kept; channels keep their own references to evicted ones. */
const maxEntries = 64;

interface Loaded {
  readonly video: Mp4Track | null;
  readonly audio: Mp4Track | null;
}

export class MediaCache {
  readonly #entries = new Map<string, Promise<Loaded>>();

  async load(item: VodItem): Promise<ItemMedia> {
    const st = await stat(item.path);
    const key = `${item.path}\0${st.size}\0${st.mtimeMs}`;
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = readTracks(item.path);
      this.#entries.set(key, entry);
      entry.catch(() => this.#entries.delete(key));
      while (this.#entries.size > maxEntries) {
        const oldest = this.#entries.keys().next().value;
        if (oldest === undefined) break;
        this.#entries.delete(oldest);
      }
    } else {
      // Most recently used last.
      this.#entries.delete(key);
      this.#entries.set(key, entry);
    }
    const { video, audio } = await entry;
    return { id: item.id, path: item.path, video, audio, ...(item.breaks !== undefined && item.breaks.length > 0 ? { breaks: item.breaks } : {}) };
  }

  loadAll(items: readonly VodItem[]): Promise<ItemMedia[]> {
    return Promise.all(items.map((i) => this.load(i)));
  }
}

async function readTracks(path: string): Promise<Loaded> {
  const file = await readMp4(path);
  // The first H.264 and the first AAC/MP3 track, as the registry checked them.
  const video = file.tracks.find((t) => t.kind === 'video' && t.codec === 'h264') ?? null;
  const audio = file.tracks.find((t) => t.kind === 'audio' && (t.codec === 'aac' || t.codec === 'mp3')) ?? null;
  if (video === null && audio === null) throw new Error('the file has no H.264, AAC or MP3 track');
  if (video !== null && video.config === null) throw new Error('the H.264 track has no avcC configuration');
  if (audio !== null && audio.codec === 'aac' && audio.config === null) throw new Error('the AAC track has no AudioSpecificConfig');
  return { video, audio };
}
