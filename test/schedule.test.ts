/**
 * Schedules end to end: timed starts and stops through GraphQL with real
 * workers and origin, schedules kept across a restart with the grace period
 * for missed runs, and the claim that keeps two instances from firing one run.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startApp, type App } from '../src/app.js';
import { ChannelRepository } from '../src/channels/repository.js';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/client.js';
import { createLogger } from '../src/log.js';
import { nextRun, parseCron } from '../src/schedule/cron.js';
import { ScheduleRepository } from '../src/schedule/repository.js';
import { startTestApp, testEnv, type TestApp } from './helpers/app.js';
import { collect, gql, gqlErrorCode, gqlOk, wsClient } from './helpers/gql.js';
import { makeMp4 } from './helpers/media.js';
import { pollUntil } from './helpers/service.js';

interface Schedule {
  id: string;
  action: string;
  at: string | null;
  cron: string | null;
  timeZone: string | null;
  nextRunAt: string | null;
  lastRunAt: string | null;
  lastResult: string | null;
}

interface Channel {
  id: string;
  status: string;
  stopReason: string | null;
  schedules: Schedule[];
  nextScheduledAction: { action: string; at: string; scheduleId: string } | null;
}

const scheduleFields = 'id action at cron timeZone nextRunAt lastRunAt lastResult';
const channelFields = `id status stopReason schedules { ${scheduleFields} } nextScheduledAction { action at scheduleId }`;

async function addVodChannel(url: string, mediaRoot: string, name: string): Promise<string> {
  await makeMp4(mediaRoot, { name: 'clip', seconds: 3 });
  const vod = await gqlOk<{ registerVodResource: { id: string } }>(url, `mutation { registerVodResource(input: { name: "clip", path: "clip.mp4" }) { id } }`);
  const ch = await gqlOk<{ createVirtualLive: { id: string } }>(url, `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`, {
    i: { name, sourceType: 'VOD', vodResourceId: vod.registerVodResource.id },
  });
  return ch.createVirtualLive.id;
}

const addSchedule = async (url: string, virtualLiveId: string, input: Record<string, unknown>): Promise<Schedule> =>
  (await gqlOk<{ addSchedule: Schedule }>(url, `mutation($id: ID!, $i: ScheduleInput!) { addSchedule(virtualLiveId: $id, input: $i) { ${scheduleFields} } }`, { id: virtualLiveId, i: input })).addSchedule;

const getChannel = async (url: string, id: string): Promise<Channel> =>
  (await gqlOk<{ virtualLive: Channel }>(url, `query($id: ID!) { virtualLive(id: $id) { ${channelFields} } }`, { id })).virtualLive;

describe('schedules', () => {
  let t: TestApp;
  let channelId: string;

  before(async () => {
    t = await startTestApp();
    channelId = await addVodChannel(t.url, t.mediaRoot, 'timetable');
  });

  after(async () => {
    await t?.dispose();
  });

  it('a one-off start and stop a few seconds ahead start and stop the channel', async () => {
    const client = wsClient(t.url);
    const sub = collect<{ virtualLiveStatusChanged: { status: string; previous: string | null; at: string } }>(
      client,
      `subscription($id: ID) { virtualLiveStatusChanged(id: $id) { status previous at } }`,
      { id: channelId },
    );
    try {
      const startAt = new Date(Date.now() + 3_000);
      const stopAt = new Date(startAt.getTime() + 5_000);
      const start = await addSchedule(t.url, channelId, { action: 'START', at: startAt.toISOString() });
      // An offset other than Z is read as the same instant.
      const berlin = new Date(stopAt.getTime() + 3_600_000).toISOString().replace('Z', '+01:00');
      const stop = await addSchedule(t.url, channelId, { action: 'STOP', at: berlin });
      assert.equal(start.nextRunAt, startAt.toISOString());
      assert.equal(stop.nextRunAt, stopAt.toISOString());
      const before = await getChannel(t.url, channelId);
      assert.deepEqual(before.nextScheduledAction, { action: 'START', at: startAt.toISOString(), scheduleId: start.id });
      assert.equal(before.schedules.length, 2);
      assert.equal(before.status, 'STOPPED');

      await sub.until((evs) => evs.some((e) => e.virtualLiveStatusChanged.status === 'LIVING'), 20_000);
      const starting = sub.events.find((e) => e.virtualLiveStatusChanged.status === 'STARTING');
      assert.ok(starting);
      const startLagMs = Date.parse(starting.virtualLiveStatusChanged.at) - startAt.getTime();
      assert.ok(startLagMs >= 0, `started ${-startLagMs} ms early`);
      // The loop looks every 0.5 s (README: "within about half a second"); the rest is a busy machine's margin.
      assert.ok(startLagMs < 1_000, `started ${startLagMs} ms late`);
      const mid = await getChannel(t.url, channelId);
      assert.equal(mid.nextScheduledAction?.action, 'STOP');

      await sub.until((evs) => evs.some((e) => e.virtualLiveStatusChanged.status === 'STOPPED' && e.virtualLiveStatusChanged.previous !== 'STOPPED'), 20_000);
      const stopped = sub.events.find((e) => e.virtualLiveStatusChanged.status === 'STOPPED' && e.virtualLiveStatusChanged.previous !== 'STOPPED');
      assert.ok(stopped);
      const stopLagMs = Date.parse(stopped.virtualLiveStatusChanged.at) - stopAt.getTime();
      assert.ok(stopLagMs >= 0 && stopLagMs < 1_000, `stop lag ${stopLagMs} ms`);
      console.log(`scheduled start ${startLagMs} ms and stop ${stopLagMs} ms after their times`);

      const done = await pollUntil(() => getChannel(t.url, channelId), (c) => c.schedules.every((s) => s.lastResult !== 'running'), 5_000, 'results recorded');
      assert.equal(done.status, 'STOPPED');
      assert.equal(done.stopReason, `schedule ${stop.id}`);
      assert.equal(done.nextScheduledAction, null);
      const results = Object.fromEntries(done.schedules.map((s) => [s.action, s]));
      assert.equal(results['START']?.lastResult, 'started');
      assert.equal(results['STOP']?.lastResult, 'stopped');
      assert.equal(results['START']?.nextRunAt, null, 'a one-off runs once');
      assert.ok(results['START']?.lastRunAt);
      const text = await (await fetch(`http://127.0.0.1:${t.app.api.port}/metrics`)).text();
      assert.match(text, /^vlive_schedule_runs_total\{action="START",outcome="done"\} 1$/m);
      assert.match(text, /^vlive_schedule_runs_total\{action="STOP",outcome="done"\} 1$/m);
    } finally {
      sub.dispose();
      await client.dispose();
    }
  });

  it('a cron schedule shows its next run in its time zone, and can be removed', async () => {
    const s = await addSchedule(t.url, channelId, { action: 'START', cron: '0 9 * * MON-FRI', timeZone: 'Europe/Berlin' });
    assert.equal(s.cron, '0 9 * * MON-FRI');
    assert.equal(s.timeZone, 'Europe/Berlin');
    const expected = nextRun(parseCron('0 9 * * MON-FRI'), 'Europe/Berlin', Date.now());
    assert.ok(expected !== null);
    assert.equal(s.nextRunAt, new Date(expected).toISOString());
    // 09:00 in Berlin is 07:00 or 08:00 UTC, on a weekday.
    const next = new Date(s.nextRunAt ?? '');
    assert.ok([7, 8].includes(next.getUTCHours()) && next.getUTCMinutes() === 0, s.nextRunAt ?? '');
    assert.equal((await getChannel(t.url, channelId)).nextScheduledAction?.scheduleId, s.id);
    const removed = await gqlOk<{ removeSchedule: string }>(t.url, `mutation($id: ID!) { removeSchedule(id: $id) }`, { id: s.id });
    assert.equal(removed.removeSchedule, s.id);
    assert.equal(await gqlErrorCode(t.url, `mutation($id: ID!) { removeSchedule(id: $id) }`, { id: s.id }), 'NOT_FOUND');
  });

  it('refuses bad schedules with BAD_USER_INPUT, and adds nothing', async () => {
    const before = (await getChannel(t.url, channelId)).schedules.length;
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const bad: Record<string, unknown>[] = [
      { action: 'START', at: 'tomorrow at nine' },
      { action: 'START', at: '2030-13-01T00:00:00Z' },
      { action: 'START', at: '2030-02-30T00:00:00Z' },
      { action: 'START', at: '2030-01-01T00:00:00' },
      { action: 'START', at: new Date(Date.now() - 1_000).toISOString() },
      { action: 'START', cron: '61 * * * *' },
      { action: 'START', cron: '* * * *' },
      { action: 'START', cron: '0 0 30 2 *' },
      { action: 'START', cron: '0 9 * * *', timeZone: 'Mars/Olympus_Mons' },
      { action: 'START', at: future, cron: '0 9 * * *' },
      { action: 'START' },
      { action: 'START', at: future, timeZone: 'Europe/Berlin' },
    ];
    for (const input of bad) {
      const r = await gql(t.url, `mutation($id: ID!, $i: ScheduleInput!) { addSchedule(virtualLiveId: $id, input: $i) { id } }`, { id: channelId, i: input });
      assert.equal(r.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT', `${JSON.stringify(input)} → ${JSON.stringify(r.errors)}`);
      assert.ok(typeof r.errors?.[0]?.extensions?.['field'] === 'string', 'the error names the field');
    }
    assert.equal(
      await gqlErrorCode(t.url, `mutation($i: ScheduleInput!) { addSchedule(virtualLiveId: "nope", input: $i) { id } }`, { i: { action: 'START', at: future } }),
      'NOT_FOUND',
    );
    assert.equal((await getChannel(t.url, channelId)).schedules.length, before);
  });
});

describe('schedules across a restart', () => {
  let dir: string;
  let app: App | null = null;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vlive-schedule-'));
  });

  after(async () => {
    await app?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a run missed within the grace period still happens after a restart; an older one is skipped', async () => {
    const env = await testEnv(dir);
    const log = createLogger({ proc: 'schedule-test' });
    app = await startApp(loadConfig(env), log);
    const url = `http://127.0.0.1:${app.api.port}/graphql`;
    const late = await addVodChannel(url, app.config.mediaRoot, 'missed long ago');
    const recent = await addVodChannel(url, app.config.mediaRoot, 'missed just now');
    const t0 = Date.now();
    const old = await addSchedule(url, late, { action: 'START', at: new Date(t0 + 4_000).toISOString() });
    const fresh = await addSchedule(url, recent, { action: 'START', at: new Date(t0 + 14_000).toISOString() });
    await app.stop();
    app = null;
    // Down past both times: the first is 12 s late at the restart, the second 2 s plus start-up.
    await new Promise((r) => setTimeout(r, t0 + 16_000 - Date.now()));
    app = await startApp(loadConfig({ ...env, VLIVE_SCHEDULE_GRACE_SECONDS: '9' }), log);
    const live = await pollUntil(() => getChannel(url, recent), (c) => c.status === 'LIVING', 20_000, 'the recently missed start');
    const ran = live.schedules.find((s) => s.id === fresh.id);
    assert.ok(ran?.lastRunAt);
    const skipped = await getChannel(url, late);
    assert.equal(skipped.status, 'STOPPED');
    const s = skipped.schedules.find((x) => x.id === old.id);
    assert.match(s?.lastResult ?? '', /^skipped: due .* s late \(grace 9 s\)$/);
    assert.equal(s?.nextRunAt, null);
  });
});

describe('schedule claims', () => {
  it('two instances taking the same due run: exactly one gets it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vlive-claim-'));
    const db = await openDatabase(`file:${join(dir, 'vlive.db')}`);
    try {
      const ch = await new ChannelRepository(db.prisma).create({
        name: 'c', sourceType: 'ONLINE', vodResourceId: null, sourceUrl: 'rtmp://127.0.0.1/live/x', loop: true, connectTimeoutMs: 1000, pushTargets: [], playlist: [],
      });
      const repo = new ScheduleRepository(db.prisma);
      const due = new Date(Date.now() - 1_000);
      const s = await repo.create(ch.id, { action: 'START', at: due, cron: null, timeZone: null, nextRunAt: due });
      const [a, b] = await Promise.all([repo.claim(s.id, due, null, new Date(), 'running'), repo.claim(s.id, due, null, new Date(), 'running')]);
      assert.deepEqual([a, b].sort(), [false, true]);
      // A stale view (the run was moved on) claims nothing.
      assert.equal(await repo.claim(s.id, due, null, new Date(), 'running'), false);
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
