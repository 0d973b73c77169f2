/**
 * A VOD channel's wall-clock programme (issue #22): the guide around now
 * (the past hour, the next few), and for operators the editor of the stored
 * programme. Both are read again when the subscription reports a change of
 * the channel, as the channel page does for its record. The form is made
 * from the stored programme only when that changes (its updatedAt), so a
 * refusal, or an event arriving while the operator types, loses nothing.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Api } from '../api.js';
import { ErrorText, Field } from '../components.js';
import { explain, fieldOf } from '../errors.js';
import { localTime, seconds } from '../format.js';
import { emptyEntry, formOfProgramme, inputIdOf, inputOfProgramme, type EntryForm, type ProgrammeForm } from '../programme-form.js';
import { channelProgramme, clearProgramme, programmeGuide, setProgramme, type ChannelProgrammeView, type GuideEntryView, type VodView } from '../queries.js';
import type { ChannelStore } from '../store.js';

const backMs = 3_600_000;
const aheadMs = 4 * 3_600_000;
/** The guide is read again at most this often while events come, ms. */
const minReadGapMs = 2000;

export function Programme({ api, store, channelId, operator, library }: { api: Api; store: ChannelStore; channelId: string; operator: boolean; library: VodView[] }) {
  // undefined: not read yet; null: the channel plays its playlist.
  const [stored, setStored] = useState<ChannelProgrammeView | null | undefined>(undefined);
  const [guide, setGuide] = useState<GuideEntryView[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const reload = async (): Promise<void> => {
    const now = Date.now();
    const [p, g] = await Promise.all([
      api.gql<{ virtualLive: { channelProgramme: ChannelProgrammeView | null } | null }>(channelProgramme, { id: channelId }),
      api.gql<{ programme: GuideEntryView[] }>(programmeGuide, { id: channelId, from: new Date(now - backMs).toISOString(), to: new Date(now + aheadMs).toISOString() }),
    ]);
    setStored(p.virtualLive?.channelProgramme ?? null);
    setGuide(g.programme);
    setError(null);
  };
  useEffect(() => {
    let lastAt = 0;
    let pending: ReturnType<typeof setTimeout> | null = null;
    const read = (): void => {
      lastAt = Date.now();
      void reload().catch((err: unknown) => setError(explain(err)));
    };
    read();
    const off = store.onEvent((e) => {
      if (e.id !== channelId || pending !== null) return;
      // Every item start is an event, each loop of a short file too, and the
      // guide's window can hold thousands of entries: one read per
      // `minReadGapMs` at most, the last event's always followed by one.
      pending = setTimeout(() => {
        pending = null;
        read();
      }, Math.max(0, lastAt + minReadGapMs - Date.now()));
    });
    return () => {
      off();
      if (pending !== null) clearTimeout(pending);
    };
  }, [channelId]);

  return (
    <section aria-labelledby="programme-title" class="programme">
      <h2 id="programme-title">Programme</h2>
      <ErrorText text={error} />
      {stored === null ? <p id="no-programme">No programme: the channel plays its playlist</p> : null}
      {guide !== null ? <Guide entries={guide} /> : null}
      {operator && stored !== undefined ? <ProgrammeEditor key={stored?.updatedAt ?? 'none'} api={api} channelId={channelId} stored={stored} library={library} onChange={() => void reload()} /> : null}
    </section>
  );
}

/**
 * What played, plays and is planned, in order; the entry on air marked. A
 * looping playlist of short files fills a window with up to the guide's 2000
 * entries, and the page re-renders at every event: only the latest played
 * and the next planned are shown, the rest counted.
 */
function Guide({ entries }: { entries: GuideEntryView[] }) {
  const played = entries.filter((e) => e.kind === 'PLAYED');
  const rest = entries.filter((e) => e.kind !== 'PLAYED');
  const shown = [...played.slice(-guideRows.played), ...rest.slice(0, guideRows.ahead)];
  const hidden = entries.length - shown.length;
  return (
    <div>
      <h3>Guide: the past hour and the next four</h3>
      {entries.length === 0 ? <p class="muted">Nothing in this window: the guide plans ahead only while the channel runs.</p> : null}
      <ol id="guide" class="guide">
        {shown.map((e) => (
          <li class={e.kind === 'ON_AIR' ? 'now-playing' : ''} data-kind={e.kind}>
            <time dateTime={e.start}>{localTime(e.start)}</time>–{e.stop !== null ? <time dateTime={e.stop}>{localTime(e.stop)}</time> : '…'} <strong>{e.title}</strong> {kindText[e.kind]}
            {e.breaks.length > 0 ? ` (ad breaks at ${e.breaks.map((b) => `${localTime(b.at)} for ${seconds(b.durationSeconds)}`).join(', ')})` : ''}
          </li>
        ))}
      </ol>
      {hidden > 0 ? <p class="muted">and {hidden} more entries in this window</p> : null}
    </div>
  );
}

/** Rows of the guide shown: the latest played, and from the one on air on. */
const guideRows = { played: 10, ahead: 25 } as const;

const kindText: Readonly<Record<GuideEntryView['kind'], string>> = {
  PLAYED: '(played)',
  ON_AIR: '(on air now)',
  PLANNED: '(planned)',
  LIVE: '(live)',
};

function ProgrammeEditor({ api, channelId, stored, library, onChange }: { api: Api; channelId: string; stored: ChannelProgrammeView | null; library: VodView[]; onChange: () => void }) {
  const [form, setForm] = useState<ProgrammeForm>(() => formOfProgramme(stored, Intl.DateTimeFormat().resolvedOptions().timeZone));
  const [error, setError] = useState<string | null>(null);
  const [errorAt, setErrorAt] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const ready = library.filter((v) => v.state === 'READY');
  const name = (id: string): string => library.find((v) => v.id === id)?.name ?? id;

  const send = (f: () => Promise<unknown>): void => {
    setBusy(true);
    setError(null);
    setErrorAt(null);
    f()
      .then(onChange)
      .catch((err: unknown) => {
        setError(explain(err));
        setErrorAt(inputIdOf(fieldOf(err)));
      })
      .finally(() => setBusy(false));
  };
  const setEntry = (i: number, patch: Partial<EntryForm>): void => setForm({ ...form, entries: form.entries.map((e, j) => (j === i ? { ...e, ...patch } : e)) });
  const move = (i: number, by: number): void => {
    const entries = [...form.entries];
    const [e] = entries.splice(i, 1);
    if (e !== undefined) entries.splice(i + by, 0, e);
    setForm({ ...form, entries });
  };
  const at = (id: string): string | null => (errorAt === id ? error : null);

  return (
    <form class="programme-editor" onSubmit={(e) => (e.preventDefault(), send(() => api.gql(setProgramme, { id: channelId, input: inputOfProgramme(form) })))}>
      <h3>{stored === null ? 'Create a programme' : 'Edit the programme'}</h3>
      <div class="inline-form">
        <Field id="pg-tz" label="Time zone (of times of day)" error={at('pg-tz')}>
          <input id="pg-tz" value={form.timeZone} onInput={(e) => setForm({ ...form, timeZone: e.currentTarget.value })} />
        </Field>
        <Field id="pg-daystart" label="Day starts at" error={at('pg-daystart')}>
          <input id="pg-daystart" type="time" step="1" value={form.dayStart} onInput={(e) => setForm({ ...form, dayStart: e.currentTarget.value })} />
        </Field>
        <Field id="pg-filler" label="Filler (plays wherever no entry does)" error={at('pg-filler')} {...(form.filler.length > 1 ? { hint: `a playlist: ${form.filler.map(name).join(', ')} (kept until you pick one file)` } : {})}>
          <select id="pg-filler" value={form.filler.length === 1 ? form.filler[0] : ''} onChange={(e) => setForm({ ...form, filler: e.currentTarget.value === '' ? [] : [e.currentTarget.value] })}>
            <option value="">choose…</option>
            {ready.map((v) => (
              <option value={v.id}>{v.name}</option>
            ))}
          </select>
        </Field>
      </div>
      <ol class="programme-entries">
        {form.entries.map((e, i) => (
          <EntryRow
            entry={e}
            i={i}
            count={form.entries.length}
            library={ready}
            errorOf={at}
            onPatch={(patch) => setEntry(i, patch)}
            onMove={(by) => move(i, by)}
            onRemove={() => setForm({ ...form, entries: form.entries.filter((_, j) => j !== i) })}
          />
        ))}
      </ol>
      <button type="button" onClick={() => setForm({ ...form, entries: [...form.entries, emptyEntry(form.entries.at(-1)?.startKind)] })}>
        Add entry
      </button>
      <button type="submit" class="primary" disabled={busy}>
        {busy ? 'Saving…' : 'Save programme'}
      </button>
      {stored !== null ? (
        <button type="button" class="danger" disabled={busy} onClick={() => confirm('Clear the programme? The channel goes back to its playlist after the item playing.') && send(() => api.gql(clearProgramme, { id: channelId }))}>
          Clear programme
        </button>
      ) : null}
      {errorAt === null ? <ErrorText text={error} /> : null}
    </form>
  );
}

function EntryRow({
  entry: e,
  i,
  count,
  library,
  errorOf,
  onPatch,
  onMove,
  onRemove,
}: {
  entry: EntryForm;
  i: number;
  count: number;
  library: VodView[];
  errorOf: (id: string) => string | null;
  onPatch: (patch: Partial<EntryForm>) => void;
  onMove: (by: number) => void;
  onRemove: () => void;
}) {
  const id = (part: string): string => `pg-entry-${i}-${part}`;
  const n = i + 1;
  return (
    <li class="programme-entry inline-form">
      <Field id={id('startkind')} label={`Entry ${n}: starts`}>
        <select id={id('startkind')} value={e.startKind} onChange={(ev) => onPatch({ startKind: ev.currentTarget.value as EntryForm['startKind'], start: '' })}>
          <option value="time">every day at</option>
          <option value="date">once, on</option>
        </select>
      </Field>
      <Field id={id('start')} label={e.startKind === 'time' ? 'Time of day (programme’s zone)' : 'Date and time (your time zone)'} error={errorOf(id('start'))}>
        <input id={id('start')} type={e.startKind === 'time' ? 'time' : 'datetime-local'} step="1" value={e.start} onInput={(ev) => onPatch({ start: ev.currentTarget.value })} />
      </Field>
      <Field id={id('kind')} label="Source">
        <select id={id('kind')} value={e.source} onChange={(ev) => onPatch({ source: ev.currentTarget.value as EntryForm['source'] })}>
          <option value="file">a library file</option>
          <option value="live">a live URL</option>
          {e.playlist.length > 0 ? <option value="playlist">its playlist</option> : null}
        </select>
      </Field>
      {e.source === 'file' ? (
        <Field id={id('source')} label="File" error={errorOf(id('source'))} {...(e.breaks.length > 0 ? { hint: `${e.breaks.length} ad break(s), kept` } : {})}>
          <select id={id('source')} value={e.vodResourceId} onChange={(ev) => onPatch({ vodResourceId: ev.currentTarget.value })}>
            <option value="">choose…</option>
            {library.map((v) => (
              <option value={v.id}>{v.name}</option>
            ))}
          </select>
        </Field>
      ) : e.source === 'live' ? (
        <Field id={id('source')} label="Live URL" error={errorOf(id('source'))} {...(e.maskedUrl !== null ? { hint: `stored as ${e.maskedUrl}: type it again to save` } : {})}>
          <input id={id('source')} type="url" value={e.sourceUrl} placeholder={e.maskedUrl ?? 'rtmp://…'} onInput={(ev) => onPatch({ sourceUrl: ev.currentTarget.value })} />
        </Field>
      ) : (
        <Field id={id('source')} label="Playlist (kept)" error={errorOf(id('source'))}>
          <output id={id('source')}>{e.playlist.map((p) => p.name).join(', ')}</output>
        </Field>
      )}
      <Field id={id('duration')} label="Duration, seconds" error={errorOf(id('duration'))}>
        <input id={id('duration')} type="number" min="1" step="any" value={e.durationSeconds} onInput={(ev) => onPatch({ durationSeconds: ev.currentTarget.value })} />
      </Field>
      <button type="button" disabled={i === 0} onClick={() => onMove(-1)} aria-label={`Move entry ${n} up`}>
        ↑
      </button>
      <button type="button" disabled={i === count - 1} onClick={() => onMove(1)} aria-label={`Move entry ${n} down`}>
        ↓
      </button>
      <button type="button" onClick={onRemove} aria-label={`Remove entry ${n}`}>
        Remove
      </button>
    </li>
  );
}
