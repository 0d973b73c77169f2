/**
 * What the programme service sends a channel's worker, and when
 * (src/schedule/programme-service.ts), with fakes for the channels and an
 * injected clock: on LIVING, again only when its window (from the hour) holds
 * other occurrences or the stored programme changed, never for a channel that had no programme, and
 * its removal once. The slots are the planner's, in wall-clock ms. Fakes
 * because this covers hours and days of a clock, which a real service cannot
 * be run for here; the real path, service to worker to receiver, is
 * programme-run.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StatusChange } from '../src/channels/events.js';
import type { ChannelProgramme, ChannelRecord } from '../src/channels/repository.js';
import { createLogger } from '../src/log.js';
import type { ProgrammeSpec } from '../src/pool/pipeline-spec.js';
import { ProgrammeService, programmeSpecOf } from '../src/schedule/programme-service.js';

const vod = (id: string) => ({ id, name: id, renditions: [] });
const hour = 3_600_000;

/** A stored daily programme: 'news' at 06:00 UTC for 30 min, filler 'f'. */
function programme(news = 'news'): ChannelProgramme {
  const item = { id: 'i1', entryId: 'e1', position: 0, vodResourceId: news, vodResource: vod(news) };
  return {
    id: 'p1',
    virtualLiveId: 'c1',
    timeZone: 'UTC',
    dayStartSecond: 0,
    updatedAt: new Date(0),
    fillers: [{ id: 'f1', programmeId: 'p1', position: 0, vodResourceId: 'f', vodResource: vod('f') }],
    entries: [{ id: 'e1', programmeId: 'p1', position: 0, start: '06:00', durationSeconds: 1800, items: [item] }],
  } as unknown as ChannelProgramme;
}

describe('programme service: what a worker gets, and when', () => {
  it('gives the occurrences from a day back to three days ahead, from the hour', () => {
    const now = Date.parse('2026-12-06T10:20:00Z');
    const spec = programmeSpecOf(programme(), now, () => assert.fail('a VOD entry pulls nothing'));
    assert.deepEqual(spec.filler, ['f']);
    assert.deepEqual(
      spec.slots.map((s) => [new Date(s.startMs).toISOString(), new Date(s.endMs).toISOString(), s.items]),
      ['05', '06', '07', '08', '09'].map((d) => [`2026-12-${d}T06:00:00.000Z`, `2026-12-${d}T06:30:00.000Z`, ['news']]),
    );
  });

  it('sends on LIVING, then only changes; a channel without a programme is left alone', async () => {
    let now = Date.parse('2026-12-06T10:20:00Z');
    const rec = { id: 'c1', status: 'LIVING', sourceType: 'VOD', programme: programme() } as unknown as ChannelRecord & { programme: ChannelProgramme | null };
    const plain = { id: 'c2', status: 'LIVING', sourceType: 'VOD', programme: null } as unknown as ChannelRecord;
    const sent: [string, ProgrammeSpec | null][] = [];
    const bus: { listener: ((c: StatusChange) => void) | null; remote: ((id: string) => void) | null } = { listener: null, remote: null };
    const service = new ProgrammeService({
      channels: {
        get: async (id) => (id === 'c1' ? rec : plain),
        list: async () => [rec, plain],
        sendProgramme: async (id, spec) => {
          sent.push([id, spec]);
          return true;
        },
        cutIn: () => null,
        tellOwner: () => false,
        onRemoteEdit: (l) => {
          bus.remote = l;
          return () => undefined;
        },
      },
      repo: { setProgramme: async () => undefined, getVods: async () => [] },
      events: {
        subscribe: (l) => {
          bus.listener = l;
          return () => undefined;
        },
      },
      log: createLogger(),
      now: () => now,
      refreshMs: 10,
    });
    service.start();
    const tick = () => new Promise((r) => setTimeout(r, 40));
    try {
      const living = (id: string) => ({ id, status: 'LIVING', previous: 'STARTING' }) as StatusChange;
      bus.listener?.(living('c1'));
      bus.listener?.(living('c2'));
      await tick();
      assert.deepEqual(sent.map(([id]) => id), ['c1'], 'on LIVING, the programme channel only');
      assert.equal(sent[0]?.[1]?.slots.length, 5);
      now += 30 * 60_000; // 10:50: same hour, same window
      await tick();
      assert.equal(sent.length, 1, 'nothing new: nothing sent');
      bus.remote?.('c1'); // another node stored an edit: sent now, even when the slots look the same here
      bus.remote?.('c2');
      await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(sent.map(([id]) => id), ['c1', 'c1'], 'a remote edit re-sends at once; a channel without a programme is left alone');
      sent.pop();
      now += hour; // 11:50: the window moved by an hour, but holds the same occurrences
      await tick();
      assert.equal(sent.length, 1, 'the same slots: nothing sent');
      now += 24 * hour; // a day on: a new occurrence at its end, one fewer at its start
      await tick();
      assert.equal(sent.length, 2, 'the window moved: sent again');
      assert.equal(new Date(sent[1]?.[1]?.slots.at(-1)?.startMs ?? 0).toISOString(), '2026-12-10T06:00:00.000Z');
      rec.programme = programme('weather'); // edited on another node
      await tick();
      assert.deepEqual(sent.at(-1)?.[1]?.slots[0]?.items, ['weather'], 'a stored edit reaches the worker');
      rec.programme = null; // cleared on another node
      await tick();
      assert.deepEqual(sent.at(-1), ['c1', null], 'its removal, once');
      const count = sent.length;
      await tick();
      assert.equal(sent.length, count, 'and nothing more');
    } finally {
      service.stop();
    }
  });
});
