/**
 * Fuzzing every mutation with thousands of random and hostile inputs: only
 * coded errors come back, the service stays up, no pipeline starts for a
 * rejected input, and the database stays consistent.
 *
 * The fuzzer has its own operator token with a start/stop budget far above
 * what it sends (`startStopsPer10s` in the tokens file), so the rate limit,
 * which runs before a resolver looks at its input, never stands between a
 * generated input and the code it attacks. The test counts, per mutation,
 * how many inputs got past GraphQL's variable types into the resolver, and
 * prints the codes seen.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { seededRandom } from '../bench/stats.js';
import { errorCodes, protocolErrorCodes } from '../src/errors.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { gql, gqlOk } from './helpers/gql.js';
import { makeMp4 } from './helpers/media.js';

const hostile = [
  '', ' ', '..', '../../etc/passwd', '/etc/passwd', 'a/../../b', '\u0000', 'x\u0000y', '\n', '\r\n', '"', "'", '`', '\\', '$(id)', ';ls',
  '! filesink location=/tmp/vlive-fuzz', 'rtmp://', 'rtmp://h', 'rtmp://127.0.0.1/live/k ! fakesink', 'rtmps://h/app/key?x=1',
  'file:///etc/passwd', 'http://127.0.0.1/x.m3u8', 'srt://h:1', 'javascript:alert(1)', '%00', '%2e%2e/x', '\u202E', '\u{1F600}', 'ǅ',
  '\uFFFF', '\uD800', 'null', 'undefined', '0', '-1', '1e309', 'x'.repeat(3000), 'a/'.repeat(600),
];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

function randomString(r: () => number): string {
  if (r() < 0.6) return pick(r, hostile) + (r() < 0.3 ? pick(r, hostile) : '');
  const len = Math.floor(r() * 40);
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCodePoint(Math.floor(r() * (r() < 0.8 ? 0x80 : 0x2ffff)));
  return s;
}

function randomValue(r: () => number): unknown {
  const k = r();
  if (k < 0.6) return randomString(r);
  if (k < 0.7) return Math.floor((r() - 0.5) * 2 ** 40);
  if (k < 0.8) return r() < 0.5;
  if (k < 0.9) return null;
  return [randomString(r), randomString(r)];
}

/** A 32-bit integer, often one at an edge; GraphQL's Int refuses anything wider before a resolver sees it. */
function randomInt(r: () => number): number {
  return r() < 0.5 ? pick(r, [0, -1, 1, 2 ** 31 - 1, -(2 ** 31), 999, 1000, 3_600_000]) : Math.floor((r() - 0.5) * 2 ** 32);
}

let t: TestApp;
let vodId: string;
const allowed = new Set<string>([...Object.keys(errorCodes), ...Object.keys(protocolErrorCodes)]);
const fuzzToken = 'fuzz-secret';
const auth = { authorization: `Bearer ${fuzzToken}` };
let tokensDir = '';

before(async () => {
  tokensDir = await mkdtemp(join(tmpdir(), 'vlive-fuzz-'));
  const tokens = join(tokensDir, 'tokens.json');
  const sha256 = createHash('sha256').update(fuzzToken).digest('hex');
  await writeFile(tokens, JSON.stringify({ tokens: [{ name: 'fuzzer', role: 'operator', sha256, startStopsPer10s: 100_000 }] }));
  t = await startTestApp({ VLIVE_WORKERS: '1', VLIVE_TOKENS_FILE: tokens });
  await mkdir(join(t.mediaRoot, 'clips'), { recursive: true });
  await makeMp4(join(t.mediaRoot, 'clips'), { name: 'a', seconds: 2, width: 160, height: 120 });
  vodId = (
    await gqlOk<{ registerVodResource: { id: string } }>(t.url, 'mutation { registerVodResource(input: { name: "a", path: "clips/a.mp4" }) { id } }', {}, auth)
  ).registerVodResource.id;
});
after(async () => {
  await t?.dispose();
  if (tokensDir !== '') await rm(tokensDir, { recursive: true, force: true });
});

it('answers 250 random and hostile inputs per mutation with data or coded errors only, and stays consistent', async () => {
  const seed = Number(process.env['FUZZ_SEED'] ?? Date.now() % 2 ** 31);
  // Seeded, so a failure can be replayed with FUZZ_SEED.
  const r = seededRandom(seed);
  // Mostly a value of the field's GraphQL type, so that it reaches the resolver's own checks; now
  // and then anything at all, so that GraphQL's coercion is fuzzed too.
  const typed = (make: () => unknown): unknown => (r() < 0.85 ? make() : randomValue(r));
  const str = (): unknown => typed(() => randomString(r));
  const int = (): unknown => typed(() => randomInt(r));
  const bool = (): unknown => typed(() => r() < 0.5);
  const some = (p: number, fields: () => Record<string, unknown>): Record<string, unknown> => (r() < p ? fields() : {});
  // Channels the fuzzer created: updates aim at them too, to get past the lookup. (Starts, schedules and
  // deletes keep to random ids: a started channel or a due schedule would run a pipeline.)
  const createdIds: string[] = [];
  const channelId = (): unknown => (createdIds.length > 0 && r() < 0.4 ? pick(r, createdIds) : str());
  const mutations: { query: string; vars: () => Record<string, unknown> }[] = [
    { query: 'mutation($i: RegisterVodResourceInput!) { registerVodResource(input: $i) { id } }', vars: () => ({ i: { name: str(), path: str() } }) },
    {
      query: 'mutation($i: CreateVirtualLiveInput!) { createVirtualLive(input: $i) { id } }',
      vars: () => ({
        i: {
          name: str(),
          sourceType: typed(() => pick(r, ['VOD', 'ONLINE'])),
          ...some(0.5, () => ({ vodResourceId: r() < 0.3 ? vodId : str() })),
          ...some(0.5, () => ({ sourceUrl: str() })),
          ...some(0.3, () => ({ pushTargets: Array.from({ length: Math.floor(r() * 12) }, () => randomString(r)) })),
          ...some(0.3, () => ({ connectTimeoutMs: int() })),
          ...some(0.2, () => ({ loop: bool() })),
          ...some(0.2, () => ({ onDemand: bool(), touchDurationSeconds: int(), idleDelaySeconds: int() })),
          ...some(0.2, () => ({ backupUrl: str(), failoverAfterFailures: int(), failoverAfterMs: int() })),
          ...some(0.2, () => ({ recording: { enabled: bool(), segmentSeconds: int() }, snapshot: { enabled: bool(), intervalSeconds: int() } })),
          ...some(0.1, () => ({ playlist: [str(), str()], slateVodResourceId: str(), maxReconnectAttempts: int(), hls: bool() })),
          ...some(0.1, () => ({ outputProfile: { width: int(), height: int(), frameRate: typed(() => r() * 130), audioSampleRate: int(), audioChannels: int() } })),
          ...some(0.1, () => ({ items: [{ vodResourceId: r() < 0.5 ? vodId : str() }, { sourceUrl: str(), durationSeconds: int() }, { vodResourceId: str(), sourceUrl: str() }].slice(0, 1 + Math.floor(r() * 3)) })),
        },
      }),
    },
    {
      query: 'mutation($id: ID!, $i: UpdateVirtualLiveInput!) { updateVirtualLive(id: $id, input: $i) { id } }',
      vars: () => ({ id: channelId(), i: { ...some(0.7, () => ({ name: str() })), ...some(0.7, () => ({ sourceUrl: str() })), ...some(0.3, () => ({ connectTimeoutMs: int(), pushTargets: [str()] })) } }),
    },
    { query: 'mutation($id: ID!) { deleteVirtualLive(id: $id) }', vars: () => ({ id: str() }) },
    { query: 'mutation($id: ID!) { startVirtualLive(id: $id) { id status } }', vars: () => ({ id: str() }) },
    { query: 'mutation($id: ID!) { stopVirtualLive(id: $id) { id status } }', vars: () => ({ id: str() }) },
    { query: 'mutation($id: ID!) { touchVirtualLive(id: $id) { id status } }', vars: () => ({ id: str() }) },
    { query: 'mutation($id: ID!) { skipVirtualLive(id: $id) { switchAt index } }', vars: () => ({ id: channelId() }) },
    { query: 'mutation($id: ID!, $index: Int!) { jumpVirtualLive(id: $id, index: $index) { switchAt index } }', vars: () => ({ id: channelId(), index: int() }) },
    {
      query: 'mutation($id: ID!, $url: String!) { takeLive(id: $id, url: $url) { url startedAt source } }',
      vars: () => ({ id: channelId(), url: typed(() => pick(r, ['rtmp://127.0.0.1:1/live/x', 'rtsp://127.0.0.1:1/x', 'file:///etc/passwd', 'rtmp://host/', randomString(r)])) }),
    },
    { query: 'mutation($id: ID!, $mode: ReturnMode!) { returnToPlaylist(id: $id, mode: $mode) { switchAt index } }', vars: () => ({ id: channelId(), mode: typed(() => pick(r, ['RESUME', 'WALLCLOCK'])) }) },
    {
      query: 'mutation($id: ID!, $i: ScheduleInput!) { addSchedule(virtualLiveId: $id, input: $i) { id } }',
      vars: () => ({
        id: str(),
        i: {
          action: typed(() => pick(r, ['START', 'STOP'])),
          ...some(0.5, () => ({ at: typed(() => pick(r, ['2099-01-01T00:00:00Z', '2099-02-30T00:00:00Z', '2099-01-01T00:00:00+25:00', randomString(r)])) })),
          ...some(0.5, () => ({ cron: typed(() => pick(r, ['*/5 * * * *', '0 0 30 2 *', '1-2-3 * * * *', '*/0 * * * *', randomString(r)])) })),
          ...some(0.3, () => ({ timeZone: typed(() => pick(r, ['Europe/Berlin', 'Etc/GMT+99', randomString(r)])) })),
        },
      }),
    },
    { query: 'mutation($id: ID!) { removeSchedule(id: $id) }', vars: () => ({ id: str() }) },
    {
      // On the fuzzer's channels, none of which runs: a programme is only stored.
      query: 'mutation($id: ID!, $i: ProgrammeInput!) { setProgramme(virtualLiveId: $id, input: $i) { id } }',
      vars: () => ({
        id: channelId(),
        i: {
          ...some(0.5, () => ({ timeZone: typed(() => pick(r, ['UTC', 'Europe/Berlin', 'America/New_York', 'Mars/Olympus', randomString(r)])) })),
          ...some(0.4, () => ({ dayStart: typed(() => pick(r, ['06:00', '23:59:59', '24:00', '6', '-01:00', randomString(r)])) })),
          ...(r() < 0.5 ? { fillerVodResourceId: r() < 0.6 ? vodId : str() } : some(0.5, () => ({ fillerPlaylist: [r() < 0.6 ? vodId : str(), str()].slice(0, 1 + Math.floor(r() * 2)) }))),
          entries: Array.from({ length: Math.floor(r() * 4) }, () => ({
            start: typed(() => pick(r, ['06:00', '07:30', '2099-01-01T06:00:00Z', '2099-02-30T00:00:00Z', '25:00', randomString(r)])),
            ...some(0.6, () => ({ vodResourceId: r() < 0.6 ? vodId : str() })),
            ...some(0.2, () => ({ playlist: [vodId, str()] })),
            ...some(0.3, () => ({ sourceUrl: typed(() => pick(r, ['rtmp://127.0.0.1:1/live/x', 'srt://h:1', 'file:///etc/passwd', randomString(r)])) })),
            ...some(0.6, () => ({ durationSeconds: typed(() => pick(r, [0, -1, 0.5, 60, 1e9, Number.MAX_VALUE])) })),
            ...some(0.2, () => ({ breaks: [{ offsetSeconds: typed(() => r() * 4 - 1), durationSeconds: typed(() => r() * 120 - 1), ...some(0.5, () => ({ id: str() })) }] })),
          })),
        },
      }),
    },
    { query: 'mutation($id: ID!) { clearProgramme(virtualLiveId: $id) { id } }', vars: () => ({ id: channelId() }) },
    {
      // IP literals and hostile strings only: a host name would wait on DNS, which this machine has none of.
      query: 'mutation($i: AddWebhookInput!) { addWebhook(input: $i) { id } }',
      vars: () => ({
        i: {
          url: typed(() => pick(r, ['http://127.0.0.1:9/x', 'http://10.0.0.1/x', 'https://[::1]/h', 'http://169.254.169.254/latest', 'ftp://192.0.2.1/x', 'http://192.0.2.1:99999/', randomString(r)])),
          events: typed(() => [pick(r, ['STATUS_CHANGED', 'ERROR', 'ITEM_STARTED', 'RECORDING_FINISHED', 'CUT_IN_STARTED'])].slice(0, Math.floor(r() * 2))),
          secret: typed(() => pick(r, ['short', 'x'.repeat(16), 'y'.repeat(300), randomString(r)])),
        },
      }),
    },
    { query: 'mutation($id: ID!) { removeWebhook(id: $id) }', vars: () => ({ id: str() }) },
  ];
  let created = 0;
  // Per mutation: codes seen ('ok' for data), and how many inputs got past GraphQL's variable types into the resolver.
  const seen = new Map<string, { reached: number; codes: Map<string, number> }>();
  // 250 per mutation on average, so that each, even the one whose input type refuses the most, reaches its resolver 100 times.
  for (let i = 0; i < 250 * mutations.length; i++) {
    const m = pick(r, mutations);
    const name = /\{ (\w+)\(/.exec(m.query)?.[1] ?? m.query;
    const res = await gql<Record<string, { id?: string; status?: string } | string | null>>(t.url, m.query, m.vars(), auth);
    const tally = seen.get(name) ?? { reached: 0, codes: new Map<string, number>() };
    seen.set(name, tally);
    const first = res.errors?.[0];
    const code = first === undefined ? 'ok' : String(first.extensions?.code);
    tally.codes.set(code, (tally.codes.get(code) ?? 0) + 1);
    // GraphQL refuses a variable of the wrong type before any resolver runs, with this wording.
    if (first === undefined || !first.message.startsWith('Variable "$')) tally.reached += 1;
    if (res.errors?.length) {
      for (const e of res.errors) {
        const code = e.extensions?.code;
        assert.ok(typeof code === 'string' && allowed.has(code), `seed ${seed}, request ${i}: uncoded error ${JSON.stringify(e)}`);
        assert.notEqual(code, 'INTERNAL_SERVER_ERROR', `seed ${seed}, request ${i}: ${JSON.stringify(e)}`);
        assert.notEqual(code, 'RATE_LIMITED', `seed ${seed}, request ${i}: the fuzzer's budget ran out`);
        assert.doesNotMatch(e.message, /\/work\/|node_modules|at [\w.]+ \(/, 'no paths or stack traces');
      }
    } else {
      const made = res.data?.['createVirtualLive'];
      if (typeof made === 'object' && made !== null && typeof made.id === 'string') {
        created += 1;
        createdIds.push(made.id);
      }
    }
  }
  for (const [name, tally] of seen) {
    const codes = [...tally.codes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ');
    console.log(`fuzz ${name}: ${tally.reached} reached the resolver; ${codes}`);
  }
  assert.equal(seen.size, mutations.length, 'every mutation was tried');
  for (const [name, tally] of seen) {
    assert.ok(tally.reached >= 100, `${name}: only ${tally.reached} inputs reached the resolver (seed ${seed})`);
  }
  const state = await gqlOk<{
    virtualLives: { id: string; status: string; desiredState: string; sourceType: string; vodResource: { id: string } | null; sourceUrl: string | null; pushTargets: { position: number }[] }[];
    workers: { pipelines: number; state: string }[];
  }>(t.url, '{ virtualLives { id status desiredState sourceType vodResource { id } sourceUrl pushTargets { position } } workers { pipelines state } }', {}, auth);
  assert.equal(state.virtualLives.length, created, 'every accepted create is there, nothing else');
  for (const c of state.virtualLives) {
    assert.equal(c.status, 'STOPPED', 'no random id started anything');
    assert.equal(c.desiredState, 'STOPPED');
    if (c.sourceType === 'VOD') assert.equal(c.vodResource?.id, vodId);
    else assert.match(c.sourceUrl ?? '', /^(rtmps?|rtsp|srt|https?):\/\/[^\s]+$/, 'an accepted source URL has an allowed scheme');
    assert.deepEqual(c.pushTargets.map((p) => p.position), c.pushTargets.map((_, i) => i + 1));
  }
  assert.deepEqual(state.workers.map((w) => [w.state, w.pipelines]), [['READY', 0]], 'no pipeline runs');
  const hooks = await gqlOk<{ webhooks: { url: string }[] }>(t.url, '{ webhooks { url } }', {}, auth);
  for (const h of hooks.webhooks) assert.match(h.url, /^https?:\/\/(?!127\.|10\.|\[::1\]|169\.254\.)[^\s]+$/, 'only a public http(s) URL is registered');
});
