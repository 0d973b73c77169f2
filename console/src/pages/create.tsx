/** A new channel from the form; on success the console opens its page, where its URLs show masked. */
import { useEffect, useState } from 'preact/hooks';
import type { Api } from '../api.js';
import { blankForm, ChannelForm } from '../channel-form.js';
import { createChannel, listVods, type VodView } from '../queries.js';

export function CreatePage({ api }: { api: Api }) {
  const [library, setLibrary] = useState<VodView[] | null>(null);
  useEffect(() => void api.gql<{ vodResources: VodView[] }>(listVods).then((d) => setLibrary(d.vodResources)), []);
  if (library === null) return <p>Loading the library…</p>;
  return (
    <section aria-labelledby="create-title">
      <h1 id="create-title">New channel</h1>
      <ChannelForm
        initial={blankForm}
        editing={false}
        library={library}
        submitLabel="Create channel"
        onSubmit={async (input) => {
          const d = await api.gql<{ createVirtualLive: { id: string } }>(createChannel, { input });
          location.hash = `#/channel/${d.createVirtualLive.id}`;
        }}
      />
    </section>
  );
}
