/**
 * Which service events become which webhook events. Status changes come from
 * the one status event stream (channels/events.ts), published by the node
 * that wrote them, so in a cluster each is written to the outbox once.
 *
 *   STATUS_CHANGED      a channel's status moved (details-only events are not sent)
 *   ERROR               it moved to ERROR or RECONNECTING: something failed
 *   ITEM_STARTED        a VOD channel's item went on air (playout)
 *   RECORDING_FINISHED  a recording segment was closed
 *   CUT_IN_STARTED      a live cut-in's source went on air
 *   CUT_IN_ENDED        a live cut-in ended (a return to the playlist)
 *   CUE_POINT           a VOD channel's cue point (an item start or an ad break) reached the origin
 */
import type { StatusChange, StatusEvents } from '../channels/events.js';
import type { Logger } from '../log.js';
import type { WebhookEvent } from './outbox.js';

export interface WebhookSink {
  enqueue(event: WebhookEvent, data: Record<string, unknown>): Promise<void>;
}

/** Feeds status events to the outbox; returns the unsubscribe. */
export function feedStatusEvents(events: StatusEvents, sink: WebhookSink, log: Logger): () => void {
  const send = (event: WebhookEvent, data: Record<string, unknown>): void =>
    void sink.enqueue(event, data).catch((err: unknown) => log.warn('webhook event not written', { event, err: String(err) }));
  // A playout event also comes when only what follows changed (a skip asked for): one ITEM_STARTED per item start.
  const lastStart = new Map<string, number>();
  const inCutIn = new Set<string>();
  return events.subscribe((c: StatusChange) => {
    const channel = { channelId: c.id, status: c.status, previous: c.previous, errorString: c.errorString, activeSource: c.activeSource, at: c.at.toISOString() };
    const p = c.playout;
    if (p !== undefined && lastStart.get(c.id) !== p.startedAt.getTime()) {
      lastStart.set(c.id, p.startedAt.getTime());
      send('ITEM_STARTED', { channelId: c.id, itemId: p.itemId, index: p.index, startedAt: p.startedAt.toISOString(), endsAt: p.endsAt.toISOString(), loop: p.loop });
    }
    const q = c.cuePoint;
    if (q !== undefined) {
      const { at, ...rest } = q;
      send('CUE_POINT', { channelId: c.id, ...rest, at: at.toISOString() });
    }
    if (c.cutIn !== undefined) {
      // A change of its source (the slate, back) is only a detail: the start and the end are events.
      if (c.cutIn === null) send('CUT_IN_ENDED', { channelId: c.id, at: c.at.toISOString() });
      else if (c.cutIn.source === 'ON_AIR' && !inCutIn.has(c.id)) send('CUT_IN_STARTED', { channelId: c.id, url: c.cutIn.url, startedAt: c.cutIn.startedAt.toISOString() });
      if (c.cutIn === null) inCutIn.delete(c.id);
      else inCutIn.add(c.id);
    }
    if (c.status !== 'LIVING') {
      lastStart.delete(c.id);
      inCutIn.delete(c.id);
    }
    if (c.status === c.previous) return;
    send('STATUS_CHANGED', channel);
    if (c.status === 'ERROR' || c.status === 'RECONNECTING') send('ERROR', channel);
  });
}
