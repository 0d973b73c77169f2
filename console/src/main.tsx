/**
 * The console's shell: sign-in when the service has tokens, then the pages
 * behind hash routes (#/, #/channel/<id>, #/new, #/library, #/workers), so
 * the service serves one page and needs no route per view.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Api, ApiError, type Role, type ServiceInfo } from './api.js';
import { ErrorText } from './components.js';
import { explain } from './errors.js';
import { ChannelPage } from './pages/channel.js';
import { ChannelsPage } from './pages/channels.js';
import { CreatePage } from './pages/create.js';
import { LibraryPage } from './pages/library.js';
import { WorkersPage } from './pages/workers.js';
import { ChannelStore } from './store.js';

const api = new Api();

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = (): void => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function SignIn({ error, onToken }: { error: string | null; onToken: (token: string) => void }) {
  const [token, setToken] = useState('');
  return (
    <main class="signin">
      <h1>vlive console</h1>
      <form onSubmit={(e) => (e.preventDefault(), onToken(token.trim()))}>
        <label for="token">API token</label>
        <input id="token" type="password" autocomplete="off" value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        <small>Kept for this browser tab only (sessionStorage).</small>
        <ErrorText text={error} />
        <button type="submit" class="primary">
          Sign in
        </button>
      </form>
    </main>
  );
}

type Session = { kind: 'loading' } | { kind: 'signin'; error: string | null } | { kind: 'ready'; role: Role; store: ChannelStore } | { kind: 'failed'; error: string };

function App() {
  const [info, setInfo] = useState<ServiceInfo | null>(null);
  const [session, setSession] = useState<Session>({ kind: 'loading' });
  const hash = useHash();

  const open = async (i: ServiceInfo): Promise<void> => {
    if (i.tokens && api.token === null) return setSession({ kind: 'signin', error: null });
    try {
      const role = await api.role();
      const store = new ChannelStore(api);
      await store.start();
      setSession({ kind: 'ready', role, store });
    } catch (err) {
      if (err instanceof ApiError && err.code === 'UNAUTHENTICATED') {
        api.setToken(null);
        setSession({ kind: 'signin', error: explain(err) });
      } else setSession({ kind: 'failed', error: explain(err) });
    }
  };
  useEffect(() => {
    void api
      .info()
      .then((i) => (setInfo(i), open(i)))
      .catch((err: unknown) => setSession({ kind: 'failed', error: explain(err) }));
  }, []);

  if (session.kind === 'loading' || info === null) return <p class="loading">Loading…</p>;
  if (session.kind === 'failed') return <ErrorText text={session.error} />;
  if (session.kind === 'signin') {
    return (
      <SignIn
        error={session.error}
        onToken={(t) => {
          api.setToken(t);
          setSession({ kind: 'loading' });
          void open(info);
        }}
      />
    );
  }
  const operator = session.role === 'operator';
  const channel = /^#\/channel\/([A-Za-z0-9_-]+)$/.exec(hash)?.[1];
  const here = (h: string): 'page' | undefined => (hash === h || (h === '#/' && hash === '') ? 'page' : undefined);
  return (
    <>
      <header class="top">
        <a class="skip" href="#main">
          Skip to the content
        </a>
        <nav aria-label="Console">
          <strong>vlive</strong>
          <a href="#/" aria-current={here('#/')}>
            Channels
          </a>
          {operator ? (
            <a href="#/new" aria-current={here('#/new')}>
              New channel
            </a>
          ) : null}
          <a href="#/library" aria-current={here('#/library')}>
            VOD library
          </a>
          <a href="#/workers" aria-current={here('#/workers')}>
            Workers and nodes
          </a>
        </nav>
        <span class="role" id="role">
          {info.tokens ? `signed in (${session.role}${operator ? '' : ', read-only'})` : 'demo mode (no tokens)'}
        </span>
        {info.tokens ? (
          <button
            type="button"
            onClick={() => {
              session.store.dispose();
              api.setToken(null);
              setSession({ kind: 'signin', error: null });
            }}
          >
            Sign out
          </button>
        ) : null}
      </header>
      <main id="main" tabIndex={-1}>
        {channel !== undefined ? (
          <ChannelPage api={api} store={session.store} operator={operator} id={channel} />
        ) : hash === '#/new' && operator ? (
          <CreatePage api={api} />
        ) : hash === '#/library' ? (
          <LibraryPage api={api} operator={operator} />
        ) : hash === '#/workers' ? (
          <WorkersPage api={api} grafanaUrl={info.grafanaUrl} />
        ) : (
          <ChannelsPage api={api} store={session.store} operator={operator} />
        )}
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root !== null) render(<App />, root);
