/**
 * Every channel, live from the store. Paged (50 rows) rather than
 * virtualised: a page is a plain table that keyboard and screen reader
 * users walk as usual, and 50 rows re-render in well under a frame however
 * many channels there are (README has the figure measured with 500).
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { Api } from '../api.js';
import { startOrStop } from '../actions.js';
import { AuthImage, Since, StatusBadge, Table } from '../components.js';
import { explain } from '../errors.js';
import { bitrate } from '../format.js';
import type { LiveStatus } from '../queries.js';
import type { ChannelState, ChannelStore } from '../store.js';

const pageSize = 50;
const statuses: LiveStatus[] = ['LIVING', 'STARTING', 'RECONNECTING', 'ERROR', 'STOPPED'];

function useStore(store: ChannelStore): number {
  const [version, setVersion] = useState(0);
  useEffect(() => store.onChange(() => setVersion((v) => v + 1)), [store]);
  return version;
}

export function ChannelsPage({ api, store, operator }: { api: Api; store: ChannelStore; operator: boolean }) {
  const version = useStore(store);
  const [status, setStatus] = useState<LiveStatus | ''>('');
  const [name, setName] = useState('');
  const [page, setPage] = useState(0);
  const [busy, setBusy] = useState<ReadonlySet<string>>(new Set());
  const [errors, setErrors] = useState<ReadonlyMap<string, string>>(new Map());

  const shown = useMemo(() => {
    const needle = name.trim().toLowerCase();
    return store
      .all()
      .filter((c) => (status === '' || c.row.status === status) && (needle === '' || c.row.name.toLowerCase().includes(needle) || c.row.id.includes(needle)))
      .sort((a, b) => a.row.name.localeCompare(b.row.name) || a.row.id.localeCompare(b.row.id));
  }, [version, status, name]);
  const pages = Math.max(1, Math.ceil(shown.length / pageSize));
  const current = Math.min(page, pages - 1);
  const rows = shown.slice(current * pageSize, (current + 1) * pageSize);

  const act = (id: string, action: 'start' | 'stop'): void => {
    setBusy((b) => new Set([...b, id]));
    setErrors((e) => new Map([...e].filter(([k]) => k !== id)));
    startOrStop(api, store, id, action)
      .catch((err: unknown) => setErrors((e) => new Map([...e, [id, explain(err)]])))
      .finally(() => setBusy((b) => new Set([...b].filter((k) => k !== id))));
  };

  return (
    <section aria-labelledby="channels-title">
      <h1 id="channels-title">Channels</h1>
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label for="filter-name">Name</label>
        <input id="filter-name" type="search" value={name} onInput={(e) => (setName(e.currentTarget.value), setPage(0))} />
        <label for="filter-status">Status</label>
        <select id="filter-status" value={status} onChange={(e) => (setStatus(e.currentTarget.value as LiveStatus | ''), setPage(0))}>
          <option value="">all</option>
          {statuses.map((s) => (
            <option value={s}>{s}</option>
          ))}
        </select>
        <span class="count" aria-live="polite">
          {store.loaded ? `${shown.length} of ${store.all().length} channels` : 'loading…'}
        </span>
      </form>
      {store.error !== null ? <p class="error">Live updates: {store.error}</p> : null}
      <Table className="channels" columns={['Picture', 'Channel', 'Status', 'Wanted', 'Source', 'Viewers', 'Problems', 'Push targets', 'Runs on', operator ? 'Control' : null]}>
        {rows.map((c) => (
          <Row key={c.row.id} api={api} c={c} operator={operator} busy={busy.has(c.row.id)} error={errors.get(c.row.id) ?? null} act={act} />
        ))}
      </Table>
      {pages > 1 ? (
        <nav class="pager" aria-label="Pages of channels">
          <button type="button" disabled={current === 0} onClick={() => setPage(current - 1)}>
            Previous
          </button>
          <span>
            page {current + 1} of {pages}
          </span>
          <button type="button" disabled={current >= pages - 1} onClick={() => setPage(current + 1)}>
            Next
          </button>
        </nav>
      ) : null}
    </section>
  );
}

function Row({
  api,
  c,
  operator,
  busy,
  error,
  act,
}: {
  api: Api;
  c: ChannelState;
  operator: boolean;
  busy: boolean;
  error: string | null;
  act: (id: string, action: 'start' | 'stop') => void;
}) {
  const r = c.row;
  const running = r.desiredState === 'RUNNING';
  return (
    <tr data-channel={r.id}>
      <td data-label="Picture">
        {r.snapUrl !== null ? <AuthImage api={api} path={r.snapUrl} version={r.snapTakenAt ?? ''} alt={`Latest picture of ${r.name}`} /> : <span class="thumb thumb-empty">no picture</span>}
      </td>
      <td data-label="Channel">
        <a href={`#/channel/${r.id}`}>{r.name}</a>
        <small class="muted">{r.sourceType}{r.onDemand ? ', on demand' : ''}</small>
      </td>
      <td data-label="Status">
        <StatusBadge status={r.status} /> <Since since={c.since} exact={c.exact} />
        {r.status === 'RECONNECTING' ? <small class="muted">attempt {r.reconnectAttempts}</small> : null}
      </td>
      <td data-label="Wanted">{r.desiredState}</td>
      <td data-label="Source">{r.activeSource}</td>
      <td data-label="Viewers">{r.viewers}</td>
      <td data-label="Problems">
        {r.errorString !== null ? <p class="error-text">{r.errorString}</p> : null}
        {r.warnings.map((w) => (
          <p class="warning-text">⚠ {w}</p>
        ))}
        {r.snapStale ? <p class="warning-text">⚠ snapshot is stale</p> : null}
        {error !== null ? <p class="error" role="alert">{error}</p> : null}
      </td>
      <td data-label="Push targets">
        {r.pushTargets.length === 0 ? <span class="muted">none</span> : null}
        <ul class="targets">
          {r.pushTargets.map((t) => (
            <li>
              #{t.position} {t.status}, {bitrate(c.bitrates.get(t.position) ?? null)}, {t.errors} errors
              {t.lastError !== null ? <small class="muted"> ({t.lastError})</small> : null}
            </li>
          ))}
        </ul>
      </td>
      <td data-label="Runs on">
        {r.worker ?? '—'}
        {r.ownerNodeId !== null ? <small class="muted"> node {r.ownerNodeId}</small> : null}
      </td>
      {operator ? (
        <td data-label="Control">
          <button type="button" class={running ? 'stop' : 'start'} disabled={busy} onClick={() => act(r.id, running ? 'stop' : 'start')} aria-label={`${running ? 'Stop' : 'Start'} ${r.name}`}>
            {busy ? '…' : running ? 'Stop' : 'Start'}
          </button>
        </td>
      ) : null}
    </tr>
  );
}
