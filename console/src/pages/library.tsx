/**
 * The VOD library: register a file under the media root, see its probe, and
 * follow a transcode. PREPARING has no event, so while a file prepares (and
 * only then) the page reads the library every second for its progress.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Api } from '../api.js';
import { Field, Table } from '../components.js';
import { explain, fieldOf } from '../errors.js';
import { bytes, localTime, seconds } from '../format.js';
import { listVods, registerVod, type VodView } from '../queries.js';

export function LibraryPage({ api, operator }: { api: Api; operator: boolean }) {
  const [vods, setVods] = useState<VodView[] | null>(null);
  const [name, setName] = useState('');
  const [path, setPath] = useState('');
  const [transcode, setTranscode] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [errorField, setErrorField] = useState<string | null>(null);
  const load = (): Promise<void> => api.gql<{ vodResources: VodView[] }>(listVods).then((d) => setVods(d.vodResources));
  useEffect(() => void load(), []);
  const preparing = vods?.some((v) => v.state === 'PREPARING') ?? false;
  useEffect(() => {
    if (!preparing) return;
    const t = setInterval(() => void load(), 1000);
    return () => clearInterval(t);
  }, [preparing]);

  return (
    <section aria-labelledby="library-title">
      <h1 id="library-title">VOD library</h1>
      {operator ? (
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            setError(null);
            setErrorField(null);
            api
              .gql(registerVod, { input: { name, path, ...(transcode ? { transcode: {} } : {}) } })
              .then(() => (setName(''), setPath(''), load()))
              .catch((err: unknown) => (setError(explain(err)), setErrorField(fieldOf(err))));
          }}
        >
          <Field id="vod-name" label="Name" error={errorField === 'name' ? error : null}>
            <input id="vod-name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </Field>
          <Field id="vod-path" label="Path under the media root" error={errorField !== 'name' ? error : null}>
            <input id="vod-path" value={path} placeholder="films/intro.mp4" onInput={(e) => setPath(e.currentTarget.value)} />
          </Field>
          <div class="check">
            <input id="vod-transcode" type="checkbox" checked={transcode} onChange={(e) => setTranscode(e.currentTarget.checked)} />
            <label for="vod-transcode">Transcode once even if it could be copied</label>
          </div>
          <button type="submit" class="primary">
            Register
          </button>
        </form>
      ) : null}
      {vods === null ? <p>Loading…</p> : null}
      <Table columns={['Name', 'State', 'Video', 'Audio', 'Duration', 'Size', 'Copyable', 'Registered']}>
        {(vods ?? []).map((v) => (
          <tr data-vod={v.id}>
            <td data-label="Name">
              {v.name}
              <small class="muted"> {v.path}</small>
            </td>
            <td data-label="State">
              {v.state}
              {v.state === 'PREPARING' ? (
                <progress max={1} value={v.prepareProgress} aria-label={`Transcode of ${v.name}`}>
                  {Math.round(v.prepareProgress * 100)} %
                </progress>
              ) : null}
              {v.state === 'PREPARING' ? ` ${Math.round(v.prepareProgress * 100)} %` : null}
              {v.prepareError !== null ? <p class="error-text">{v.prepareError}</p> : null}
            </td>
            <td data-label="Video">
              {v.videoCodec === null ? 'none' : `${v.videoCodec}${v.videoProfile !== null ? ` ${v.videoProfile}` : ''} ${v.width ?? '?'}×${v.height ?? '?'}${v.frameRate !== null ? ` ${v.frameRate.toFixed(2)} fps` : ''}`}
            </td>
            <td data-label="Audio">{v.audioCodec === null ? 'none' : `${v.audioCodec} ${v.audioSampleRate ?? '?'} Hz ×${v.audioChannels ?? '?'}`}</td>
            <td data-label="Duration">{seconds(v.durationSeconds)}</td>
            <td data-label="Size">
              {bytes(v.sizeBytes)} ({v.container})
            </td>
            <td data-label="Copyable">{v.copyable ? 'yes' : 'no: transcoded'}</td>
            <td data-label="Registered">{localTime(v.createdAt)}</td>
          </tr>
        ))}
      </Table>
    </section>
  );
}
