/** The viewer book: notifications, and /stat putting right what they missed, in each channel's origin application. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChannelRecord } from '../src/channels/repository.js';
import type { Logger } from '../src/log.js';
import { OnDemand } from '../src/ondemand/manager.js';
import { parsePlayForm } from '../src/ondemand/notify.js';
import { ViewerBook } from '../src/ondemand/viewers.js';

describe('viewer book', () => {
  it('counts players by client id; a repeated play or an unknown play_done changes nothing', () => {
    const b = new ViewerBook();
    assert.equal(b.add('ch', '7', 0), true);
    assert.equal(b.add('ch', '7', 0), false);
    assert.equal(b.add('ch', '8', 0), true);
    assert.equal(b.count('ch'), 2);
    assert.equal(b.remove('ch', '99'), false);
    assert.equal(b.remove('ch', '7'), true);
    assert.equal(b.count('ch'), 1);
    assert.equal(b.count('other'), 0);
  });

  it('takes /stat as the truth, except for a player announced moments ago', () => {
    const b = new ViewerBook();
    b.add('a', '1', 1_000); // its play_done was lost
    b.add('a', '2', 9_500); // announced; nginx lists it only after our answer
    const changed = b.reconcile(new Map([['a', []], ['b', ['5', '6']]]), 10_000, 5_000);
    assert.deepEqual(changed.sort(), ['a', 'b']);
    assert.equal(b.count('a'), 1, 'the recent announcement stays');
    assert.equal(b.count('b'), 2, 'players only /stat saw are counted');
    // Later, /stat still does not list player 2: it is gone; the channel leaves the book.
    assert.deepEqual(b.reconcile(new Map([['b', ['5', '6']]]), 20_000, 5_000), ['a']);
    assert.deepEqual(b.entries(), [['b', 2]]);
  });
});

describe('viewers by origin application', () => {
  const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
  // Only what the on-demand manager reads of a channel; the rest of a record plays no part here.
  const channel = (id: string, hls: boolean) => ({ id, hls, onDemand: true, desiredState: 'STOPPED', status: 'STOPPED' }) as unknown as ChannelRecord;

  function manager(channels: ChannelRecord[], players: (hls: boolean) => Map<string, string[]>) {
    const viewers = new ViewerBook();
    const started: string[] = [];
    const published: (() => void)[] = [];
    const od = new OnDemand({
      channels: {
        get: async (id) => channels.find((c) => c.id === id) ?? null,
        start: async (id) => {
          started.push(id);
          return channels.find((c) => c.id === id) ?? assert.fail(id);
        },
        stopFor: async () => null,
        publishViewers: async () => published.shift()?.(),
        runsHere: () => true,
        mayRunOnDemand: () => true,
      },
      repo: { touch: async () => undefined, listOnDemandRunning: async () => [], streams: async () => channels.map(({ id, hls }) => ({ id, hls })) },
      viewers,
      players: async (hls) => players(hls),
      log: quiet,
    });
    /** Resolves at the n-th published viewer count from now, with the book's count of `id` then. */
    const countAtPublish = (n: number, id: string): Promise<number> =>
      new Promise((resolve) => {
        for (let i = 1; i < n; i++) published.push(() => undefined);
        published.push(() => resolve(viewers.count(id)));
      });
    return { od, viewers, started, countAtPublish };
  }

  it('a play notification names our application, and so the hls choice', () => {
    const form = (app: string): URLSearchParams => new URLSearchParams({ call: 'play', app, name: 'ch', clientid: '7' });
    assert.deepEqual(parsePlayForm(form('live')), { kind: 'play', stream: 'ch', clientId: '7', hls: true });
    assert.deepEqual(parsePlayForm(form('live-nohls')), { kind: 'play', stream: 'ch', clientId: '7', hls: false });
    assert.equal(parsePlayForm(form('other')), null);
  });

  it('a player in the other application is no viewer and starts nothing', async () => {
    const { od, started, countAtPublish } = manager([channel('plain', false)], () => new Map());
    // Notifications of one stream are handled in order, and each one that changes the
    // count publishes it: the second count published comes from the play_done, after
    // the player in the wrong application was handled.
    const count = countAtPublish(2, 'plain');
    od.onPlayEvent({ kind: 'play', stream: 'plain', clientId: '2', hls: false });
    od.onPlayEvent({ kind: 'play', stream: 'plain', clientId: '1', hls: true });
    od.onPlayEvent({ kind: 'play_done', stream: 'plain', clientId: '2', hls: false });
    assert.equal(await count, 0, 'the player in the wrong application was not counted');
    assert.deepEqual(started, ['plain'], 'only the player in its own application started it');
  });

  it('/stat is read in the application each channel publishes to', async () => {
    const { od, viewers } = manager([channel('plain', false), channel('segmented', true)], (hls) =>
      hls ? new Map([['plain', ['1']], ['segmented', ['2', '3']], ['stranger', ['9']]]) : new Map([['plain', ['4', '5', '6']], ['segmented', ['7']]]),
    );
    await od.reconcileViewers();
    assert.equal(viewers.count('plain'), 3);
    assert.equal(viewers.count('segmented'), 2);
    assert.equal(viewers.count('stranger'), 0, 'not a channel');
  });
});
