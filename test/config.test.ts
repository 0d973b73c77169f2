import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.js';

it('has embedded defaults', () => {
  const c = loadConfig({ VLIVE_DATA_DIR: '/tmp/vlive-x' });
  assert.equal(c.httpPort, 4000);
  assert.equal(c.rtmpPort, 1935);
  assert.equal(c.hlsPort, 8080);
  assert.equal(c.httpHost, '127.0.0.1');
  assert.equal(c.mediaRoot, '/tmp/vlive-x/media');
  assert.equal(c.databaseUrl, 'file:/tmp/vlive-x/vlive.db');
  assert.ok(c.workers >= 1);
  assert.equal(c.originHls, true);
  assert.ok(Object.isFrozen(c));
});

it('turns the origin\'s HLS off with VLIVE_ORIGIN_HLS=off, or false in the file', async () => {
  assert.equal(loadConfig({ VLIVE_ORIGIN_HLS: 'off' }).originHls, false);
  assert.equal(loadConfig({ VLIVE_ORIGIN_HLS: 'on' }).originHls, true);
  const dir = await mkdtemp(join(tmpdir(), 'vlive-cfg-'));
  await writeFile(join(dir, 'c.json'), JSON.stringify({ originHls: false }));
  assert.equal(loadConfig({ VLIVE_CONFIG: join(dir, 'c.json') }).originHls, false);
});

it('layers env over the file over defaults', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vlive-cfg-'));
  const file = join(dir, 'c.json');
  await writeFile(file, JSON.stringify({ httpPort: 5000, rtmpPort: 2935, dataDir: dir }));
  const c = loadConfig({ VLIVE_CONFIG: file, VLIVE_RTMP_PORT: '3935' });
  assert.equal(c.httpPort, 5000);
  assert.equal(c.rtmpPort, 3935);
  assert.equal(c.mediaRoot, join(dir, 'media'));
});

it('names the key of a bad value', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vlive-cfg-'));
  await writeFile(join(dir, 'not-a-cert.pem'), 'hello\n');
  const cases: [Record<string, string>, string][] = [
    [{ VLIVE_HTTP_PORT: 'abc' }, 'VLIVE_HTTP_PORT'],
    [{ VLIVE_RTMP_PORT: '70000' }, 'VLIVE_RTMP_PORT'],
    [{ VLIVE_WORKERS: '0' }, 'VLIVE_WORKERS'],
    [{ VLIVE_ORIGIN_RTMP_URL: 'not a url' }, 'VLIVE_ORIGIN_RTMP_URL'],
    [{ VLIVE_HTTP_HOST: '0.0.0.0' }, 'VLIVE_HTTP_HOST'],
    [{ VLIVE_ORIGIN_HLS: 'no' }, 'VLIVE_ORIGIN_HLS'],
    [{ VLIVE_LEASE_MS: '5000', VLIVE_NODE_HEARTBEAT_MS: '2000' }, 'VLIVE_LEASE_MS'],
    [{ VLIVE_RTMPS_CA_FILE: '/nonexistent/ca.pem' }, 'VLIVE_RTMPS_CA_FILE'],
    // A file that holds no certificate: Node would skip it with a warning, and rtmps:// would fail later for no visible reason.
    [{ VLIVE_RTMPS_CA_FILE: join(dir, 'not-a-cert.pem') }, 'VLIVE_RTMPS_CA_FILE'],
  ];
  for (const [env, key] of cases) {
    assert.throws(
      () => loadConfig(env),
      (e: unknown) => e instanceof ConfigError && e.key === key && e.message.includes(key),
    );
  }
  await writeFile(join(dir, 'c.json'), JSON.stringify({ hlsPrt: 1 }));
  assert.throws(() => loadConfig({ VLIVE_CONFIG: join(dir, 'c.json') }), /hlsPrt/);
});
