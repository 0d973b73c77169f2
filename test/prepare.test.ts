/**
 * Media that cannot be copied is transcoded once at registration and then
 * looped like any other file: HEVC + Opus in Matroska through the API, to a
 * LIVING channel that ffprobe reads as H.264 + AAC. Starting it before it is
 * ready, and a file that is not media at all, give coded errors.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app.js';
import { gql, gqlErrorCode, gqlOk } from './helpers/gql.js';
import { makeMp4, probePackets } from './helpers/media.js';
import { pollUntil } from './helpers/service.js';

interface Vod {
  id: string;
  state: string;
  prepareProgress: number;
  prepareError: string | null;
  copyable: boolean;
  videoCodec: string | null;
  audioCodec: string | null;
  width: number | null;
  height: number | null;
}
const vodFields = 'id state prepareProgress prepareError copyable videoCodec audioCodec width height';

describe('media that cannot be copied', () => {
  let t: TestApp;

  before(async () => {
    t = await startTestApp();
    const dir = join(t.mediaRoot, 'in');
    await mkdir(dir, { recursive: true });
    await makeMp4(dir, { name: 'hevc-opus', seconds: 2, video: 'hevc', audio: 'opus', container: 'mkv', width: 320, height: 240 });
    await makeMp4(dir, { name: 'big', seconds: 6, width: 640, height: 360 });
    await writeFile(join(dir, 'noise.mp4'), Buffer.alloc(4096, 7));
  });

  after(async () => {
    await t?.dispose();
  });

  const register = (input: Record<string, unknown>) =>
    gql<{ registerVodResource: Vod }>(t.url, `mutation($i: RegisterVodResourceInput!) { registerVodResource(input: $i) { ${vodFields} } }`, { i: input });

  const untilReady = (id: string): Promise<Vod> =>
    pollUntil(
      async () => {
        const vod = (await gqlOk<{ vodResources: Vod[] }>(t.url, `{ vodResources { ${vodFields} } }`)).vodResources.find((v) => v.id === id);
        assert.ok(vod !== undefined);
        return vod;
      },
      (vod) => vod.state !== 'PREPARING',
      60_000,
      'the end of PREPARING',
    );

  it('transcodes HEVC + Opus in MKV once, then plays it as H.264 + AAC', async () => {
    const r = await register({ name: 'hevc', path: 'in/hevc-opus.mkv' });
    assert.equal(r.errors, undefined);
    const vod = r.data?.registerVodResource;
    assert.ok(vod !== undefined);
    assert.equal(vod.copyable, false);
    assert.equal(vod.state, 'PREPARING');

    const created = await gqlOk<{ createVirtualLive: { id: string } }>(
      t.url,
      `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`,
      { i: { name: 'from hevc', sourceType: 'VOD', vodResourceId: vod.id } },
    );
    const id = created.createVirtualLive.id;
    const ready = await untilReady(vod.id);
    assert.equal(ready.state, 'READY', ready.prepareError ?? '');
    assert.deepEqual([ready.videoCodec, ready.audioCodec, ready.width, ready.height, ready.prepareProgress], ['h264', 'aac', 320, 240, 1]);

    const started = await gqlOk<{ startVirtualLive: { status: string; playUrls: { rtmp: string } } }>(
      t.url,
      `mutation($id: ID!) { startVirtualLive(id: $id) { status playUrls { rtmp } } }`,
      { id },
    );
    assert.equal(started.startVirtualLive.status, 'LIVING');
    const r2 = await probePackets(started.startVirtualLive.playUrls.rtmp, 4);
    assert.equal(r2.video?.codecName, 'h264');
    assert.equal(r2.audio?.codecName, 'aac');
    assert.ok((r2.video?.dts.length ?? 0) > 50, `video packets ${r2.video?.dts.length}`);
    await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id });
  });

  it('a transcode profile scales a copyable file; a channel cannot start before it is ready', async () => {
    const r = await register({ name: 'small', path: 'in/big.mp4', transcode: { width: 320, height: 180, videoKbps: 400 } });
    const vod = r.data?.registerVodResource;
    assert.ok(vod !== undefined, JSON.stringify(r.errors));
    assert.equal(vod.copyable, true);
    assert.equal(vod.state, 'PREPARING');
    const created = await gqlOk<{ createVirtualLive: { id: string } }>(
      t.url,
      `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`,
      { i: { name: 'small', sourceType: 'VOD', vodResourceId: vod.id } },
    );
    // Registration returned at once; the transcode of 6 s of 640x360 takes far longer than this start.
    const code = await gqlErrorCode(t.url, `mutation($id: ID!) { startVirtualLive(id: $id) { status } }`, { id: created.createVirtualLive.id });
    const now = await untilReady(vod.id);
    assert.equal(code, 'MEDIA_NOT_READY');
    assert.deepEqual([now.state, now.width, now.height], ['READY', 320, 180]);
  });

  it('refuses bad profiles and non-media with codes', async () => {
    assert.equal(
      await gqlErrorCode(t.url, `mutation($i: RegisterVodResourceInput!) { registerVodResource(input: $i) { id } }`, {
        i: { name: 'odd', path: 'in/big.mp4', transcode: { width: 321, height: 180 } },
      }),
      'BAD_USER_INPUT',
    );
    assert.equal(
      await gqlErrorCode(t.url, `mutation($i: RegisterVodResourceInput!) { registerVodResource(input: $i) { id } }`, { i: { name: 'noise', path: 'in/noise.mp4' } }),
      'MEDIA_UNREADABLE',
    );
    const d = await gqlOk<{ vodResources: { id: string }[] }>(t.url, `{ vodResources { id } }`);
    assert.equal(d.vodResources.length, 2, 'nothing registered for the refused ones');
  });
});
