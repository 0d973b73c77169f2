/**
 * The channel's settings, one form for creating and for editing. Editing
 * sends only what changed: URLs come back from the API with their stream
 * keys masked, so a field left alone must not be sent back masked.
 */
import { useState } from 'preact/hooks';
import { Field } from './components.js';
import { explain, fieldOf } from './errors.js';
import { PlaylistEditor } from './playlist-editor.js';
import type { ChannelDetailView, VodView } from './queries.js';

export interface FormState {
  name: string;
  sourceType: 'VOD' | 'ONLINE';
  vodMode: 'file' | 'playlist';
  vodResourceId: string;
  playlist: string[];
  sourceUrl: string;
  backupUrl: string;
  slateVodResourceId: string;
  transcode: 'AUTO' | 'NEVER' | 'ALWAYS';
  loop: boolean;
  hls: boolean;
  /** One URL a line. Editing: empty keeps the saved targets unless clearTargets. */
  pushTargets: string;
  clearTargets: boolean;
  recordingEnabled: boolean;
  segmentSeconds: string;
  retainHours: string;
  snapshotEnabled: boolean;
  intervalSeconds: string;
  onDemand: boolean;
  touchDurationSeconds: string;
  idleDelaySeconds: string;
}

export const blankForm: FormState = {
  name: '',
  sourceType: 'VOD',
  vodMode: 'file',
  vodResourceId: '',
  playlist: [],
  sourceUrl: '',
  backupUrl: '',
  slateVodResourceId: '',
  transcode: 'AUTO',
  loop: true,
  hls: true,
  pushTargets: '',
  clearTargets: false,
  recordingEnabled: false,
  segmentSeconds: '60',
  retainHours: '24',
  snapshotEnabled: false,
  intervalSeconds: '10',
  onDemand: false,
  touchDurationSeconds: '60',
  idleDelaySeconds: '10',
};

export function formOf(c: ChannelDetailView): FormState {
  return {
    ...blankForm,
    name: c.name,
    sourceType: c.sourceType,
    vodMode: c.playlist.length > 1 ? 'playlist' : 'file',
    vodResourceId: c.playlist[0]?.id ?? '',
    playlist: c.playlist.map((p) => p.id),
    sourceUrl: c.sourceUrl ?? '',
    backupUrl: c.backupUrl ?? '',
    slateVodResourceId: c.slate?.id ?? '',
    transcode: c.transcode,
    loop: c.loop,
    hls: c.hls,
    recordingEnabled: c.recording.enabled,
    segmentSeconds: String(c.recording.segmentSeconds),
    retainHours: String(c.recording.retainHours),
    snapshotEnabled: c.snapshot.enabled,
    intervalSeconds: String(c.snapshot.intervalSeconds),
    onDemand: c.onDemand,
    touchDurationSeconds: String(c.touchDurationSeconds),
    idleDelaySeconds: String(c.idleDelaySeconds),
  };
}

/**
 * A number as typed, for the API to judge: its range checks give the
 * messages, and text that is no number is sent as it is, so GraphQL refuses
 * it rather than the form quietly dropping it. Empty means "not given".
 */
const num = (s: string): number | string | null => (s.trim() === '' ? null : Number.isNaN(Number(s)) ? s : Number(s));

const lines = (s: string): string[] =>
  s
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');

/** The input for createVirtualLive, or the changes for updateVirtualLive when `saved` is given. */
export function inputOf(f: FormState, saved: FormState | null): Record<string, unknown> {
  const all: Record<string, unknown> = {
    name: f.name,
    loop: f.loop,
    hls: f.hls,
    onDemand: f.onDemand,
    touchDurationSeconds: num(f.touchDurationSeconds),
    idleDelaySeconds: num(f.idleDelaySeconds),
    recording: { enabled: f.recordingEnabled, segmentSeconds: num(f.segmentSeconds), retainHours: num(f.retainHours) },
    snapshot: { enabled: f.snapshotEnabled, intervalSeconds: num(f.intervalSeconds) },
  };
  if (f.sourceType === 'VOD') {
    if (f.vodMode === 'file') all['vodResourceId'] = f.vodResourceId === '' ? null : f.vodResourceId;
    else all['playlist'] = f.playlist;
  } else {
    all['sourceUrl'] = f.sourceUrl.trim() === '' ? null : f.sourceUrl.trim();
    all['transcode'] = f.transcode;
    if (f.backupUrl.trim() !== '' || saved !== null) all['backupUrl'] = f.backupUrl.trim();
  }
  if (f.slateVodResourceId !== '' || saved !== null) all['slateVodResourceId'] = f.slateVodResourceId;
  if (saved === null) {
    all['sourceType'] = f.sourceType;
    all['pushTargets'] = lines(f.pushTargets);
    if (all['backupUrl'] === '') delete all['backupUrl'];
    if (all['slateVodResourceId'] === '') delete all['slateVodResourceId'];
    return all;
  }
  const before = inputOf(saved, null);
  const changes: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(all)) {
    if (k === 'sourceType' || k === 'pushTargets') continue;
    if (JSON.stringify(v) !== JSON.stringify(before[k] ?? (k === 'backupUrl' || k === 'slateVodResourceId' ? '' : undefined))) changes[k] = v;
  }
  if (f.clearTargets) changes['pushTargets'] = [];
  else if (lines(f.pushTargets).length > 0) changes['pushTargets'] = lines(f.pushTargets);
  return changes;
}

const fieldId = (field: string): string => `cf-${field.replace(/\./g, '-')}`;

export function ChannelForm({
  initial,
  editing,
  library,
  savedTargets,
  submitLabel,
  onSubmit,
}: {
  initial: FormState;
  editing: boolean;
  library: readonly VodView[];
  /** Editing: the saved push targets, masked. */
  savedTargets?: readonly string[];
  submitLabel: string;
  onSubmit: (input: Record<string, unknown>) => Promise<void>;
}) {
  const [f, setF] = useState<FormState>(initial);
  const [error, setError] = useState<string | null>(null);
  const [errorField, setErrorField] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = <K extends keyof FormState>(k: K, v: FormState[K]): void => setF((old) => ({ ...old, [k]: v }));
  const errFor = (field: string): string | null => (errorField === field ? error : null);
  const text = (k: keyof FormState, field: string, label: string, opts: { type?: string; hint?: string } = {}) => (
    <Field id={fieldId(field)} label={label} error={errFor(field)} {...(opts.hint !== undefined ? { hint: opts.hint } : {})}>
      <input
        id={fieldId(field)}
        type={opts.type ?? 'text'}
        value={String(f[k])}
        aria-invalid={errorField === field}
        onInput={(e) => set(k, e.currentTarget.value as never)}
      />
    </Field>
  );
  const check = (k: keyof FormState, id: string, label: string) => (
    <div class="check">
      <input id={`cf-${id}`} type="checkbox" checked={Boolean(f[k])} onChange={(e) => set(k, e.currentTarget.checked as never)} />
      <label for={`cf-${id}`}>{label}</label>
    </div>
  );
  const ready = library.filter((v) => v.state === 'READY');
  const vodSelect = (k: 'vodResourceId' | 'slateVodResourceId', field: string, label: string, none: string) => (
    <Field id={fieldId(field)} label={label} error={errFor(field)}>
      <select id={fieldId(field)} value={f[k]} aria-invalid={errorField === field} onChange={(e) => set(k, e.currentTarget.value)}>
        <option value="">{none}</option>
        {ready.map((v) => (
          <option value={v.id}>
            {v.name} ({v.path})
          </option>
        ))}
      </select>
    </Field>
  );

  return (
    <form
      class="channel-form"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        setBusy(true);
        setError(null);
        setErrorField(null);
        onSubmit(inputOf(f, editing ? initial : null))
          .catch((err: unknown) => {
            setError(explain(err));
            setErrorField(fieldOf(err));
          })
          .finally(() => setBusy(false));
      }}
    >
      {text('name', 'name', 'Name')}
      {editing ? (
        <p>Source type: {f.sourceType}</p>
      ) : (
        <fieldset>
          <legend>Source</legend>
          <div class="check">
            <input id="cf-kind-file" type="radio" name="kind" checked={f.sourceType === 'VOD' && f.vodMode === 'file'} onChange={() => setF((o) => ({ ...o, sourceType: 'VOD', vodMode: 'file' }))} />
            <label for="cf-kind-file">A VOD file</label>
          </div>
          <div class="check">
            <input id="cf-kind-playlist" type="radio" name="kind" checked={f.sourceType === 'VOD' && f.vodMode === 'playlist'} onChange={() => setF((o) => ({ ...o, sourceType: 'VOD', vodMode: 'playlist' }))} />
            <label for="cf-kind-playlist">A playlist from the library</label>
          </div>
          <div class="check">
            <input id="cf-kind-online" type="radio" name="kind" checked={f.sourceType === 'ONLINE'} onChange={() => set('sourceType', 'ONLINE')} />
            <label for="cf-kind-online">An online URL</label>
          </div>
        </fieldset>
      )}
      {f.sourceType === 'VOD' && f.vodMode === 'file' && !editing ? vodSelect('vodResourceId', 'vodResourceId', 'File', 'choose a file…') : null}
      {f.sourceType === 'VOD' && f.vodMode === 'playlist' && !editing ? (
        <fieldset>
          <legend>Playlist</legend>
          <PlaylistEditor idPrefix="cf-playlist" library={library} value={f.playlist} onChange={(ids) => set('playlist', ids)} />
        </fieldset>
      ) : null}
      {f.sourceType === 'ONLINE' ? (
        <>
          {text('sourceUrl', 'sourceUrl', 'Source URL', { hint: 'rtmp(s)://, rtsp://, http(s)://….m3u8, HTTP-FLV, srt://' + (editing ? '; shown with its key masked: leave it to keep it' : '') })}
          {text('backupUrl', 'backupUrl', 'Backup URL (optional)', editing ? { hint: 'empty removes the backup' } : {})}
          <Field id={fieldId('transcode')} label="Transcode" error={errFor('transcode')}>
            <select id={fieldId('transcode')} value={f.transcode} onChange={(e) => set('transcode', e.currentTarget.value as FormState['transcode'])}>
              <option value="AUTO">AUTO: copy H.264 + AAC, transcode other codecs</option>
              <option value="NEVER">NEVER: copy only</option>
              <option value="ALWAYS">ALWAYS: decode and encode</option>
            </select>
          </Field>
        </>
      ) : null}
      {vodSelect('slateVodResourceId', 'slateVodResourceId', 'Slate (optional)', 'no slate')}
      {check('loop', 'loop', 'Loop the file or playlist')}
      {check('hls', 'hls', 'HLS at the origin')}
      <Field id={fieldId('pushTargets')} label="Push targets, one rtmp(s):// URL a line" error={errFor('pushTargets')} hint={editing ? `Saved: ${savedTargets?.length ? savedTargets.join(', ') : 'none'}. Type new ones to replace them.` : 'stream keys are masked once saved'}>
        <textarea id={fieldId('pushTargets')} rows={2} value={f.pushTargets} onInput={(e) => set('pushTargets', e.currentTarget.value)} />
      </Field>
      {editing ? check('clearTargets', 'clear-targets', 'Remove every push target') : null}
      <fieldset>
        <legend>Recording</legend>
        {check('recordingEnabled', 'recording-enabled', 'Record MP4 segments')}
        {text('segmentSeconds', 'recording.segmentSeconds', 'Segment length, seconds', { type: 'number' })}
        {text('retainHours', 'recording.retainHours', 'Keep for, hours', { type: 'number' })}
      </fieldset>
      <fieldset>
        <legend>Snapshots</legend>
        {check('snapshotEnabled', 'snapshot-enabled', 'Take snapshots')}
        {text('intervalSeconds', 'snapshot.intervalSeconds', 'Every, seconds', { type: 'number' })}
      </fieldset>
      <fieldset>
        <legend>On demand</legend>
        {check('onDemand', 'ondemand', 'Start with the first viewer, stop when idle')}
        {text('touchDurationSeconds', 'touchDurationSeconds', 'Idle after, seconds', { type: 'number' })}
        {text('idleDelaySeconds', 'idleDelaySeconds', 'Then stop after, seconds', { type: 'number' })}
      </fieldset>
      {error !== null && (errorField === null || document.getElementById(fieldId(errorField)) === null) ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <button type="submit" class="primary" disabled={busy}>
        {busy ? 'Saving…' : submitLabel}
      </button>
    </form>
  );
}
