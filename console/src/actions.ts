/** Start and stop, shared by the channels list and the channel page. */
import type { Api } from './api.js';
import { startChannel, stopChannel, type ChannelRowView } from './queries.js';
import type { ChannelStore } from './store.js';

export async function startOrStop(api: Api, store: ChannelStore, id: string, action: 'start' | 'stop'): Promise<void> {
  if (action === 'start') {
    const d = await api.gql<{ startVirtualLive: ChannelRowView }>(startChannel, { id });
    store.put(d.startVirtualLive);
  } else {
    const d = await api.gql<{ stopVirtualLive: ChannelRowView }>(stopChannel, { id });
    store.put(d.stopVirtualLive);
  }
}
