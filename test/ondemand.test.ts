/**
 * On-demand channels end to end: the app in-process with real workers and a
 * real nginx-rtmp origin, whose on_play / on_play_done reach the service.
 * ffprobe and ffmpeg are the players; nothing is mocked.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app.js';
import { collect, gqlErrorCode, gqlOk, wsClient } from './helpers/gql.js';
import { makeMp4, probePackets } from './helpers/media.js';
import { pollUntil } from './helpers/service.js';

interface Channel {
  id: string;
  status: string;
  desiredState: string;
  startCount: number;
  startedAt: string | null;
  viewers: number;
  touchedAt: string | null;
  stopReason: string | null;
  onDemand: boolean;
  touchDurationSeconds: number;
  idleDelaySeconds: number;
  playUrls: { rtmp: string };
}

interface Change {
  virtualLiveStatusChanged: { status: string; previous: string | null; viewers: number; at: string };
}

/** A move into STOPPED, not a detail event of a stopped channel (a viewer waiting before the start). */
const stopsIn = (e: Change): boolean => e.virtualLiveStatusChanged.status === 'STOPPED' && e.virtualLiveStatusChanged.previous !== 'STOPPED';

const fields = 'id status desiredState startCount startedAt viewers touchedAt stopReason onDemand touchDurationSeconds idleDelaySeconds playUrls { rtmp }';

describe('on-demand channels', () => {
  let t: TestApp;
  let vodId: string;

  before(async () => {
    t = await startTestApp();
    await makeMp4(t.mediaRoot, { name: 'clip', seconds: 4 });
    const d = await gqlOk<{ registerVodResource: { id: string } }>(t.url, `mutation { registerVodResource(input: { name: "clip", path: "clip.mp4" }) { id } }`);
    vodId = d.registerVodResource.id;
  });

  after(async () => {
    await t?.dispose();
  });

  const create = async (extra: Record<string, unknown>): Promise<Channel> =>
    (
      await gqlOk<{ createVirtualLive: Channel }>(t.url, `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { ${fields} } }`, {
        i: { name: 'on demand', sourceType: 'VOD', vodResourceId: vodId, onDemand: true, ...extra },
      })
    ).createVirtualLive;
  const get = async (id: string): Promise<Channel> =>
    (await gqlOk<{ virtualLive: Channel }>(t.url, `query($id: ID!) { virtualLive(id: $id) { ${fields} } }`, { id })).virtualLive;
  const metric = async (line: RegExp): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${t.app.api.port}/metrics`)).text();
    const m = line.exec(text);
    return m?.[1] === undefined ? NaN : Number(m[1]);
  };

  it('the first RTMP player starts the channel and gets media; it stops within touchDuration + delay after the player leaves', async () => {
    const ch = await create({ touchDurationSeconds: 2, idleDelaySeconds: 2 });
    assert.equal(ch.status, 'STOPPED');
    assert.equal(ch.onDemand, true);
    const client = wsClient(t.url);
    const sub = collect<Change>(client, `subscription($id: ID) { virtualLiveStatusChanged(id: $id) { status previous viewers at } }`, { id: ch.id });
    try {
      await new Promise((r) => setTimeout(r, 200));
      const asked = Date.now();
      // The player connects to a stream nobody publishes; nginx holds it until the channel is up.
      const report = await probePackets(ch.playUrls.rtmp, 2);
      const left = Date.now();
      assert.equal(report.video?.codecName, 'h264');
      assert.equal(report.audio?.codecName, 'aac');
      assert.ok((report.video?.dts.length ?? 0) > 25, 'about 2 s of video');
      const living = sub.events.find((e) => e.virtualLiveStatusChanged.status === 'LIVING' && e.virtualLiveStatusChanged.previous === 'STARTING');
      assert.ok(living, `no LIVING event: ${JSON.stringify(sub.events)}`);
      const waitedMs = Date.parse(living.virtualLiveStatusChanged.at) - asked;
      console.log(`first player: channel LIVING ${waitedMs} ms after the player asked; player done after ${left - asked} ms`);
      // The first viewer waits for the start (README: about 0.6 s for a VOD channel, ffprobe's own
      // start and connect included), with a busy machine's margin ...
      assert.ok(waitedMs < 1_500, `waited ${waitedMs} ms`);
      // ... and not longer: its 2 s of media came at once, at the pace the stream is published (paceProblem's margin).
      const livingAt = Date.parse(living.virtualLiveStatusChanged.at);
      assert.ok(left - livingAt < 2_000 + 800, `the player finished ${left - livingAt} ms after LIVING`);
      assert.ok(sub.events.some((e) => e.virtualLiveStatusChanged.viewers === 1), 'a viewer count of 1 was published');

      await sub.until((evs) => evs.some(stopsIn), 20_000);
      const stopped = sub.events.find(stopsIn);
      assert.ok(stopped);
      const afterLeaveMs = Date.parse(stopped.virtualLiveStatusChanged.at) - left;
      console.log(`idle stop ${afterLeaveMs} ms after the player left (touchDuration 2 s + delay 2 s)`);
      // Not before touchDuration + delay (on_play_done arrives just before ffprobe's exit is seen) ...
      assert.ok(afterLeaveMs >= 3_500, `stopped too early: ${afterLeaveMs} ms`);
      // ... and within it, plus a check period, the stop itself and a busy machine's margin.
      assert.ok(afterLeaveMs <= 4_000 + 4_000, `stopped too late: ${afterLeaveMs} ms`);
      const after = await get(ch.id);
      assert.equal(after.status, 'STOPPED');
      assert.equal(after.desiredState, 'STOPPED');
      assert.equal(after.viewers, 0);
      assert.equal(after.startCount, 1);
      assert.match(after.stopReason ?? '', /^idle: no viewer or touch for 2 s, then 2 s delay$/);
      assert.ok(after.touchedAt !== null);
      assert.equal(await metric(/^vlive_ondemand_starts_total\{trigger="viewer"\} (\S+)$/m), 1);
      assert.equal(await metric(/^vlive_ondemand_idle_stops_total (\S+)$/m), 1);
    } finally {
      sub.dispose();
      await client.dispose();
    }
  });

  it('a player keeps the channel up, and one that reconnects within the delay does not restart it', async () => {
    // touchDuration 1 s, delay 4 s: the reconnect below comes after the delay timer was armed.
    const ch = await create({ touchDurationSeconds: 1, idleDelaySeconds: 4 });
    const client = wsClient(t.url);
    const sub = collect<Change>(client, `subscription($id: ID) { virtualLiveStatusChanged(id: $id) { status previous viewers at } }`, { id: ch.id });
    try {
      await new Promise((r) => setTimeout(r, 200));
      // A player that stays 7 s, longer than touchDuration + delay.
      const player = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-rw_timeout', '30000000', '-i', ch.playUrls.rtmp, '-t', '7', '-f', 'null', '-'], { stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => player.once('exit', (code) => resolve(code)));
      try {
        const watching = await pollUntil(() => get(ch.id), (c) => c.viewers === 1 && c.status === 'LIVING', 20_000, 'one viewer on a LIVING channel');
        assert.equal(watching.startCount, 1);
        assert.equal(await metric(new RegExp(`^vlive_channel_viewers\\{channel="${ch.id}"\\} (\\S+)$`, 'm')), 1);
        assert.equal(await exited, 0);
      } finally {
        player.kill('SIGKILL');
      }
      const left = Date.now();
      const first = await get(ch.id);
      assert.equal(first.status, 'LIVING', 'a channel with a viewer is not stopped');
      await pollUntil(() => get(ch.id), (c) => c.viewers === 0, 10_000, 'the viewer gone');
      // Past touchDuration and a check period: the idle stop is armed now, and due at left + 5 s.
      await new Promise((r) => setTimeout(r, 2_500 - (Date.now() - left)));
      const again = await probePackets(ch.playUrls.rtmp, 1);
      assert.equal(again.video?.codecName, 'h264');
      const back = await get(ch.id);
      assert.equal(back.status, 'LIVING');
      assert.equal(back.startCount, 1, 'the reconnecting viewer did not cause a restart');
      assert.equal(back.startedAt, first.startedAt);
      assert.ok(!sub.events.some(stopsIn), `no stop in between: ${JSON.stringify(sub.events)}`);
      // Once everyone is gone, it does stop.
      await sub.until((evs) => evs.some(stopsIn), 20_000);
      assert.match((await get(ch.id)).stopReason ?? '', /^idle/);
    } finally {
      sub.dispose();
      await client.dispose();
    }
  });

  it('touchVirtualLive starts an on-demand channel, returns it LIVING, and it stops once idle', async () => {
    const ch = await create({ touchDurationSeconds: 1, idleDelaySeconds: 1 });
    const d = await gqlOk<{ touchVirtualLive: Channel }>(t.url, `mutation($id: ID!) { touchVirtualLive(id: $id) { ${fields} } }`, { id: ch.id });
    assert.equal(d.touchVirtualLive.status, 'LIVING');
    assert.equal(d.touchVirtualLive.stopReason, null);
    assert.ok(d.touchVirtualLive.touchedAt !== null);
    // Touching a running channel keeps it; it does not start again.
    const again = await gqlOk<{ touchVirtualLive: Channel }>(t.url, `mutation($id: ID!) { touchVirtualLive(id: $id) { ${fields} } }`, { id: ch.id });
    assert.equal(again.touchVirtualLive.startCount, 1);
    const stopped = await pollUntil(() => get(ch.id), (c) => c.status === 'STOPPED', 15_000, 'the idle stop');
    assert.match(stopped.stopReason ?? '', /^idle/);
    assert.equal(await metric(/^vlive_ondemand_starts_total\{trigger="touch"\} (\S+)$/m), 1);
  });

  it('an operator stop is not undone, and an operator start of an on-demand channel still idles out', async () => {
    const ch = await create({ touchDurationSeconds: 1, idleDelaySeconds: 1 });
    const started = await gqlOk<{ startVirtualLive: Channel }>(t.url, `mutation($id: ID!) { startVirtualLive(id: $id) { ${fields} } }`, { id: ch.id });
    assert.equal(started.startVirtualLive.status, 'LIVING');
    const stopped = await gqlOk<{ stopVirtualLive: Channel }>(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { ${fields} } }`, { id: ch.id });
    assert.equal(stopped.stopVirtualLive.status, 'STOPPED');
    assert.equal(stopped.stopVirtualLive.stopReason, null, 'an operator stop has no service reason');
    await gqlOk(t.url, `mutation($id: ID!) { startVirtualLive(id: $id) { id } }`, { id: ch.id });
    const idled = await pollUntil(() => get(ch.id), (c) => c.status === 'STOPPED', 15_000, 'the idle stop after an operator start');
    assert.match(idled.stopReason ?? '', /^idle/);
  });

  it('refuses bad on-demand settings, changing nothing', async () => {
    const ch = await create({});
    assert.equal(ch.touchDurationSeconds, 60);
    assert.equal(ch.idleDelaySeconds, 10);
    for (const input of [{ touchDurationSeconds: -1 }, { touchDurationSeconds: 0 }, { idleDelaySeconds: -5 }, { idleDelaySeconds: 3601 }, { touchDurationSeconds: 1.5 }]) {
      const code = await gqlErrorCode(t.url, `mutation($id: ID!, $i: UpdateVirtualLiveInput!) { updateVirtualLive(id: $id, input: $i) { id } }`, { id: ch.id, i: input });
      assert.equal(code, 'BAD_USER_INPUT', JSON.stringify(input));
    }
    const same = await get(ch.id);
    assert.equal(same.touchDurationSeconds, 60);
    assert.equal(same.idleDelaySeconds, 10);
    const updated = await gqlOk<{ updateVirtualLive: Channel }>(t.url, `mutation($id: ID!) { updateVirtualLive(id: $id, input: { onDemand: false, idleDelaySeconds: 0 }) { ${fields} } }`, { id: ch.id });
    assert.equal(updated.updateVirtualLive.onDemand, false);
    assert.equal(updated.updateVirtualLive.idleDelaySeconds, 0);
    assert.equal(await gqlErrorCode(t.url, `mutation { touchVirtualLive(id: "nope") { id } }`), 'NOT_FOUND');
  });

  it('the origin notification endpoint takes only its secret path', async () => {
    const ch = await create({});
    const conf = await readFile(join(t.dir, 'origin', 'nginx.conf'), 'utf8');
    const url = /on_play (http:\/\/127\.0\.0\.1:\d+\/origin-notify\/[0-9a-f]{32});/.exec(conf)?.[1];
    assert.ok(url, 'nginx.conf has an on_play URL with a secret path');
    const body = new URLSearchParams({ call: 'play', app: 'live', name: ch.id, clientid: '99999' }).toString();
    const wrong = await fetch(url.replace(/[0-9a-f]{32}$/, '0'.repeat(32)), { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(wrong.status, 404);
    const get404 = await fetch(url);
    assert.equal(get404.status, 404, 'only POST');
    await new Promise((r) => setTimeout(r, 300));
    const still = await get(ch.id);
    assert.equal(still.status, 'STOPPED');
    assert.equal(still.viewers, 0);
    // The API port has no such route: the endpoint is a loopback listener of its own.
    const onApi = await fetch(t.url.replace('/graphql', new URL(url).pathname), { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(onApi.status, 404);
    assert.notEqual(new URL(url).port, String(t.app.api.port));
  });
});
