/**
 * One channel: preview, URLs, playlist, recordings, schedules, reconnects,
 * a timeline of its status changes since the page opened, and its settings.
 * The record is read again whenever the subscription reports a change of
 * this channel, so nothing here polls.
 */
import { useEffect, useState } from 'preact/hooks';
import { startOrStop } from '../actions.js';
import type { Api } from '../api.js';
import { ChannelForm, formOf } from '../channel-form.js';
import { CopyUrl, ErrorText, Since, StatusBadge, useNow } from '../components.js';
import { explain } from '../errors.js';
import { bytes, localTime, seconds, span } from '../format.js';
import { PlaylistEditor } from '../playlist-editor.js';
import { Preview } from '../preview.js';
import { ApiError } from '../api.js';
import { channelDetail, deleteChannel, listVods, nowPlaying, updateChannel, type ChannelDetailView, type NowPlayingView, type StatusEvent, type VodView } from '../queries.js';
import type { ChannelStore } from '../store.js';
import { Programme } from './programme.js';
import { Schedules } from './schedules.js';

export function ChannelPage({ api, store, operator, id }: { api: Api; store: ChannelStore; operator: boolean; id: string }) {
  const [c, setC] = useState<ChannelDetailView | null>(null);
  const [missing, setMissing] = useState(false);
  const [library, setLibrary] = useState<VodView[]>([]);
  const [timeline, setTimeline] = useState<StatusEvent[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [formKey, setFormKey] = useState(0);
  // undefined: this service's API has no nowPlaying (yet); null: nothing on air.
  const [onAir, setOnAir] = useState<NowPlayingView | null | undefined>(null);

  const reload = async (): Promise<void> => {
    const d = await api.gql<{ virtualLive: ChannelDetailView | null }>(channelDetail, { id });
    setC(d.virtualLive);
    setMissing(d.virtualLive === null);
    if (d.virtualLive?.sourceType === 'VOD') {
      await api
        .gql<{ virtualLive: { nowPlaying: NowPlayingView | null } | null }>(nowPlaying, { id })
        .then((n) => setOnAir(n.virtualLive?.nowPlaying ?? null))
        .catch((err: unknown) => {
          if (err instanceof ApiError && err.code === 'GRAPHQL_VALIDATION_FAILED') setOnAir(undefined);
        });
    }
  };
  useEffect(() => {
    setTimeline([]);
    void reload().catch((err: unknown) => setError(explain(err)));
    void api.gql<{ vodResources: VodView[] }>(listVods).then((d) => setLibrary(d.vodResources));
    return store.onEvent((e) => {
      if (e.id !== id) return;
      setTimeline((t) => [e, ...t].slice(0, 200));
      void reload().catch(() => undefined);
    });
  }, [id]);

  if (missing) return <p>No channel has the id {id}.</p>;
  if (c === null) return <p>{error ?? 'Loading…'}</p>;
  const state = store.get(id);
  const running = c.desiredState === 'RUNNING';
  const act = (f: () => Promise<unknown>): void => {
    setBusy(true);
    setError(null);
    f()
      .then(() => reload())
      .catch((err: unknown) => setError(explain(err)))
      .finally(() => setBusy(false));
  };

  return (
    <article aria-labelledby="channel-title" class="channel-page">
      <header class="channel-head">
        <h1 id="channel-title">{c.name}</h1>
        <p>
          <StatusBadge status={c.status} /> {state !== undefined ? <Since since={state.since} exact={state.exact} /> : null} · wanted {c.desiredState} · source {c.activeSource} · {c.viewers} viewers
        </p>
        {operator ? (
          <div class="actions">
            <button type="button" id="channel-toggle" class={running ? 'stop' : 'start primary'} disabled={busy} onClick={() => act(() => startOrStop(api, store, id, running ? 'stop' : 'start'))}>
              {busy ? 'Working…' : running ? 'Stop' : 'Start'}
            </button>
            {!running && c.status !== 'LIVING' ? (
              <button
                type="button"
                class="danger"
                disabled={busy}
                onClick={() => {
                  if (!confirm(`Delete ${c.name}?`)) return;
                  act(async () => {
                    await api.gql(deleteChannel, { id });
                    store.remove(id);
                    location.hash = '#/';
                  });
                }}
              >
                Delete
              </button>
            ) : null}
          </div>
        ) : null}
        <ErrorText text={error} />
        {c.errorString !== null ? <p class="error-text">Error: {c.errorString}</p> : null}
        {c.warnings.map((w) => (
          <p class="warning-text">⚠ {w}</p>
        ))}
      </header>

      <div class="columns">
        <section aria-labelledby="preview-title">
          <h2 id="preview-title">Preview</h2>
          {c.playUrls.hls !== null ? <Preview api={api} channelId={c.id} living={c.status === 'LIVING'} touchEverySeconds={c.onDemand ? Math.max(1, c.touchDurationSeconds / 2) : null} /> : <p class="muted">This channel has HLS off: no preview (play it over RTMP).</p>}
          <CopyUrl label="RTMP" url={c.playUrls.rtmp} />
          {c.playUrls.hls !== null ? <CopyUrl label="HLS" url={c.playUrls.hls} /> : null}
        </section>

        <section aria-labelledby="health-title">
          <h2 id="health-title">Health</h2>
          <dl class="facts">
            <dt>Reconnect attempts</dt>
            <dd id="reconnect-attempts">{c.reconnectAttempts}</dd>
            <dt>Next attempt</dt>
            <dd>{localTime(c.nextAttemptAt)}</dd>
            <dt>Runs on</dt>
            <dd>
              {c.worker ?? '—'}
              {c.ownerNodeId !== null ? `, node ${c.ownerNodeId}` : ''}
            </dd>
            <dt>Started</dt>
            <dd>{localTime(c.startedAt)}</dd>
            <dt>Starts / restarts</dt>
            <dd>
              {c.startCount} / {c.restartCount}
            </dd>
            {c.stopReason !== null ? (
              <>
                <dt>Stopped by the service</dt>
                <dd>{c.stopReason}</dd>
              </>
            ) : null}
            <dt>Push targets</dt>
            <dd>
              {c.pushTargets.length === 0
                ? 'none'
                : c.pushTargets.map((t) => (
                    <div>
                      #{t.position} {t.url}: {t.status}, {bytes(t.bytesSent)} sent, {t.errors} errors{t.lastError !== null ? ` (${t.lastError})` : ''}
                    </div>
                  ))}
            </dd>
          </dl>
          <h3>Timeline since this page opened</h3>
          <ol class="timeline" id="timeline" aria-live="polite">
            {timeline.length === 0 ? <li class="muted">no change yet</li> : null}
            {timeline.map((e) => (
              <li>
                <time dateTime={e.at}>{localTime(e.at)}</time> {e.previous ?? '—'} → <StatusBadge status={e.status} />
                {e.status === e.previous ? ' (details)' : ''}
                {e.errorString !== null ? <small> {e.errorString}</small> : null}
              </li>
            ))}
          </ol>
        </section>
      </div>

      {c.sourceType === 'VOD' ? (
        <section aria-labelledby="playlist-title">
          <h2 id="playlist-title">Playlist</h2>
          <OnAir onAir={onAir} />
          <ProfileNote c={c} />
          {c.items.some((e) => e.live !== null || e.breaks.length > 0) ? (
            <WholeList c={c} playing={onAir?.index ?? null} />
          ) : operator ? (
            <PlaylistSave api={api} id={id} library={library} saved={c.playlist.map((p) => p.id)} nowPlaying={onAir?.index ?? null} onSaved={() => void reload()} />
          ) : (
            <ol>
              {c.playlist.map((p, i) => (
                <li class={onAir?.index === i ? 'now-playing' : ''}>
                  {p.name} ({seconds(p.durationSeconds)}){conformText(c, i)}{onAir?.index === i ? ' (playing now)' : ''}
                </li>
              ))}
            </ol>
          )}
        </section>
      ) : null}

      {c.sourceType === 'VOD' ? <Programme api={api} store={store} channelId={id} operator={operator} library={library} /> : null}

      <section aria-labelledby="recordings-title">
        <h2 id="recordings-title">Recordings</h2>
        {c.recordings.length === 0 ? <p class="muted">none{c.recording.enabled ? ' yet' : ' (recording is off)'}</p> : null}
        <ul class="recordings">
          {c.recordings.map((r) => (
            <li>
              <a href={r.url} download onClick={(e) => downloadWithToken(e, api, r.url)}>
                {localTime(r.startedAt)}
              </a>{' '}
              {seconds(r.durationSeconds)}, {bytes(r.sizeBytes)}
              {r.node !== null ? `, on ${r.node}` : ''}
            </li>
          ))}
        </ul>
      </section>

      <Schedules api={api} channelId={id} schedules={c.schedules} operator={operator} onChange={() => void reload()} />

      {operator ? (
        <section aria-labelledby="settings-title">
          <h2 id="settings-title">Settings</h2>
          <ChannelForm
            key={formKey}
            initial={formOf(c)}
            editing
            library={library}
            savedTargets={c.pushTargets.map((t) => t.url)}
            submitLabel="Save settings"
            onSubmit={async (input) => {
              await api.gql(updateChannel, { id, input });
              await reload();
              setFormKey((k) => k + 1);
            }}
          />
        </section>
      ) : null}
    </article>
  );
}

/** The item on air and where in it; item boundaries come as detail events, which reload the page's record. */
/** The output profile every item goes out in, if the channel has one. */
function ProfileNote({ c }: { c: ChannelDetailView }) {
  const p = c.outputProfile;
  if (p === null) return null;
  return (
    <p class="muted">
      Output profile: {p.width}×{p.height}, {p.frameRate} fps, {p.audioSampleRate / 1000} kHz, {p.audioChannels === 1 ? 'mono' : 'stereo'}; items that differ play from a conformed copy.
    </p>
  );
}

/** How a VOD item plays under the profile, when that is worth saying. */
function conformText(c: ChannelDetailView, vodPosition: number): string {
  const k = c.conform.find((x) => x.index === vodPosition);
  if (k === undefined || k.state === 'AS_IS') return '';
  if (k.state === 'CONFORMING') return ` (conforming, ${Math.round(k.progress * 100)} %)`;
  if (k.state === 'FAILED') return ` (conform failed: ${k.error ?? 'no reason given'})`;
  return k.state === 'READY' ? ' (conformed)' : ' (waiting to be conformed)';
}

/**
 * A list with live items or ad breaks, read only: the editor here knows VOD
 * items, and saving through it would drop the live ones and the breaks.
 * Such lists are edited through the API's items.
 */
function WholeList({ c, playing }: { c: ChannelDetailView; playing: number | null }) {
  let vodPosition = -1;
  return (
    <div>
      <ol id="whole-list">
        {c.items.map((e) => {
          if (e.live === null) vodPosition++;
          const here = playing === e.index;
          return (
            <li class={here ? 'now-playing' : ''}>
              {e.name} {e.live !== null ? `(live, ${seconds(e.live.durationSeconds)})` : conformText(c, vodPosition)}
              {e.breaks.length > 0 ? ` (ad breaks at ${e.breaks.map((b) => seconds(b.offsetSeconds)).join(', ')})` : ''}
              {here ? ' (playing now)' : ''}
            </li>
          );
        })}
      </ol>
      <p class="muted">This list has live items or ad breaks: edit it through the API (updateVirtualLive with items).</p>
    </div>
  );
}

function OnAir({ onAir }: { onAir: NowPlayingView | null | undefined }) {
  const now = useNow();
  if (onAir === undefined) return <p class="muted">This service's API does not say which item is playing (no nowPlaying field); the list is in play order.</p>;
  if (onAir === null) return <p class="muted">Nothing on air.</p>;
  const start = new Date(onAir.startedAt).getTime();
  const length = new Date(onAir.endsAt).getTime() - start;
  const at = Math.min(Math.max(0, now - start), length);
  return (
    <p id="now-playing">
      Playing now: <strong>{onAir.name}</strong> (item {onAir.index + 1}), {span(at)} of {span(length)}{' '}
      <progress max={length} value={at} aria-label="Position in the item playing now" />
    </p>
  );
}

function PlaylistSave({
  api,
  id,
  library,
  saved,
  nowPlaying: playing,
  onSaved,
}: {
  api: Api;
  id: string;
  library: VodView[];
  saved: string[];
  nowPlaying: number | null;
  onSaved: () => void;
}) {
  const [list, setList] = useState(saved);
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  useEffect(() => setList(saved), [saved.join(',')]);
  const changed = list.join(',') !== saved.join(',');
  return (
    <div>
      <PlaylistEditor idPrefix="pl" library={library} value={list} onChange={setList} nowPlaying={changed ? null : playing} />
      <button
        type="button"
        disabled={!changed}
        onClick={() => {
          setError(null);
          api
            .gql(updateChannel, { id, input: { playlist: list } })
            .then(() => (setNote('Saved: a running channel switches at its next item boundary.'), onSaved()))
            .catch((err: unknown) => setError(explain(err)));
        }}
      >
        Save playlist
      </button>
      <ErrorText text={error} />
      {note !== null ? <p class="muted">{note}</p> : null}
    </div>
  );
}

/** A link cannot carry the token: with one, fetch the file and save it from an object URL. */
function downloadWithToken(e: MouseEvent, api: Api, url: string): void {
  if (api.token === null) return;
  e.preventDefault();
  void api.objectUrl(url).then((objectUrl) => {
    if (objectUrl === null) return;
    const a = document.createElement('a');
    a.href = objectUrl;
    a.download = url.split('/').slice(-2).join('-');
    a.click();
    setTimeout(() => URL.revokeObjectURL(objectUrl), 60_000);
  });
}
