/** Small pieces every page uses: status in colour and words, live clocks, authenticated images, form fields. */
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { Api } from './api.js';
import type { LiveStatus } from './queries.js';
import { span } from './format.js';

/** Symbols as well as colours, so the status reads without colour vision. */
const statusMarks: Readonly<Record<LiveStatus, string>> = {
  LIVING: '●',
  STARTING: '◐',
  RECONNECTING: '↻',
  ERROR: '✕',
  STOPPED: '■',
};

export function StatusBadge({ status }: { status: LiveStatus }) {
  return (
    <span class={`status status-${status}`} data-status={status}>
      <span aria-hidden="true">{statusMarks[status]} </span>
      {status}
    </span>
  );
}

/** Re-renders its user every `periodMs`, for "how long ago" figures. */
export function useNow(periodMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), periodMs);
    return () => clearInterval(t);
  }, [periodMs]);
  return now;
}

export function Since({ since, exact }: { since: number; exact: boolean }) {
  const now = useNow();
  const text = span(now - since);
  return <span title={new Date(since).toLocaleString()}>{exact ? `for ${text}` : `for ≥ ${text}`}</span>;
}

/**
 * An image of the service's (a snapshot): fetched with the token, since an
 * <img> cannot send one, and shown from an object URL. `version` changes
 * when a new snapshot was taken.
 */
export function AuthImage({ api, path, version, alt }: { api: Api; path: string; version: string; alt: string }) {
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    let url: string | null = null;
    let live = true;
    void api.objectUrl(`${path}?v=${encodeURIComponent(version)}`).then((u) => {
      if (live) {
        url = u;
        setSrc(u);
      } else if (u !== null) URL.revokeObjectURL(u);
    });
    return () => {
      live = false;
      if (url !== null) URL.revokeObjectURL(url);
    };
  }, [path, version]);
  return src === null ? <span class="thumb thumb-empty">no picture</span> : <img class="thumb" src={src} alt={alt} />;
}

/** A labelled input row; `error` shows under it and is tied to it for screen readers. */
export function Field({ id, label, error, hint, children }: { id: string; label: string; error?: string | null; hint?: string; children: ComponentChildren }) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {children}
      {hint !== undefined ? <small id={`${id}-hint`}>{hint}</small> : null}
      {error ? (
        <p class="error" id={`${id}-error`} role="alert">
          {error}
        </p>
      ) : null}
    </div>
  );
}

export function ErrorText({ text }: { text: string | null }) {
  return text === null ? null : (
    <p class="error" role="alert">
      {text}
    </p>
  );
}

/** A URL with a button that copies it. */
export function CopyUrl({ label, url }: { label: string; url: string }) {
  const [done, setDone] = useState(false);
  return (
    <div class="copy">
      <span class="copy-label">{label}</span>
      <code>{url}</code>
      <button
        type="button"
        onClick={() => {
          void navigator.clipboard
            ?.writeText(url)
            .then(() => setDone(true))
            .catch(() => setDone(false));
        }}
        aria-label={`Copy the ${label} URL`}
      >
        {done ? 'Copied' : 'Copy'}
      </button>
    </div>
  );
}

/** A table that scrolls sideways at 1280 px when it must and becomes cards at a phone's width (cells carry data-label). */
export function Table({ columns, className, children }: { columns: readonly (string | null)[]; className?: string; children: ComponentChildren }) {
  return (
    <div class="table-wrap">
      <table class={className}>
        <thead>
          <tr>
            {columns.map((c) => (c === null ? null : <th scope="col">{c}</th>))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
