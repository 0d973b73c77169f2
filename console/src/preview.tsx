/**
 * The HLS preview: hls.js on the service's /hls/ proxy (same origin, with the
 * token), muted so that browsers let it autoplay. Built again when the
 * channel turns LIVING, since a new publish session starts a new playlist.
 * The origin does not see HLS players, so while the preview plays an
 * on-demand channel it touches it (README's On demand asks that of HLS
 * players): the channel does not idle out under the operator's eyes.
 */
import Hls from 'hls.js/light';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Api } from './api.js';
import { touchChannel } from './queries.js';

export function Preview({ api, channelId, living, touchEverySeconds }: { api: Api; channelId: string; living: boolean; touchEverySeconds: number | null }) {
  const video = useRef<HTMLVideoElement>(null);
  const [note, setNote] = useState<string | null>(null);
  // Bumped to build the player again after a fatal error (see below).
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    const el = video.current;
    if (!living || el === null) {
      setNote(living ? null : 'The preview plays while the channel is LIVING.');
      return;
    }
    setNote(null);
    const src = `/hls/${channelId}.m3u8`;
    if (!Hls.isSupported()) {
      setNote('This browser has no Media Source Extensions: copy the HLS URL into a player.');
      return;
    }
    const hls = new Hls({
      // A worker would need blob: in script-src; the main thread is enough for one preview.
      enableWorker: false,
      lowLatencyMode: false,
      xhrSetup: (xhr) => {
        for (const [k, v] of Object.entries(api.authHeaders())) xhr.setRequestHeader(k, v);
      },
    });
    let retry: ReturnType<typeof setTimeout> | null = null;
    hls.on(Hls.Events.ERROR, (_e, data) => {
      if (!data.fatal) return;
      // The origin writes the playlist only once the first fragment is complete,
      // a second or two after LIVING, and hls.js does not retry a 404: start over.
      setNote(`Preview waiting for the stream (${data.details})`);
      retry ??= setTimeout(() => setAttempt((a) => a + 1), 1000);
    });
    hls.loadSource(src);
    hls.attachMedia(el);
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      setNote(null);
      void el.play().catch(() => setNote('Press play to start the preview.'));
    });
    return () => {
      if (retry !== null) clearTimeout(retry);
      hls.destroy();
    };
  }, [channelId, living, attempt]);
  useEffect(() => {
    if (!living || touchEverySeconds === null) return;
    const t = setInterval(() => void api.gql(touchChannel, { id: channelId }).catch(() => undefined), touchEverySeconds * 1000);
    return () => clearInterval(t);
  }, [channelId, living, touchEverySeconds]);
  return (
    <div class="preview">
      <video ref={video} id="preview" muted autoplay playsInline controls aria-label="Preview of the channel (HLS, muted)" />
      {note !== null ? <p class="muted">{note}</p> : null}
    </div>
  );
}
