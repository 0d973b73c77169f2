/**
 * Starts the whole service in-process for end-to-end tests: real worker
 * processes, a real nginx-rtmp origin, a scratch SQLite database and media
 * root, all on free ports. The disposer always runs from t.after.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp, type App } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { rtmpApp } from '../../src/origin/config.js';
import { parseStat } from '../../src/origin/stat.js';
import { gqlOk } from './gql.js';
import { makeMp4 } from './media.js';
import { freePort } from './ports.js';
import { RtmpReceiver } from './rtmp-receiver.js';

export interface TestApp {
  app: App;
  url: string;
  dir: string;
  mediaRoot: string;
  config: Config;
  dispose(): Promise<void>;
}

/** The environment of a test service in `dir`: free ports, two workers, no CPU budget. */
export async function testEnv(dir: string): Promise<Record<string, string>> {
  return {
    VLIVE_DATA_DIR: dir,
    VLIVE_HTTP_PORT: String(await freePort()),
    VLIVE_RTMP_PORT: String(await freePort()),
    VLIVE_HLS_PORT: String(await freePort()),
    VLIVE_WORKERS: '2',
    // Tests share a small, busy machine; the CPU budget is tested on its own.
    VLIVE_CPU_BUDGET: '1',
  };
}

export async function startTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const dir = await mkdtemp(join(tmpdir(), 'vlive-e2e-'));
  const config = loadConfig({
    ...(await testEnv(dir)),
    ...env,
  });
  const app = await startApp(config, createLogger({ proc: 'test-app' }));
  return {
    app,
    url: `http://127.0.0.1:${app.api.port}/graphql`,
    dir,
    mediaRoot: config.mediaRoot,
    config,
    dispose: async () => {
      await app.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Registers the file at `path` (under the app's media root) as VOD resource `name`; returns its id. */
export async function registerVod(t: TestApp, name: string, path: string): Promise<string> {
  const d = await gqlOk<{ registerVodResource: { id: string } }>(t.url, `mutation($i: RegisterVodResourceInput!) { registerVodResource(input: $i) { id } }`, { i: { name, path } });
  return d.registerVodResource.id;
}

/** Makes a test clip (H.264 + AAC, `seconds` long) under the app's media root and registers it; returns its VOD resource id. */
export async function registerClip(t: TestApp, seconds = 4): Promise<string> {
  await makeMp4(t.mediaRoot, { name: 'clip', seconds });
  return registerVod(t, 'clip', 'clip.mp4');
}

/**
 * nginx's id of the connection publishing `stream` at the test app's origin
 * (its /stat, in the application of the stream's `hls` choice), or null: the
 * same id over time means one publish session.
 */
export async function publisherAtOrigin(t: TestApp, stream: string, hls = true): Promise<string | null> {
  const res = await fetch(`http://127.0.0.1:${t.config.hlsPort}/stat`);
  return parseStat(await res.text(), rtmpApp(hls)).get(stream)?.publisherId ?? null;
}

export interface TestToken {
  readonly name: string;
  readonly role: 'viewer' | 'operator';
  /** The token in clear; the file holds its SHA-256. */
  readonly secret: string;
  readonly startStopsPer10s?: number;
}

/** Writes a tokens file for VLIVE_TOKENS_FILE into a new scratch folder and returns its path. */
export async function writeTokensFile(tokens: readonly TestToken[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vlive-tokens-'));
  const file = join(dir, 'tokens.json');
  const entries = tokens.map(({ secret, ...rest }) => ({ ...rest, sha256: createHash('sha256').update(secret).digest('hex') }));
  await writeFile(file, JSON.stringify({ tokens: entries }));
  return file;
}

/**
 * Starts channel `id` (no HLS) and an ffprobe receiver playing it with
 * payload hashes; `session` is the origin's publisher connection then.
 */
export async function startReceived(t: TestApp, id: string): Promise<{ receiver: RtmpReceiver; session: string }> {
  const started = await gqlOk<{ startVirtualLive: { status: string; playUrls: { rtmp: string } } }>(t.url, `mutation($id: ID!) { startVirtualLive(id: $id) { status playUrls { rtmp } } }`, { id });
  if (started.startVirtualLive.status !== 'LIVING') throw new Error(`channel ${id} is ${started.startVirtualLive.status}, not LIVING`);
  const receiver = RtmpReceiver.play(started.startVirtualLive.playUrls.rtmp, { hashes: true });
  const session = await publisherAtOrigin(t, id, false);
  if (session === null) {
    await receiver.close();
    throw new Error(`channel ${id} is not publishing at the origin`);
  }
  return { receiver, session };
}
