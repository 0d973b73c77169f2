/**
 * Push targets over rtmps:// and srt://, and every target's bitrate, on one
 * channel with four extra targets:
 * 1. rtmps:// to a TLS ingest whose self-signed certificate the service
 *    trusts through VLIVE_RTMPS_CA_FILE (a Node TLS server piping to the test
 *    origin stands in for a CDN's TLS-terminating ingest);
 * 2. rtmps:// to the same kind of ingest with a certificate nobody trusts:
 *    verification is on, so it fails and retries on its own;
 * 3. srt:// (caller, passphrase, pbkeylen, latency) to ffprobe listening;
 * 4. srt:// to a port where nobody listens: it retries on its own.
 * Independent receivers judge the output: ffprobe reads target 1's stream
 * back from the origin, the SRT stream as the listener itself, and the
 * channel at the origin, which keeps its pace while targets 2 and 4 fail.
 * The bitrates in the API and in /metrics are checked against the clip's own.
 */
import assert from 'node:assert/strict';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app.js';
import { gqlOk } from './helpers/gql.js';
import { makeMp4, paceProblem, probePackets, type PacketReport } from './helpers/media.js';
import { until } from './helpers/poll.js';
import { freePort } from './helpers/ports.js';
import { nonIncreasing } from './helpers/rtmp-receiver.js';
import { makeCert, startTlsRelay } from './helpers/tls-relay.js';

interface Target {
  position: number;
  url: string;
  status: string;
  bytesSent: number;
  bitrateBps: number;
  errors: number;
  lastError: string | null;
}

const clipSeconds = 2;
const passphrase = 'vlive-srt-test-passphrase';

describe('push targets over rtmps:// and srt://, with their bitrates', () => {
  let t: TestApp;
  const stops: (() => Promise<void>)[] = [];
  let trustedPort = 0;
  let roguePort = 0;
  let clipBps = 0;

  before(async () => {
    const certDir = join(process.env['TMPDIR'] ?? '/tmp', `vlive-certs-${process.pid}`);
    await mkdir(certDir, { recursive: true });
    const [trusted, rogue] = await Promise.all([makeCert(certDir, 'trusted-ingest'), makeCert(certDir, 'rogue-ingest')]);
    t = await startTestApp({ VLIVE_RTMPS_CA_FILE: trusted.certFile });
    const relays = await Promise.all([startTlsRelay(trusted, t.config.rtmpPort), startTlsRelay(rogue, t.config.rtmpPort)]);
    stops.push(...relays.map((r) => r.stop));
    [trustedPort, roguePort] = relays.map((r) => r.port) as [number, number];
    await mkdir(join(t.mediaRoot, 'pp'), { recursive: true });
    const clip = await makeMp4(join(t.mediaRoot, 'pp'), { name: 'clip', seconds: clipSeconds, width: 320, height: 240, fps: 25 });
    clipBps = ((await stat(clip)).size * 8) / clipSeconds;
  });

  after(async () => {
    await t?.dispose();
    for (const stop of stops) await stop();
  });

  it('publishes over TLS with verification, over SRT with a passphrase, and reports each target\'s bitrate', async () => {
    const vod = await gqlOk<{ registerVodResource: { id: string } }>(t.url, `mutation { registerVodResource(input: {name: "clip", path: "pp/clip.mp4"}) { id } }`);
    const [srtPort, deadPort] = [await freePort(), await freePort()];
    const tlsStream = `tls-${process.pid}`;
    const targets = [
      `rtmps://127.0.0.1:${trustedPort}/live/${tlsStream}`,
      `rtmps://127.0.0.1:${roguePort}/live/rogue-${process.pid}`,
      `srt://127.0.0.1:${srtPort}?passphrase=${passphrase}&pbkeylen=16&latency=120`,
      `srt://127.0.0.1:${deadPort}?passphrase=${passphrase}`,
    ];
    // The SRT receiver listens before the channel calls it (ffprobe's latency option is in µs: left at its default).
    const atSrt = probePackets(`srt://127.0.0.1:${srtPort}?mode=listener&passphrase=${passphrase}&pbkeylen=16`, 3);
    const c = await gqlOk<{ createVirtualLive: { id: string } }>(t.url, `mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }`, {
      i: { name: 'protocols', sourceType: 'VOD', vodResourceId: vod.registerVodResource.id, pushTargets: targets },
    });
    const id = c.createVirtualLive.id;
    const s = await gqlOk<{ startVirtualLive: { status: string; playUrls: { rtmp: string } } }>(t.url, `mutation($id: ID!) { startVirtualLive(id: $id) { status playUrls { rtmp } } }`, { id });
    assert.equal(s.startVirtualLive.status, 'LIVING');
    const origin = `rtmp://127.0.0.1:${t.config.rtmpPort}`;
    const [atOrigin, atTls, srt] = await Promise.all([probePackets(s.startVirtualLive.playUrls.rtmp, 3, { forPace: true }), probePackets(`${origin}/live/${tlsStream}`, 3), atSrt]);
    const reports: [string, PacketReport][] = [['the channel at the origin', atOrigin], ['the rtmps:// target', atTls], ['the srt:// target', srt]];
    for (const [where, r] of reports) {
      assert.equal(r.video?.codecName, 'h264', where);
      assert.equal(r.audio?.codecName, 'aac', where);
      // ffprobe's 3 s count from its first packet of any track, and a player joining the origin
      // may get audio up to a GOP (1 s) before its first keyframe: at least 2 s of 25 fps video,
      // with no frame missing on the way (no DTS step over two frame durations).
      const dts = r.video?.dts ?? [];
      assert.ok(dts.length >= 45, `${where}: ${dts.length} video packets in 3 s`);
      assert.deepEqual(nonIncreasing(dts), [], `${where}: video DTS strictly rising`);
      const steps = dts.slice(1).map((d, i) => d - (dts[i] ?? d));
      assert.ok(Math.max(...steps) <= 0.081, `${where}: a video DTS step of ${Math.max(...steps).toFixed(3)} s`);
    }
    // Real-time pace at the origin while two of the targets fail. (The targets' receivers waited for
    // their sessions to join at a keyframe: what they got first came as a burst.)
    assert.equal(paceProblem(atOrigin), null);

    // The dead SRT peer fails after libsrt's 3 s connect timeout: wait for its first error.
    const q = await until(() => pushTargets(t, id), (ts) => (ts[3]?.errors ?? 0) >= 1, 15_000, 'the dead srt:// target to fail');
    const [tls, rogue, good, dead] = q;
    assert.ok(tls !== undefined && rogue !== undefined && good !== undefined && dead !== undefined);
    assert.equal(tls.status, 'UP');
    assert.equal(tls.errors, 0);
    assert.equal(tls.url, `rtmps://127.0.0.1:${trustedPort}/live/***`);
    assert.ok(rogue.errors >= 1, `the untrusted ingest was refused: ${JSON.stringify(rogue)}`);
    assert.match(rogue.lastError ?? '', /^target 2: .*self-signed certificate/);
    assert.ok(['RETRYING', 'CONNECTING'].includes(rogue.status), rogue.status);
    assert.equal(rogue.bytesSent, 0, 'nothing was sent to an ingest whose certificate failed');
    assert.equal(good.status, 'UP');
    assert.equal(good.errors, 0);
    assert.equal(good.url, `srt://127.0.0.1:${srtPort}?***`);
    assert.ok(['RETRYING', 'CONNECTING'].includes(dead.status), dead.status);
    assert.match(dead.lastError ?? '', /^target 4: /);
    assert.ok(!(dead.lastError ?? '').includes(passphrase), `the passphrase is masked: ${dead.lastError}`);

    // Bitrates: the clip's own (its MP4's size over its length), give or take framing. RTMP
    // adds its chunk headers (a few %); MPEG-TS its 188-byte packets, PES headers and tables,
    // which at this low bitrate (43 audio frames a second) came to 1.09-1.25 times in test runs.
    const within = (what: string, bps: number, lo: number, hi: number): void => {
      assert.ok(bps >= clipBps * lo && bps <= clipBps * hi, `${what}: ${Math.round(bps)} bit/s against the clip's ${Math.round(clipBps)} (allowed ${lo}..${hi}x)`);
    };
    console.log(`bitrates, bit/s: clip ${Math.round(clipBps)}, rtmps ${tls.bitrateBps}, srt ${good.bitrateBps}`);
    within('API, rtmps:// target', tls.bitrateBps, 0.7, 1.5);
    within('API, srt:// target', good.bitrateBps, 0.7, 1.6);
    assert.equal(rogue.bitrateBps, 0);
    const metrics = await (await fetch(`http://127.0.0.1:${t.app.api.port}/metrics`)).text();
    const gauge = (target: number): number => {
      const m = new RegExp(`^vlive_channel_target_bitrate_bytes_per_second\\{channel="${id}",target="${target}"\\} (\\S+)$`, 'm').exec(metrics);
      assert.ok(m?.[1] !== undefined, `no bitrate series for target ${target}`);
      return Number(m[1]) * 8; // bytes per second in the base unit; compared in bits
    };
    within('/metrics, origin', gauge(0), 0.7, 1.5);
    within('/metrics, rtmps:// target', gauge(1), 0.7, 1.5);
    within('/metrics, srt:// target', gauge(3), 0.7, 1.6);
    assert.equal(gauge(2), 0);
    await gqlOk(t.url, `mutation($id: ID!) { stopVirtualLive(id: $id) { id } }`, { id });
  });
});

async function pushTargets(t: TestApp, id: string): Promise<Target[]> {
  const q = await gqlOk<{ virtualLive: { pushTargets: Target[] } }>(
    t.url,
    `query($id: ID!) { virtualLive(id: $id) { pushTargets { position url status bytesSent bitrateBps errors lastError } } }`,
    { id },
  );
  return q.virtualLive.pushTargets;
}
