/**
 * The managed nginx-rtmp origin against real nginx, with ffmpeg as the
 * publisher and ffprobe as the independent receiver.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it, type TestContext } from 'node:test';
import { VliveError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { ExternalOrigin } from '../src/origin/external.js';
import { httpGet } from '../src/origin/http.js';
import { ManagedOrigin, type ManagedOriginOptions } from '../src/origin/nginx.js';
import { nodelayLibrary, withNodelay } from '../src/origin/nodelay.js';
import { processArgs } from '../src/origin/orphan.js';
import { renderNginxConf, originPaths } from '../src/origin/config.js';
import { parseStat, parseStatByApp } from '../src/origin/stat.js';
import { makeMp4, probePackets, startPublisher } from './helpers/media.js';
import { freePorts } from './helpers/ports.js';

const execFileAsync = promisify(execFile);

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

async function scratch(t: TestContext, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `vlive-${prefix}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A started origin on fresh ports, stopped when the test ends. */
async function startedOrigin(t: TestContext, extra: Partial<ManagedOriginOptions> = {}): Promise<ManagedOrigin> {
  const [rtmpPort = 0, hlsPort = 0] = await freePorts(2);
  const origin = new ManagedOrigin({ dataDir: await scratch(t, 'origin'), rtmpPort, hlsPort, logger: quiet, ...extra });
  t.after(() => origin.stop());
  await origin.start();
  return origin;
}

/** Polls `check` until it returns a value, or fails after `timeoutMs`. */
async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => null);
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

const alive = async (pid: number): Promise<boolean> => (await processArgs(pid)) !== null;

/** Holds a port like a stranger would. Connections are dropped at once: an idle accepted socket would keep server.close() waiting forever. */
function occupy(t: TestContext, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => resolve(server));
    t.after(() => new Promise<void>((done) => server.close(() => done())));
  });
}

describe('ManagedOrigin', () => {
  let mediaDir = '';
  let file = '';
  before(async () => {
    mediaDir = await mkdtemp(join(tmpdir(), 'vlive-origin-media-'));
    file = await makeMp4(mediaDir, { seconds: 4, width: 320, height: 240, fps: 25 });
  });
  after(() => rm(mediaDir, { recursive: true, force: true }));

  it('relays a publisher over RTMP and HLS, and notices when it leaves', async (t) => {
    const origin = await startedOrigin(t);
    const stream = 'ch_1-test';
    assert.equal(await origin.isPublishing(stream), false);

    const publisher = startPublisher(file, origin.publishUrl(stream), { loop: true });
    t.after(() => publisher.stop());
    await origin.waitForPublish(stream, 10_000);
    assert.equal(await origin.isPublishing(stream), true);

    const urls = origin.playUrls(stream);
    assert.equal(urls.rtmp, `rtmp://127.0.0.1:${origin.rtmpPort}/live/${stream}`);
    const rtmp = await probePackets(urls.rtmp, 3);
    assert.equal(rtmp.video?.codecName, 'h264');
    assert.equal(rtmp.video?.width, 320);
    assert.equal(rtmp.audio?.codecName, 'aac');
    assert.ok((rtmp.video?.dts.length ?? 0) > 25, `few video packets: ${rtmp.video?.dts.length}`);

    assert.ok(urls.hls !== null);
    const playlist = await eventually('an HLS playlist with a segment', 15_000, async () => {
      const res = await httpGet(urls.hls ?? '', 2_000);
      return res.status === 200 && res.body.includes('#EXTINF') ? res : null;
    });
    assert.match(playlist.body, /^#EXTM3U/);
    const hls = await probePackets(urls.hls, 2);
    assert.equal(hls.video?.codecName, 'h264');
    assert.equal(hls.audio?.codecName, 'aac');

    await publisher.stop();
    await eventually('isPublishing to turn false', 10_000, async () => ((await origin.isPublishing(stream)) ? null : true));
  });

  it('keeps a stream without HLS in its own application: played over RTMP there, seen there, and never segmented', async (t) => {
    const origin = await startedOrigin(t);
    const [plain, segmented] = ['no-hls', 'with-hls'];
    const publishers = [startPublisher(file, origin.publishUrl(plain, false), { loop: true }), startPublisher(file, origin.publishUrl(segmented, true), { loop: true })];
    t.after(() => Promise.all(publishers.map((p) => p.stop())));
    await Promise.all([origin.waitForPublish(plain, 10_000, { hls: false }), origin.waitForPublish(segmented, 10_000, { hls: true })]);
    assert.equal(await origin.isPublishing(plain, true), false, 'not in the HLS application');
    assert.equal(await origin.isPublishing(segmented, false), false, 'not in the plain one');
    assert.deepEqual([...(await origin.streams(false)).keys()], [plain]);

    const urls = origin.playUrls(plain, false);
    assert.deepEqual(urls, { rtmp: `rtmp://127.0.0.1:${origin.rtmpPort}/live-nohls/${plain}`, hls: null });
    const rtmp = await probePackets(urls.rtmp, 2);
    assert.equal(rtmp.video?.codecName, 'h264');
    assert.equal(rtmp.audio?.codecName, 'aac');
    // By now the segmented stream has fragments of 1 s; the other one has nothing.
    const files = await eventually('the HLS stream\'s playlist', 10_000, async () => {
      const names = await readdir(origin.paths.hls);
      return names.includes(`${segmented}.m3u8`) ? names : null;
    });
    assert.deepEqual(files.filter((f) => f.startsWith(plain)), [], `files of the stream without HLS: ${files.join(' ')}`);
    assert.equal((await httpGet(`http://127.0.0.1:${origin.hlsPort}/hls/${plain}.m3u8`, 2_000)).status, 404);
  });

  it('serves the playlist with CORS and no-cache, and /stat', async (t) => {
    const origin = await startedOrigin(t);
    const stream = 'hdrs';
    const publisher = startPublisher(file, origin.publishUrl(stream), { loop: true });
    t.after(() => publisher.stop());
    await origin.waitForPublish(stream, 10_000);
    const m3u8 = origin.playUrls(stream).hls ?? '';
    const headers = await eventually('the playlist', 15_000, () => headersOf(m3u8));
    assert.equal(headers['access-control-allow-origin'], '*');
    assert.equal(headers['cache-control'], 'no-cache');
    assert.match(headers['content-type'] ?? '', /mpegurl/);
    const stat = await httpGet(`http://127.0.0.1:${origin.hlsPort}/stat`, 2_000);
    assert.match(stat.body, /<name>hdrs<\/name>/);
  });

  it('with hls off, relays over RTMP and writes no HLS', async (t) => {
    const origin = await startedOrigin(t, { hls: false });
    const stream = 'nohls';
    const publisher = startPublisher(file, origin.publishUrl(stream), { loop: true });
    t.after(() => publisher.stop());
    await origin.waitForPublish(stream, 10_000);
    assert.equal(origin.playUrls(stream).hls, null);
    // Three seconds of media through the origin: with HLS on, 1 s fragments would be on disk by now.
    const rtmp = await probePackets(origin.playUrls(stream).rtmp, 3);
    assert.ok((rtmp.video?.dts.length ?? 0) > 25, `few video packets: ${rtmp.video?.dts.length}`);
    assert.deepEqual(await readdir(origin.paths.hls), []);
    assert.equal((await httpGet(`http://127.0.0.1:${origin.hlsPort}/hls/${stream}.m3u8`, 2_000)).status, 404);
    assert.match(await readFile(origin.paths.conf, 'utf8'), /^\s*hls off;$/m);
  });

  it('fails start naming VLIVE_RTMP_PORT when the RTMP port is taken', async (t) => {
    const [rtmpPort = 0, hlsPort = 0] = await freePorts(2);
    await occupy(t, rtmpPort);
    const origin = new ManagedOrigin({ dataDir: await scratch(t, 'busy'), rtmpPort, hlsPort, logger: quiet });
    t.after(() => origin.stop());
    await assert.rejects(origin.start(), /RTMP port 127\.0\.0\.1:\d+ \(VLIVE_RTMP_PORT\) is already in use/);
    assert.equal(origin.state, 'failed');
    assert.equal(origin.pid, null);
  });

  it('fails start naming VLIVE_HLS_PORT when the HTTP port is taken', async (t) => {
    const [rtmpPort = 0, hlsPort = 0] = await freePorts(2);
    await occupy(t, hlsPort);
    const origin = new ManagedOrigin({ dataDir: await scratch(t, 'busy'), rtmpPort, hlsPort, logger: quiet });
    t.after(() => origin.stop());
    await assert.rejects(origin.start(), (err: Error) => /VLIVE_HLS_PORT/.test(err.message) && !/VLIVE_RTMP_PORT/.test(err.message));
  });

  it('stop() ends nginx and start() works again on the same directory', async (t) => {
    const origin = await startedOrigin(t);
    const pid = origin.pid ?? 0;
    assert.ok(await alive(pid));
    await origin.stop();
    assert.equal(origin.state, 'stopped');
    assert.equal(await alive(pid), false);
    await origin.start();
    assert.equal(origin.state, 'running');
    assert.notEqual(origin.pid, pid);
  });

  /** TCP_NODELAY on nginx's end of a fresh connection to its RTMP port (test/fixtures/nodelay-probe.py). */
  async function nginxNodelay(t: TestContext, origin: ManagedOrigin): Promise<string> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: origin.rtmpPort }, () => resolve(s));
      s.once('error', reject);
    });
    t.after(() => socket.destroy());
    const probe = fileURLToPath(new URL('../../test/fixtures/nodelay-probe.py', import.meta.url));
    // Until nginx has accepted it, the probe finds no socket and exits 2.
    return eventually('nginx to accept the connection', 5_000, async () => {
      const { stdout } = await execFileAsync('python3', [probe, String(origin.pid), String(socket.localPort)]);
      return stdout.trim();
    });
  }

  it('sets TCP_NODELAY on the connections nginx accepts, so frames reach players without waiting for their ACKs', async (t) => {
    const origin = await startedOrigin(t);
    assert.ok((await readFile(`/proc/${origin.pid}/maps`, 'utf8')).includes(nodelayLibrary), 'the preload is mapped into nginx');
    assert.equal(await nginxNodelay(t, origin), '1');
  });

  it('with nodelay: false, runs nginx as Debian ships it: Nagle stays on', async (t) => {
    const origin = await startedOrigin(t, { nodelay: false });
    assert.equal((await readFile(`/proc/${origin.pid}/maps`, 'utf8')).includes(nodelayLibrary), false);
    assert.equal(await nginxNodelay(t, origin), '0');
  });

  it('starts nginx again after restartDelayMs when it dies while running; stop() cancels a pending restart', async (t) => {
    const origin = await startedOrigin(t, { restartDelayMs: 200 });
    const first = origin.pid ?? 0;
    process.kill(first, 'SIGKILL');
    const second = await eventually('a new nginx', 10_000, async () => (origin.state === 'running' && origin.pid !== null && origin.pid !== first ? origin.pid : null));
    assert.equal(await alive(first), false);
    assert.ok(await alive(second));
    // Players are counted by the origin itself (the Origin port's optional players()).
    assert.equal((await origin.players()).size, 0);

    process.kill(second, 'SIGKILL');
    await eventually('the failed state', 5_000, async () => (origin.state === 'failed' ? true : null));
    await origin.stop();
    await sleep(400);
    assert.equal(origin.state, 'stopped');
    assert.equal(origin.pid, null);
  });

  it('stop() during start() wins: start rejects and no nginx is left', async (t) => {
    const [rtmpPort = 0, hlsPort = 0] = await freePorts(2);
    const dataDir = await scratch(t, 'race');
    // nginx can be ready within 30 ms (its answers are not held by Nagle since
    // the TCP_NODELAY preload), so a wrapper keeps the start going for 300 ms:
    // the stop at 30 ms then surely lands while nginx runs but is not ready.
    const slowNginx = join(dataDir, 'slow-nginx');
    await writeFile(slowNginx, '#!/bin/sh\nsleep 0.3\nexec nginx "$@"\n', { mode: 0o755 });
    const origin = new ManagedOrigin({ dataDir, rtmpPort, hlsPort, logger: quiet, nginxBin: slowNginx });
    for (const delayMs of [0, 30]) {
      const starting = origin.start();
      await sleep(delayMs);
      const pid = origin.pid;
      await origin.stop();
      await assert.rejects(starting, /stopped while starting/);
      assert.equal(origin.state, 'stopped');
      assert.equal(origin.pid, null);
      if (pid !== null) assert.equal(await alive(pid), false);
    }
  });

  it('dies with its parent: kill -9 of the node process leaves no nginx', async (t) => {
    const [rtmpPort = 0, hlsPort = 0] = await freePorts(2);
    const dataDir = await scratch(t, 'pdeath');
    const moduleUrl = new URL('../src/origin/nginx.js', import.meta.url).href;
    const script = `
      import { ManagedOrigin } from ${JSON.stringify(moduleUrl)};
      const origin = new ManagedOrigin(${JSON.stringify({ dataDir, rtmpPort, hlsPort })});
      await origin.start();
      process.stdout.write(JSON.stringify({ pid: origin.pid }) + '\\n');
      setInterval(() => {}, 1 << 30);
    `;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    t.after(() => parent.kill('SIGKILL'));
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      parent.stdout.setEncoding('utf8');
      parent.stdout.on('data', (c: string) => {
        out += c;
        if (out.includes('\n')) resolve(out);
      });
      parent.once('exit', (code) => reject(new Error(`fixture exited early with ${code}`)));
    });
    const { pid } = JSON.parse(line) as { pid: number };
    const args = await processArgs(pid);
    assert.ok(args?.some((a) => a.endsWith('nginx')), `pid ${pid} is not nginx: ${String(args)}`);

    parent.kill('SIGKILL');
    await eventually('nginx to die with its parent', 5_000, async () => ((await alive(pid)) ? null : true));
    // And its ports are free again, once its worker processes (which the
    // kernel does not signal) have noticed their master is gone.
    await eventually('the RTMP port to be free', 5_000, () => occupy(t, rtmpPort));
    await eventually('the HLS port to be free', 5_000, () => occupy(t, hlsPort));
  });

  it('kills an orphan nginx left by a previous run, but not a stranger with a reused pid', async (t) => {
    const [rtmpPort = 0, hlsPort = 0] = await freePorts(2);
    const dataDir = await scratch(t, 'orphan');
    const first = new ManagedOrigin({ dataDir, rtmpPort, hlsPort, logger: quiet });
    await first.start();
    await first.stop();

    // The "previous run": the same conf, started outside any supervisor.
    const conf = first.paths.conf;
    const orphan = spawn('nginx', ['-c', conf, '-p', `${first.paths.dir}/`, '-e', first.paths.errorLog], { stdio: 'ignore' });
    t.after(() => orphan.kill('SIGKILL'));
    const orphanPid = orphan.pid ?? 0;
    await eventually('the orphan to write its pid file', 5_000, async () =>
      Number(await readFile(first.paths.pid, 'utf8')) === orphanPid ? true : null,
    );

    const second = new ManagedOrigin({ dataDir, rtmpPort, hlsPort, logger: quiet });
    t.after(() => second.stop());
    await second.start();
    assert.equal(await alive(orphanPid), false);
    assert.notEqual(second.pid, orphanPid);
    await second.stop();

    // A pid file naming some other process must not get it killed.
    const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
    t.after(() => stranger.kill('SIGKILL'));
    await writeFile(first.paths.pid, `${stranger.pid}\n`);
    await second.start();
    assert.equal(await alive(stranger.pid ?? 0), true);
  });

  it('waitForPublish fails with START_FAILED on timeout and honours abort', async (t) => {
    const origin = await startedOrigin(t);
    await assert.rejects(origin.waitForPublish('nobody', 300), (err: unknown) => err instanceof VliveError && err.code === 'START_FAILED');
    const reason = new Error('channel stopped');
    const controller = new AbortController();
    const waiting = origin.waitForPublish('nobody', 10_000, { signal: controller.signal });
    controller.abort(reason);
    await assert.rejects(waiting, (err: unknown) => err === reason);
  });

  it('refuses stream names that are not ids', async (t) => {
    const [rtmpPort = 0, hlsPort = 0] = await freePorts(2);
    const origin = new ManagedOrigin({ dataDir: await scratch(t, 'names'), rtmpPort, hlsPort, logger: quiet });
    for (const bad of ['', 'a/b', '../x', 'x y', 'a?b', 'é', 'x'.repeat(129)]) {
      for (const hls of [true, false]) {
        assert.throws(() => origin.publishUrl(bad, hls), (err: unknown) => err instanceof VliveError && err.code === 'BAD_USER_INPUT', bad);
        assert.throws(() => origin.playUrls(bad, hls), (err: unknown) => err instanceof VliveError && err.code === 'BAD_USER_INPUT', bad);
      }
    }
  });
});

describe('withNodelay', () => {
  it('puts the preload before any LD_PRELOAD already set, and gives null when the library was not built', () => {
    assert.equal(withNodelay({ PATH: '/bin' })?.['LD_PRELOAD'], nodelayLibrary);
    assert.equal(withNodelay({ LD_PRELOAD: '/x/liba.so' })?.['LD_PRELOAD'], `${nodelayLibrary}:/x/liba.so`);
    assert.equal(withNodelay({ PATH: '/bin' }, '/nonexistent/libnodelay.so'), null);
  });
});

describe('renderNginxConf', () => {
  it('has two RTMP applications, alike but for HLS, both notifying plays', () => {
    const render = (hls: boolean): Map<string | undefined, string[]> => {
      const conf = renderNginxConf({
        paths: originPaths('/srv/vlive'), rtmpPort: 1935, hlsPort: 8080, hlsFragmentSeconds: 1, hlsPlaylistSeconds: 6, instanceToken: 'abc', notifyUrl: 'http://127.0.0.1:9/n', hls,
      });
      const directives = (body: string): string[] => body.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
      return new Map([...conf.matchAll(/application (\S+) \{([^}]*)\}/g)].map((m) => [m[1], directives(m[2] ?? '')]));
    };
    const apps = render(true);
    assert.deepEqual([...apps.keys()], ['live', 'live-nohls']);
    const withHls = apps.get('live') ?? [];
    const without = apps.get('live-nohls') ?? [];
    assert.deepEqual(withHls.filter((d) => !d.startsWith('hls')), without.filter((d) => !d.startsWith('hls')));
    assert.ok(withHls.includes('hls on;'));
    assert.deepEqual(without.filter((d) => d.startsWith('hls')), ['hls off;']);
    assert.ok(without.includes('on_play http://127.0.0.1:9/n;'));
    // The origin's own switch (VLIVE_ORIGIN_HLS=off) turns HLS off in both.
    for (const [, body] of render(false)) assert.deepEqual(body.filter((d) => d.startsWith('hls')), ['hls off;']);
  });
});

describe('parseStat', () => {
  it('reads stream-level flags, not a client\'s, and only from the named application', () => {
    const xml = `<rtmp><server>
      <application><name>other</name><live><stream><name>s</name><publishing/><active/></stream></live></application>
      <application><name>live</name><live>
        <stream><name>on</name><bytes_in>50831</bytes_in>
          <client><id>1</id><bytes_in>1</bytes_in><publishing/><active/></client>
          <nclients>2</nclients><publishing/><active/></stream>
        <stream><name>idle</name><bytes_in>0</bytes_in>
          <client><id>2</id><flashver>&lt;publishing/&gt;</flashver><active/></client>
          <nclients>1</nclients></stream>
      </live></application></server></rtmp>`;
    const streams = parseStat(xml, 'live');
    assert.deepEqual([...parseStatByApp(xml).keys()], ['other', 'live']);
    assert.equal(parseStatByApp(xml).get('other')?.get('s')?.publishing, true);
    assert.deepEqual(streams.get('on'), { name: 'on', publishing: true, active: true, bytesIn: 50831, clients: 2, publisherId: '1', players: [] });
    assert.equal(streams.get('idle')?.publishing, false);
    assert.equal(streams.get('idle')?.publisherId, null, 'a player is not the publisher');
    // A player waiting on a stream nobody publishes; its flashver text cannot pass for a flag.
    assert.deepEqual(streams.get('idle')?.players, ['2']);
    assert.equal(streams.has('s'), false);
  });
});

describe('ExternalOrigin', () => {
  it('appends stream names to the configured URLs and has nothing to run', async () => {
    const origin = new ExternalOrigin({ rtmpBaseUrl: 'rtmp://origin.example:1935/live', hlsBaseUrl: 'https://cdn.example/hls/' });
    await origin.start();
    assert.equal(origin.publishUrl('abc'), 'rtmp://origin.example:1935/live/abc');
    assert.deepEqual(origin.playUrls('abc'), { rtmp: 'rtmp://origin.example:1935/live/abc', hls: 'https://cdn.example/hls/abc.m3u8' });
    assert.equal(await origin.isPublishing('abc'), true);
    await origin.waitForPublish('abc', 1);
    await origin.stop();
    assert.equal(new ExternalOrigin({ rtmpBaseUrl: 'rtmp://o/live' }).playUrls('x').hls, null);
    // Somebody else's origin has one application: hls=false only withholds the HLS URL.
    assert.equal(origin.publishUrl('abc', false), 'rtmp://origin.example:1935/live/abc');
    assert.deepEqual(origin.playUrls('abc', false), { rtmp: 'rtmp://origin.example:1935/live/abc', hls: null });
    assert.throws(() => new ExternalOrigin({ rtmpBaseUrl: 'http://o/live' }), (e: unknown) => e instanceof VliveError && e.code === 'URL_NOT_ALLOWED');
  });
});

function headersOf(url: string): Promise<Record<string, string> | null> {
  return new Promise((resolve) => {
    get(url, { agent: false }, (res) => {
      res.resume();
      const h: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h[k] = v;
      resolve(res.statusCode === 200 ? h : null);
    }).on('error', () => resolve(null));
  });
}
