/**
 * Recording and snapshots through the API: segments that ffprobe plays and
 * that follow each other within a frame, served with range requests;
 * snapshots that refresh, with their CPU cost; and a full disk (a small
 * tmpfs this test mounts; the suite runs as root) that raises a warning
 * while the live output stays LIVING at its bitrate.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app.js';
import { collect, gqlOk, wsClient } from './helpers/gql.js';
import { makeMp4, probePackets, run, startPublisher } from './helpers/media.js';
import { pollUntil } from './helpers/service.js';

const exec = promisify(execFile);

interface Live {
  id: string;
  status: string;
  snapUrl: string | null;
  snapTakenAt: string | null;
  snapStale: boolean;
  warnings: string[];
  worker: string | null;
  playUrls: { rtmp: string };
  recordings: { url: string; startedAt: string; durationSeconds: number; sizeBytes: number }[];
}
const liveFields = 'id status snapUrl snapTakenAt snapStale warnings worker playUrls { rtmp } recordings { url startedAt durationSeconds sizeBytes }';

function cpuSecondsOf(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/stat`, 'utf8').then((s) => {
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  });
}

describe('recording and snapshots', () => {
  let t: TestApp;
  let vodId = '';
  let longGopId = '';
  const mounted: string[] = [];

  before(async () => {
    t = await startTestApp();
    await mkdir(join(t.mediaRoot, 'rec'), { recursive: true });
    await makeMp4(join(t.mediaRoot, 'rec'), { name: 'clip', seconds: 2, width: 320, height: 240, fps: 25 });
    // Keyframes 3 s apart, as many encoders' defaults give: the recorder holds a whole GOP.
    await makeMp4(join(t.mediaRoot, 'rec'), { name: 'long-gop', seconds: 6, gopSeconds: 3, width: 320, height: 240, fps: 25 });
    const register = async (name: string): Promise<string> =>
      (
        await gqlOk<{ registerVodResource: { id: string } }>(t.url, `mutation($i: RegisterVodResourceInput!) { registerVodResource(input: $i) { id } }`, {
          i: { name, path: `rec/${name}.mp4` },
        })
      ).registerVodResource.id;
    vodId = await register('clip');
    longGopId = await register('long-gop');
  });

  after(async () => {
    await t?.dispose().catch(() => undefined);
    for (const m of mounted) await exec('umount', ['-l', m]).catch(() => undefined);
  });

  const live = async (id: string): Promise<Live> =>
    (await gqlOk<{ virtualLive: Live }>(t.url, `query($id: ID!) { virtualLive(id: $id) { ${liveFields} } }`, { id })).virtualLive;

  async function createAndStart(name: string, extra: Record<string, unknown>, vod = vodId): Promise<Live> {
    const c = await gqlOk<{ createVirtualLive: { id: string } }>(
      t.url,
      `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`,
      { i: { name, sourceType: 'VOD', vodResourceId: vod, ...extra } },
    );
    const s = await gqlOk<{ startVirtualLive: Live }>(t.url, `mutation($id: ID!) { startVirtualLive(id: $id) { ${liveFields} } }`, { id: c.createVirtualLive.id });
    assert.equal(s.startVirtualLive.status, 'LIVING');
    return s.startVirtualLive;
  }

  it('records playable segments that follow each other within a frame, served with ranges', async () => {
    const ch = await createAndStart('recorded', { recording: { enabled: true, segmentSeconds: 2 } });
    const rec = await pollUntil(() => live(ch.id), (v) => v.recordings.length >= 3, 30_000, '3 segments');
    const base = new URL(t.url);
    const segs = rec.recordings.slice(0, 3);
    for (const [i, seg] of segs.entries()) {
      const res = await fetch(new URL(seg.url, base));
      assert.equal(res.status, 200);
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(body.length, seg.sizeBytes);
      const file = join(t.dir, `seg${i}.mp4`);
      await writeFile(file, body);
      const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_name', '-of', 'json', file], 20_000);
      const info = JSON.parse(stdout) as { format: { duration: string }; streams: { codec_name: string }[] };
      assert.deepEqual(info.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
      assert.ok(Math.abs(Number(info.format.duration) - seg.durationSeconds) < 0.1, `${seg.url}: ${info.format.duration} s in the file, ${seg.durationSeconds} s listed`);
      assert.ok(seg.durationSeconds >= 1.9 && seg.durationSeconds < 4.1, `segment of ${seg.durationSeconds} s`);
    }
    for (let i = 1; i < segs.length; i++) {
      const prev = segs[i - 1];
      const cur = segs[i];
      assert.ok(prev !== undefined && cur !== undefined);
      const gap = Date.parse(cur.startedAt) - (Date.parse(prev.startedAt) + prev.durationSeconds * 1000);
      assert.ok(Math.abs(gap) <= 41, `gap of ${gap} ms between segments ${i - 1} and ${i}`);
    }
    const ranged = await fetch(new URL(segs[0]?.url ?? '', base), { headers: { range: 'bytes=0-99' } });
    assert.equal(ranged.status, 206);
    assert.equal((await ranged.arrayBuffer()).byteLength, 100);
    await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id: ch.id });
    // The segment open at the stop was finalised and listed too.
    const final = await live(ch.id);
    assert.ok(final.recordings.length > rec.recordings.length, 'the last segment is closed at the stop');
  });

  it('records and snapshots a stream whose keyframes are 3 s apart', async () => {
    // With the queues' default 1 s this deadlocked: the recorder held a GOP of
    // audio, the audio queue filled and blocked the demuxer's one thread.
    const ch = await createAndStart('long gop', { recording: { enabled: true, segmentSeconds: 2 }, snapshot: { enabled: true, intervalSeconds: 1 } }, longGopId);
    const got = await pollUntil(() => live(ch.id), (v) => v.recordings.length >= 2 && v.snapTakenAt !== null, 30_000, '2 segments and a snapshot');
    for (const seg of got.recordings) assert.ok(seg.durationSeconds >= 2.9 && seg.durationSeconds < 6.1, `a segment of ${seg.durationSeconds} s: cut at a keyframe`);
    await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id: ch.id });
  });

  it('refreshes snapshots, decoding keyframes only; and shows their CPU cost', async () => {
    const plain = await createAndStart('no snapshots', {});
    const worker = (await gqlOk<{ workers: { id: string; pid: number }[] }>(t.url, `{ workers { id pid } }`)).workers;
    const pidOf = (id: string | null): number => worker.find((w) => w.id === id)?.pid ?? 0;
    const windowS = 6;
    const p0 = await cpuSecondsOf(pidOf(plain.worker));
    await new Promise((r) => setTimeout(r, windowS * 1000));
    const plainCpu = (await cpuSecondsOf(pidOf(plain.worker))) - p0;
    await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id: plain.id });

    const ch = await createAndStart('snapshots', { snapshot: { enabled: true, intervalSeconds: 1 } });
    const first = await pollUntil(() => live(ch.id), (v) => v.snapTakenAt !== null, 15_000, 'a snapshot');
    assert.equal(first.snapUrl, `/snapshots/${ch.id}.jpg`);
    assert.equal(first.snapStale, false);
    const s0 = await cpuSecondsOf(pidOf(ch.worker));
    const t0 = Date.parse(first.snapTakenAt ?? '');
    await new Promise((r) => setTimeout(r, windowS * 1000));
    const snapCpu = (await cpuSecondsOf(pidOf(ch.worker))) - s0;
    const later = await live(ch.id);
    assert.ok(Date.parse(later.snapTakenAt ?? '') > t0, 'the snapshot refreshed');
    const res = await fetch(new URL(later.snapUrl ?? '', new URL(t.url)));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/jpeg');
    const jpeg = Buffer.from(await res.arrayBuffer());
    assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8]);
    const file = join(t.dir, 'snap.jpg');
    await writeFile(file, jpeg);
    const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'csv=p=0', file], 20_000);
    assert.equal(stdout.trim(), 'mjpeg,320,240');
    // One snapshot a second over the window; the tap's read-back of the stream is in the figure too.
    const perSnapshotMs = ((snapCpu - plainCpu) / windowS) * 1000;
    console.log(`snapshot cost: ${perSnapshotMs.toFixed(1)} ms of CPU per snapshot (tap included), channel alone ${(plainCpu / windowS * 1000).toFixed(1)} ms/s`);
    assert.ok(perSnapshotMs < 60, `${perSnapshotMs} ms of CPU per snapshot`);
    await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id: ch.id });
  });

  it('snapStale turns true once the snapshot is older than two intervals plus 10 s (a relay whose source is gone)', async () => {
    const publisher = startPublisher(join(t.mediaRoot, 'rec', 'clip.mp4'), t.app.origin.publishUrl('snap-source'), { loop: true });
    try {
      await t.app.origin.waitForPublish('snap-source', 10_000);
      const c = await gqlOk<{ createVirtualLive: { id: string } }>(t.url, `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`, {
        i: { name: 'stale', sourceType: 'ONLINE', sourceUrl: t.app.origin.publishUrl('snap-source'), connectTimeoutMs: 2000, snapshot: { enabled: true, intervalSeconds: 1 } },
      });
      const id = c.createVirtualLive.id;
      await gqlOk(t.url, `mutation($id: ID!) { startVirtualLive(id: $id) { id } }`, { id });
      const fresh = await pollUntil(() => live(id), (v) => v.snapTakenAt !== null, 15_000, 'a snapshot');
      assert.equal(fresh.snapStale, false);
      // The source goes: the channel reconnects (still active), and no keyframe comes for a new snapshot.
      await publisher.stop();
      const stale = await pollUntil(() => live(id), (v) => v.snapStale, 20_000, 'snapStale');
      const ageMs = Date.now() - Date.parse(stale.snapTakenAt ?? '');
      console.log(`snapStale true with a snapshot ${ageMs} ms old; status ${stale.status}`);
      assert.equal(stale.status, 'RECONNECTING');
      // Not before two intervals plus 10 s, and not much after: the API computes it at each read.
      assert.ok(ageMs >= (2 * 1 + 10) * 1000 && ageMs < 13_000, `stale at a snapshot age of ${ageMs} ms`);
      await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id });
      assert.equal((await live(id)).snapStale, false, 'a stopped channel is not stale');
    } finally {
      await publisher.stop();
    }
  });

  it('a full disk raises a warning; the live output stays LIVING at its bitrate', async () => {
    const dir = join(t.dir, 'recordings');
    await mkdir(dir, { recursive: true });
    // Small enough to fill within seconds at this clip's bitrate.
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=192k', 'tmpfs', dir]);
    mounted.push(dir);
    const client = wsClient(t.url);
    const sub = collect<{ virtualLiveStatusChanged: { id: string; status: string; warnings: string[] } }>(
      client,
      `subscription { virtualLiveStatusChanged { id status warnings } }`,
    );
    try {
      await new Promise((r) => setTimeout(r, 200));
      const ch = await createAndStart('disk full', { recording: { enabled: true, segmentSeconds: 60 } });
      const warned = await pollUntil(() => live(ch.id), (v) => v.warnings.length > 0, 30_000, 'a warning');
      assert.match(warned.warnings[0] ?? '', /^recording: /);
      assert.equal(warned.status, 'LIVING');
      assert.ok(
        sub.events.some((e) => e.virtualLiveStatusChanged.id === ch.id && e.virtualLiveStatusChanged.warnings.length > 0),
        'the subscription saw the warning',
      );
      const metrics = await (await fetch(new URL('/metrics', new URL(t.url)))).text();
      assert.match(metrics, new RegExp(`vlive_channel_warnings\\{channel="${ch.id}"\\} 1`));
      // The live output keeps going at real-time pace, judged at the origin.
      const report = await probePackets(ch.playUrls.rtmp, 4);
      const dts = report.video?.dts ?? [];
      assert.ok(dts.length > 75, `${dts.length} video packets in 4 s`);
      assert.equal((await live(ch.id)).status, 'LIVING');
      await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id: ch.id });
    } finally {
      sub.dispose();
      await client.dispose();
    }
  });
});
