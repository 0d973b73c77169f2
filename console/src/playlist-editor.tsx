/** A list of library items in play order: add, remove, move. Used by the create form and the channel page. */
import { useState } from 'preact/hooks';
import type { VodView } from './queries.js';

export function PlaylistEditor({
  idPrefix,
  library,
  value,
  onChange,
  nowPlaying,
}: {
  idPrefix: string;
  library: readonly VodView[];
  value: readonly string[];
  onChange: (ids: string[]) => void;
  /** Index of the item playing now, when the API gives it. */
  nowPlaying?: number | null;
}) {
  const [pick, setPick] = useState('');
  const name = (id: string): string => library.find((v) => v.id === id)?.name ?? id;
  const move = (i: number, by: number): void => {
    const next = [...value];
    const [item] = next.splice(i, 1);
    if (item !== undefined) next.splice(i + by, 0, item);
    onChange(next);
  };
  const ready = library.filter((v) => v.state === 'READY');
  return (
    <div class="playlist-editor">
      <ol>
        {value.map((id, i) => (
          <li class={nowPlaying === i ? 'now-playing' : ''}>
            <span>{name(id)}</span>
            {nowPlaying === i ? <strong> (playing now)</strong> : null}
            <button type="button" disabled={i === 0} onClick={() => move(i, -1)} aria-label={`Move ${name(id)} up`}>
              ↑
            </button>
            <button type="button" disabled={i === value.length - 1} onClick={() => move(i, 1)} aria-label={`Move ${name(id)} down`}>
              ↓
            </button>
            <button type="button" onClick={() => onChange(value.filter((_, j) => j !== i))} aria-label={`Remove ${name(id)}`}>
              Remove
            </button>
          </li>
        ))}
      </ol>
      <label for={`${idPrefix}-add`}>Add a file from the library</label>
      <select id={`${idPrefix}-add`} value={pick} onChange={(e) => setPick(e.currentTarget.value)}>
        <option value="">choose…</option>
        {ready.map((v) => (
          <option value={v.id}>
            {v.name} ({v.path})
          </option>
        ))}
      </select>
      <button type="button" disabled={pick === ''} onClick={() => (onChange([...value, pick]), setPick(''))}>
        Add
      </button>
    </div>
  );
}
