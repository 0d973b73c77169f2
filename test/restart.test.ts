/**
 * A restart after kill -9 tells the truth from its first answer: a channel
 * the API calls LIVING is publishing at the origin at that moment, and every
 * channel wanted RUNNING is LIVING again within a bound (README: about 1.5 s
 * for 20 channels on this machine; asserted at 10 s, twice the 5 s
 * target, as the suite shares a busy 2-core machine).
 *
 * Real service processes (node dist/src/main.js), real workers and nginx;
 * the origin's /stat is the witness, and ffprobe reads one channel at the end.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { rtmpApp } from '../src/origin/config.js';
import { parseStat } from '../src/origin/stat.js';
import { repoPath } from '../src/paths.js';
import { testEnv } from './helpers/app.js';
import { gqlOk } from './helpers/gql.js';
import { makeMp4, probePackets } from './helpers/media.js';
import { eventually, isAlive, spawnService } from './helpers/service.js';

const channels = 20;

describe('a service restarted after kill -9', () => {
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vlive-restart-'));
    env = { ...(await testEnv(dir)), VLIVE_LOG_LEVEL: 'warn' };
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it(`never reports LIVING for a stream that is not at the origin, and has all ${channels} LIVING again soon`, async () => {
    const first = await spawnService(env);
    let pids: number[] = [];
    let ids: string[] = [];
    try {
      await mkdir(join(dir, 'media', 'clips'), { recursive: true });
      await makeMp4(join(dir, 'media', 'clips'), { name: 'small', seconds: 4, width: 320, height: 240 });
      const vod = await gqlOk<{ registerVodResource: { id: string } }>(first.url, 'mutation { registerVodResource(input: { name: "small", path: "clips/small.mp4" }) { id } }');
      for (let i = 0; i < channels; i++) {
        const d = await gqlOk<{ createVirtualLive: { id: string } }>(first.url, 'mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }', {
          i: { name: `ch${i}`, sourceType: 'VOD', vodResourceId: vod.registerVodResource.id, loop: true },
        });
        ids.push(d.createVirtualLive.id);
      }
      const started = await Promise.all(ids.map((id) => gqlOk<{ startVirtualLive: { status: string } }>(first.url, 'mutation($id: ID!) { startVirtualLive(id: $id) { status } }', { id })));
      assert.deepEqual(new Set(started.map((s) => s.startVirtualLive.status)), new Set(['LIVING']));
      const w = await gqlOk<{ workers: { pid: number }[] }>(first.url, '{ workers { pid } }');
      pids = [...w.workers.map((x) => x.pid), Number((await readFile(join(dir, 'origin', 'nginx.pid'), 'utf8')).trim())];
    } finally {
      first.kill('SIGKILL');
      await first.exited;
    }
    await eventually(async () => !(await Promise.all(pids.map(isAlive))).some(Boolean), 5000, 'the children to die with the service');

    // Polled from the first moment, not from the "vlive is up." line.
    const t0 = performance.now();
    const second = spawn(process.execPath, [repoPath('dist/src/main.js')], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    second.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const url = `http://127.0.0.1:${env['VLIVE_HTTP_PORT']}/graphql`;
    const statUrl = `http://127.0.0.1:${env['VLIVE_HLS_PORT']}/stat`;
    let firstAnswerMs: number | null = null;
    let allLivingMs: number | null = null;
    let livingSeen = 0;
    const untruthful: string[] = [];
    try {
      while (performance.now() - t0 < 30_000 && allLivingMs === null) {
        await sleep(5);
        let lives: { id: string; status: string }[];
        try {
          lives = (await gqlOk<{ virtualLives: { id: string; status: string }[] }>(url, '{ virtualLives { id status } }')).virtualLives;
        } catch {
          continue; // not listening yet
        }
        firstAnswerMs ??= performance.now() - t0;
        const living = lives.filter((v) => v.status === 'LIVING').map((v) => v.id);
        if (living.length > 0) {
          // Read after the answer: a stream the API called LIVING must be there now.
          const stat = parseStat(await (await fetch(statUrl)).text(), rtmpApp(true));
          for (const id of living) {
            const s = stat.get(id);
            livingSeen += 1;
            if (!(s?.publishing === true && s.bytesIn > 0)) untruthful.push(`${id} at ${Math.round(performance.now() - t0)} ms: ${JSON.stringify(s ?? null)}`);
          }
        }
        if (living.length === channels) allLivingMs = performance.now() - t0;
      }
      console.log(`restart: first answer ${Math.round(firstAnswerMs ?? -1)} ms, all ${channels} LIVING ${Math.round(allLivingMs ?? -1)} ms after node dist/src/main.js started; ${livingSeen} LIVING reports checked`);
      assert.deepEqual(untruthful, [], 'LIVING reported for streams not at the origin');
      assert.ok(firstAnswerMs !== null, `the service never answered:\n${stderr}`);
      assert.ok(allLivingMs !== null && allLivingMs <= 10_000, `all ${channels} LIVING after ${allLivingMs} ms`);
      // The witness agrees with an independent receiver.
      const report = await probePackets(`rtmp://127.0.0.1:${env['VLIVE_RTMP_PORT']}/${rtmpApp(true)}/${ids[0]}`, 2);
      assert.ok((report.video?.dts.length ?? 0) > 0, 'ffprobe read video from a resumed channel');
    } finally {
      second.kill('SIGTERM');
      await new Promise((resolve) => second.once('exit', resolve));
    }
  });
});
