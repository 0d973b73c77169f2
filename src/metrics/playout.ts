/**
 * The playout series: which playlist item each running VOD channel has on
 * air, from the item-boundary events of the channel domain (a detail
 * StatusChange carrying `playout`). Labelled by channel id only; a channel
 * that stops loses its series, like the other per-channel series.
 */
import { Gauge, type Registry } from 'prom-client';
import type { StatusEvents } from '../channels/events.js';
import { isActive } from '../channels/status.js';

export class PlayoutMetrics {
  readonly #index: Gauge<'channel'>;
  readonly #unsubscribe: () => void;

  constructor(registry: Registry, events: StatusEvents) {
    this.#index = new Gauge({
      name: 'vlive_channel_playout_item_index',
      help: 'Position (0-based) in its playlist of the item a VOD channel has on air, set at each item boundary as the worker reports it.',
      labelNames: ['channel'] as const,
      registers: [registry],
    });
    this.#unsubscribe = events.subscribe((change) => {
      if (!isActive(change.status)) this.#index.remove(change.id);
      else if (change.playout !== undefined) this.#index.set({ channel: change.id }, change.playout.index);
    });
  }

  dispose(): void {
    this.#unsubscribe();
  }
}
