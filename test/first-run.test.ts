/**
 * The README's first command, as a new user runs it: `npm start` (setup,
 * then `node dist/src/main.js --demo`) in a scratch data dir on free ports.
 * The demo channel must be playable by an independent receiver (ffprobe)
 * over RTMP and HLS, and SIGTERM must end the service with exit code 0 and
 * no process left behind. Nothing here is skipped: a missing dependency
 * fails the test, as it would fail the user.
 *
 * Also: a start-up that fails says so in one line, names the cause and what
 * to do, exits non-zero and leaves nothing running.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { repoPath } from '../src/paths.js';
import { freePort } from './helpers/ports.js';
import { probePackets, type PacketStream } from './helpers/media.js';
import { eventually, isAlive } from './helpers/service.js';

const exec = promisify(execFile);

interface Run {
  proc: ChildProcess;
  exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
}

function launch(cmd: string, args: string[], env: Record<string, string>): Run {
  const proc = spawn(cmd, args, {
    cwd: repoPath(),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, exited, stdout: () => out, stderr: () => err };
}

/** Every live descendant of `root`, from /proc's parent links. */
async function descendants(root: number): Promise<Map<number, string>> {
  const parent = new Map<number, number>();
  const comm = new Map<number, string>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(name), Number(rest[1]));
      comm.set(Number(name), stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')));
    } catch {
      // gone meanwhile
    }
  }
  const out = new Map<number, string>();
  for (const [pid] of parent) {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) {
        out.set(pid, comm.get(pid) ?? '?');
        break;
      }
    }
  }
  return out;
}

async function scratchEnv(dir: string): Promise<Record<string, string>> {
  // Only what a user on a shared machine might set: where data goes and which ports.
  return {
    VLIVE_DATA_DIR: dir,
    VLIVE_HTTP_PORT: String(await freePort()),
    VLIVE_RTMP_PORT: String(await freePort()),
    VLIVE_HLS_PORT: String(await freePort()),
  };
}

function strictlyRising(s: PacketStream): boolean {
  return s.dts.every((d, i) => i === 0 || d > (s.dts[i - 1] ?? -Infinity));
}

test('npm start: the demo channel plays over RTMP and HLS, and SIGTERM exits 0 leaving no process', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vlive-first-run-'));
  const run = launch('npm', ['start'], await scratchEnv(dir));
  t.after(async () => {
    for (const pid of (await descendants(run.proc.pid ?? -1)).keys()) process.kill(pid, 'SIGKILL');
    run.proc.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  // Setup runs first: on a machine that has everything it only checks.
  const deadline = Date.now() + 240_000;
  while (!/vlive is up\.[\s\S]*play HLS: +\S+/.test(run.stdout())) {
    if (run.proc.exitCode !== null) assert.fail(`npm start exited with ${run.proc.exitCode}:\n${run.stdout()}\n${run.stderr()}`);
    if (Date.now() > deadline) assert.fail(`npm start did not come up:\n${run.stdout()}\n${run.stderr()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const out = run.stdout();
  assert.match(out, /Demo channel \S+ is LIVING\./);
  const rtmp = /play RTMP: (\S+)/.exec(out)?.[1];
  const hls = /play HLS: +(\S+)/.exec(out)?.[1];
  assert.ok(rtmp !== undefined && hls !== undefined, out);

  const viaRtmp = await probePackets(rtmp, 4);
  assert.equal(viaRtmp.video?.codecName, 'h264');
  assert.equal(viaRtmp.video?.width, 1280);
  assert.equal(viaRtmp.audio?.codecName, 'aac');
  assert.ok((viaRtmp.video?.dts.length ?? 0) >= 75, `RTMP: ${viaRtmp.video?.dts.length} video packets in 4 s at 30 fps`);
  assert.ok(viaRtmp.video !== null && strictlyRising(viaRtmp.video), 'RTMP video DTS rise strictly');
  assert.ok(viaRtmp.audio !== null && strictlyRising(viaRtmp.audio), 'RTMP audio DTS rise strictly');

  const viaHls = await probePackets(hls, 4);
  assert.equal(viaHls.video?.codecName, 'h264');
  assert.equal(viaHls.audio?.codecName, 'aac');
  assert.ok((viaHls.video?.dts.length ?? 0) >= 60, `HLS: ${viaHls.video?.dts.length} video packets`);

  // The console that setup built is served where the banner says.
  const consoleUrl = /Console \(in a browser\): (\S+)/.exec(out)?.[1];
  assert.ok(consoleUrl !== undefined, out);
  const page = await fetch(consoleUrl);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<script type="module" src="\/console\/app\.js"><\/script>/);
  assert.equal((await fetch(new URL('/console/app.js', consoleUrl))).status, 200, 'the console bundle was not built by setup');

  // The service is the node process under npm; the rest (workers, nginx) are its children.
  const tree = await descendants(run.proc.pid ?? -1);
  const service = [...tree].find(([pid, comm]) => comm === 'node' && tree.size > 0 && pid !== run.proc.pid)?.[0];
  assert.ok(service !== undefined, `no service process under npm: ${JSON.stringify([...tree])}`);
  const workers = await descendants(service);
  assert.ok([...workers.values()].includes('nginx'), `the origin runs under the service: ${JSON.stringify([...workers])}`);
  assert.ok(workers.size >= 3, `origin and workers under the service: ${JSON.stringify([...workers])}`);

  process.kill(service, 'SIGTERM');
  assert.equal(await run.exited, 0, `npm start's exit code after SIGTERM to the service:\n${run.stderr().slice(-2000)}`);
  await eventually(
    async () => {
      for (const pid of tree.keys()) if (await isAlive(pid)) return false;
      return true;
    },
    5_000,
    'every process npm start began to be gone',
  );
});

test('a start-up that fails says why in one line, exits non-zero and leaves nothing running', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vlive-first-run-'));
  const env = await scratchEnv(dir);
  // Another program already holds the API's port: found after the origin and
  // the workers started, so they must be stopped again.
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(Number(env['VLIVE_HTTP_PORT']), '127.0.0.1', r));
  const run = launch(process.execPath, [repoPath('dist/src/main.js'), '--demo'], env);
  const seen = new Map<number, string>();
  const watch = setInterval(() => {
    void descendants(run.proc.pid ?? -1).then((d) => d.forEach((c, p) => seen.set(p, c)));
  }, 50);
  t.after(async () => {
    clearInterval(watch);
    run.proc.kill('SIGKILL');
    squatter.close();
    await rm(dir, { recursive: true, force: true });
  });
  const code = await run.exited;
  clearInterval(watch);
  assert.notEqual(code, 0);
  assert.doesNotMatch(run.stdout(), /vlive is up/);
  const last = run.stderr().trim().split('\n').at(-1) ?? '';
  assert.match(last, /^vlive: start-up failed: .*EADDRINUSE.*VLIVE_HTTP_PORT/);
  assert.ok([...seen.values()].includes('nginx'), `the origin had started before the port was found taken: ${JSON.stringify([...seen])}`);
  for (const [pid, comm] of seen) assert.equal(await isAlive(pid), false, `${comm} (${pid}) outlived the failed start-up`);
});

test('a missing GStreamer element stops start-up before anything runs, naming its Debian package', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vlive-first-run-'));
  // This machine's real plugins, less the one that holds timeoverlay: what a
  // machine without gstreamer1.0-x looks like to GStreamer.
  const plugins = join(dir, 'plugins');
  await mkdir(plugins);
  const { stdout } = await exec('gst-inspect-1.0', ['timeoverlay']);
  const holder = /Filename\s+(\S+)/.exec(stdout)?.[1];
  assert.ok(holder !== undefined, stdout);
  const system = dirname(holder);
  for (const f of await readdir(system)) if (f.endsWith('.so') && f !== basename(holder)) await symlink(join(system, f), join(plugins, f));
  const svc = launch(process.execPath, [repoPath('dist/src/main.js'), '--demo'], {
    ...(await scratchEnv(join(dir, 'data'))),
    GST_PLUGIN_SYSTEM_PATH_1_0: plugins,
    GST_REGISTRY_1_0: join(dir, 'registry.bin'),
  });
  t.after(async () => {
    svc.proc.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  assert.notEqual(await svc.exited, 0);
  assert.doesNotMatch(svc.stdout(), /vlive is up/);
  const last = svc.stderr().trim().split('\n').at(-1) ?? '';
  assert.match(last, /^vlive: start-up failed: GStreamer element missing: timeoverlay \(Debian package gstreamer1\.0-x\)\. Run `npm run setup` as root/);
  // Nothing was started: no data dir was even made.
  await assert.rejects(readdir(join(dir, 'data')));
});
