/**
 * Playlists end to end through GraphQL: items back to back in one publish
 * session, an edit of a running channel taking effect at the next item
 * boundary without a restart, and incompatible items refused. ffprobe on the
 * origin judges the stream; items are recognised by their packets' content.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loopStarts, probeTracks, type ProbedPacket, type ProbedTracks } from '../bench/loop-check.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { gqlErrorCode, gqlOk } from './helpers/gql.js';
import { makeMp4 } from './helpers/media.js';

interface Vod {
  id: string;
  videoDurationSeconds: number | null;
  audioDurationSeconds: number | null;
}

/** When (DTS, ms) the start of `file` appears in `received`, found by content as bench/loop-check.ts does. */
function appearances(received: readonly ProbedPacket[], file: readonly ProbedPacket[]): number[] {
  return loopStarts(received, file).map((i) => received[i]?.dtsMs ?? 0);
}

function checkContinuous(tracks: ProbedTracks): void {
  for (const [kind, packets, frameMs] of [['video', tracks.video, 40], ['audio', tracks.audio, 1024 / 48]] as const) {
    assert.ok(packets.length > 10, `${kind}: ${packets.length} packets`);
    for (let i = 1; i < packets.length; i++) {
      const step = (packets[i]?.dtsMs ?? 0) - (packets[i - 1]?.dtsMs ?? 0);
      assert.ok(step > 0, `${kind}: DTS went from ${packets[i - 1]?.dtsMs} to ${packets[i]?.dtsMs}`);
      // One frame of gap at most, plus FLV's millisecond rounding.
      assert.ok(step <= 2 * frameMs + 1, `${kind}: step of ${step} ms at ${packets[i]?.dtsMs}`);
    }
  }
}

describe('playlists', () => {
  let t: TestApp;
  const vods: Record<string, Vod> = {};
  const files: Record<string, ProbedTracks> = {};

  before(async () => {
    t = await startTestApp();
    const dir = join(t.mediaRoot, 'pl');
    await mkdir(dir, { recursive: true });
    // Same format, different lengths and pictures' timing; and one of another size.
    // Different tones, so the receiver can tell the items apart by their audio packets.
    const specs = { a: { seconds: 1.2, toneHz: 440 }, b: { seconds: 0.8, audioSeconds: 1.0, toneHz: 660 }, wide: { seconds: 1, width: 640, height: 360 } };
    for (const [name, o] of Object.entries(specs)) {
      const path = await makeMp4(dir, { name, width: 320, height: 240, fps: 25, ...o });
      files[name] = await probeTracks(path);
      const d = await gqlOk<{ registerVodResource: Vod }>(
        t.url,
        `mutation($i: RegisterVodResourceInput!) { registerVodResource(input: $i) { id videoDurationSeconds audioDurationSeconds } }`,
        { i: { name, path: `pl/${name}.mp4` } },
      );
      vods[name] = d.registerVodResource;
    }
  });

  after(async () => {
    await t?.dispose();
  });

  it('registration reports each track\'s own duration', () => {
    const b = vods['b'];
    assert.ok(b !== undefined);
    assert.ok(Math.abs((b.videoDurationSeconds ?? 0) - 0.8) < 0.05, `video ${b.videoDurationSeconds}`);
    assert.ok(Math.abs((b.audioDurationSeconds ?? 0) - 1.0) < 0.05, `audio ${b.audioDurationSeconds}`);
  });

  it('plays items back to back in one session, applies an edit at the next boundary, and refuses mismatched items', async () => {
    const ids = (...names: string[]): string[] => names.map((n) => vods[n]?.id ?? '');
    // A playlist with an item of another picture size is refused before anything is written.
    assert.equal(
      await gqlErrorCode(t.url, `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`, {
        i: { name: 'mixed', sourceType: 'VOD', playlist: ids('a', 'wide') },
      }),
      'INCOMPATIBLE_MEDIA',
    );
    const created = await gqlOk<{ createVirtualLive: { id: string; playlist: { id: string }[] } }>(
      t.url,
      `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id playlist { id } } }`,
      { i: { name: 'pl', sourceType: 'VOD', playlist: ids('a', 'b') } },
    );
    const id = created.createVirtualLive.id;
    assert.deepEqual(created.createVirtualLive.playlist.map((v) => v.id), ids('a', 'b'));
    const started = await gqlOk<{ startVirtualLive: { status: string; startCount: number; playUrls: { rtmp: string } } }>(
      t.url,
      `mutation($id: ID!) { startVirtualLive(id: $id) { status startCount playUrls { rtmp } } }`,
      { id },
    );
    assert.equal(started.startVirtualLive.status, 'LIVING');
    const url = started.startVirtualLive.playUrls.rtmp;

    // Both items, alternating, with continuous timestamps.
    const before = await probeTracks(url, 6);
    checkContinuous(before);
    const aSeen = appearances(before.audio, files['a']?.audio ?? []);
    const bSeen = appearances(before.audio, files['b']?.audio ?? []);
    assert.ok(aSeen.length >= 2 && bSeen.length >= 2, `a at ${aSeen}, b at ${bSeen}`);

    // A running channel refuses an item that does not fit its session.
    assert.equal(
      await gqlErrorCode(t.url, `mutation($id: ID!, $i: UpdateVirtualLiveInput!) { updateVirtualLive(id: $id, input: $i) { id } }`, {
        id,
        i: { playlist: ids('wide') },
      }),
      'INCOMPATIBLE_MEDIA',
    );
    // Now only b: from the next boundary on, a never comes back, in the same session.
    const receiving = probeTracks(url, 7);
    await new Promise((r) => setTimeout(r, 1500));
    const edited = await gqlOk<{ updateVirtualLive: { status: string; startCount: number; restartCount: number; playlist: { id: string }[] } }>(
      t.url,
      `mutation($id: ID!, $i: UpdateVirtualLiveInput!) { updateVirtualLive(id: $id, input: $i) { status startCount restartCount playlist { id } } }`,
      { id, i: { playlist: ids('b') } },
    );
    assert.deepEqual(edited.updateVirtualLive.playlist.map((v) => v.id), ids('b'));
    assert.equal(edited.updateVirtualLive.status, 'LIVING');
    const during = await receiving;
    checkContinuous(during);
    const first = during.audio[0]?.dtsMs ?? 0;
    const aAfter = appearances(during.audio, files['a']?.audio ?? []);
    const bAfter = appearances(during.audio, files['b']?.audio ?? []);
    // The receiver joined about 1.5 s before the edit; the item playing then
    // (1.2 s at most) finishes, plus the feeder's lead and some slack.
    const cutoff = first + 1500 + 1200 + 800;
    assert.ok(aAfter.every((at) => at < cutoff), `a still played at ${aAfter} (cut-off ${cutoff})`);
    assert.ok(bAfter.filter((at) => at >= cutoff).length >= 3, `b after the edit at ${bAfter}`);
    const after = await gqlOk<{ virtualLive: { status: string; startCount: number; restartCount: number } }>(
      t.url,
      `query($id: ID!) { virtualLive(id: $id) { status startCount restartCount } }`,
      { id },
    );
    assert.deepEqual(after.virtualLive, { status: 'LIVING', startCount: started.startVirtualLive.startCount, restartCount: 0 }, 'no restart');
    await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id });
  });
});
