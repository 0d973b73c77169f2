/**
 * The programme editor's form as data: what the operator edits, made from a
 * stored programme and turned into setProgramme's input. Pure, so that the
 * page holds no rule about the API's shapes.
 *
 * What the form cannot edit is carried through unchanged: a playlist entry's
 * files, a single-file entry's ad breaks, a filler of several files. Saving
 * must never drop them just because the form has no input for them.
 */
import type { ChannelProgrammeView } from './queries.js';

export type StartKind = 'time' | 'date';
export type SourceKind = 'file' | 'live' | 'playlist';

export interface EntryForm {
  startKind: StartKind;
  /** 'time': HH:MM[:SS] as typed; 'date': the browser's wall clock (datetime-local), sent as an instant. */
  start: string;
  source: SourceKind;
  vodResourceId: string;
  sourceUrl: string;
  /** The stored URL, masked: shown as a hint, since sending it back would store the *** */
  maskedUrl: string | null;
  /** Empty: no duration (a file entry plays its own length). */
  durationSeconds: string;
  /** Carried: a playlist entry's files (ids and names). */
  playlist: { id: string; name: string }[];
  /** Carried: a single-file entry's ad breaks. */
  breaks: { id: string; offsetSeconds: number; durationSeconds: number }[];
}

export interface ProgrammeForm {
  timeZone: string;
  dayStart: string;
  /** Usually one file; several when the stored filler was a playlist (kept as it is until one is picked). */
  filler: string[];
  entries: EntryForm[];
}

const timeOfDay = /^\d{1,2}:\d{2}(:\d{2})?$/;

export function emptyEntry(startKind: StartKind = 'time'): EntryForm {
  return { startKind, start: '', source: 'file', vodResourceId: '', sourceUrl: '', maskedUrl: null, durationSeconds: '', playlist: [], breaks: [] };
}

export function formOfProgramme(p: ChannelProgrammeView | null, browserZone: string): ProgrammeForm {
  if (p === null) return { timeZone: browserZone, dayStart: '00:00', filler: [], entries: [emptyEntry()] };
  return {
    timeZone: p.timeZone,
    dayStart: p.dayStart,
    filler: p.filler.map((f) => f.id),
    entries: p.entries.map((e) => {
      const daily = timeOfDay.test(e.start);
      const source: SourceKind = e.sourceUrl !== null ? 'live' : e.items.length > 1 ? 'playlist' : 'file';
      return {
        startKind: daily ? 'time' : 'date',
        start: daily ? e.start : wallClockOf(e.start),
        source,
        vodResourceId: source === 'file' ? (e.items[0]?.id ?? '') : '',
        sourceUrl: '',
        maskedUrl: e.sourceUrl,
        durationSeconds: e.durationSeconds === null ? '' : String(e.durationSeconds),
        playlist: source === 'playlist' ? e.items : [],
        breaks: e.breaks,
      };
    }),
  };
}

/** setProgramme's ProgrammeInput. Values go as typed: the API judges them and names the field it refuses. */
export function inputOfProgramme(f: ProgrammeForm): Record<string, unknown> {
  const filler = f.filler.length > 1 ? { fillerPlaylist: f.filler } : { fillerVodResourceId: f.filler[0] ?? '' };
  return {
    timeZone: f.timeZone,
    dayStart: f.dayStart,
    ...filler,
    entries: f.entries.map((e) => {
      const duration = e.durationSeconds.trim() === '' ? {} : { durationSeconds: Number(e.durationSeconds) };
      const start = e.startKind === 'time' ? e.start : instantOf(e.start);
      if (e.source === 'live') return { start, sourceUrl: e.sourceUrl, ...duration };
      if (e.source === 'playlist') return { start, playlist: e.playlist.map((p) => p.id), ...duration };
      return { start, vodResourceId: e.vodResourceId, ...duration, ...(e.breaks.length > 0 ? { breaks: e.breaks } : {}) };
    }),
  };
}

/** The form input an API field names (entries[2].durationSeconds → pg-entry-2-duration), for its message. */
export function inputIdOf(field: string | null): string | null {
  if (field === null) return null;
  const top: Readonly<Record<string, string>> = { timeZone: 'pg-tz', dayStart: 'pg-daystart', fillerVodResourceId: 'pg-filler', fillerPlaylist: 'pg-filler' };
  if (top[field] !== undefined) return top[field];
  const m = /^entries\[(\d+)\]\.(\w+)$/.exec(field);
  if (m === null) return null;
  const part: Readonly<Record<string, string>> = { start: 'start', durationSeconds: 'duration', sourceUrl: 'source', vodResourceId: 'source', playlist: 'source', breaks: 'source' };
  const p = part[m[2] ?? ''];
  return p === undefined ? null : `pg-entry-${m[1]}-${p}`;
}

/** datetime-local is the browser's wall clock; the API wants an instant (an unparsable value goes as typed, for the API to name). */
function instantOf(local: string): string {
  const d = new Date(local);
  return local === '' || Number.isNaN(d.getTime()) ? local : d.toISOString();
}

/** An instant as datetime-local's value on the browser's wall clock. */
function wallClockOf(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}
