/**
 * Retention: a real scratch SQLite database and real files. Each case checks
 * what went and, just as much, that everything else stayed: every other file
 * under the data dir, and the rows and files of kept segments.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';

import { openDatabase, type PrismaClient } from '../src/db/client.js';
import { createLogger } from '../src/log.js';
import { removeChannelRecordings, sweepDeletedChannels, sweepRecordings, sweepSnapshots } from '../src/recording/retention.js';
import { startRetention } from '../src/recording/sweeper.js';

const now = new Date('2026-01-01T12:00:00Z');
const minutes = (n: number): number => n * 60_000;
const noQuota = { channelQuotaBytes: 0, totalQuotaBytes: 0 };

let scratch: string;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'vlive-retention-test-'));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

let counter = 0;
interface Fixture {
  db: PrismaClient;
  dataDir: string;
  /** A folder next to the data dir: outside it. */
  outside: string;
  /** Paths of the segments made by segment(), each with a file of its row's size. */
  segments: Set<string>;
  channel(name: string, recordingRetainHours: number): Promise<string>;
  /** A segment of `size` bytes that ended `endedAgoMs` before `now`; returns its path relative to the data dir. */
  segment(channelId: string, name: string, size: number, endedAgoMs: number): Promise<string>;
}

async function fixture(t: TestContext): Promise<Fixture> {
  counter += 1;
  const base = join(scratch, `case-${counter}`);
  const dataDir = join(base, 'data');
  const outside = join(base, 'outside');
  await mkdir(join(dataDir, 'recordings'), { recursive: true });
  await mkdir(outside, { recursive: true });
  // The database lives outside the data dir, so file listings of the data dir hold only our files.
  const database = await openDatabase(`file:${join(base, 'db', 'vlive.db')}`);
  t.after(() => database.close());
  const db = database.prisma;
  const segments = new Set<string>();
  return {
    db,
    dataDir,
    outside,
    segments,
    channel: async (name, recordingRetainHours) =>
      (await db.virtualLive.create({ data: { name, sourceType: 'VOD', recordingEnabled: true, recordingRetainHours } })).id,
    segment: async (channelId, name, size, endedAgoMs) => {
      const rel = `recordings/${channelId}/${name}.mp4`;
      await mkdir(join(dataDir, 'recordings', channelId), { recursive: true });
      await writeFile(join(dataDir, rel), Buffer.alloc(size, 7));
      const durationSeconds = 60;
      await db.recording.create({
        data: {
          virtualLiveId: channelId,
          path: rel,
          startedAt: new Date(now.getTime() - endedAgoMs - durationSeconds * 1000),
          durationSeconds,
          sizeBytes: size,
        },
      });
      segments.add(rel);
      return rel;
    },
  };
}

/** Every file under `dir` (symlinks included, not followed), relative and sorted. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

async function rowPaths(db: PrismaClient): Promise<string[]> {
  return (await db.recording.findMany({ select: { path: true } })).map((r) => r.path).sort();
}

/** Runs `sweep` and checks that exactly `gone` left the disk and the table, and nothing else. */
async function expectOnlyDeleted(f: Fixture, gone: string[], sweep: () => Promise<unknown>): Promise<void> {
  const filesBefore = await listFiles(f.dataDir);
  const outsideBefore = await listFiles(f.outside);
  const rowsBefore = await rowPaths(f.db);
  await sweep();
  const minus = (list: string[]) => list.filter((p) => !gone.includes(p));
  assert.deepEqual(await listFiles(f.dataDir), minus(filesBefore), 'files under the data dir');
  assert.deepEqual(await listFiles(f.outside), outsideBefore, 'files outside the data dir');
  assert.deepEqual(await rowPaths(f.db), minus(rowsBefore), 'Recording rows');
  for (const kept of minus(rowsBefore).filter((p) => f.segments.has(p))) {
    const row = await f.db.recording.findUniqueOrThrow({ where: { path: kept } });
    assert.equal((await stat(join(f.dataDir, kept))).size, row.sizeBytes, `${kept} is intact`);
  }
}

describe('sweepRecordings', () => {
  it('removes by age exactly the segments older than their own channel allows', async (t) => {
    const f = await fixture(t);
    const a = await f.channel('a', 1);
    const b = await f.channel('b', 3);
    const forever = await f.channel('forever', 0);
    const a1 = await f.segment(a, 'a1', 10, minutes(150));
    const a2 = await f.segment(a, 'a2', 10, minutes(90));
    await f.segment(a, 'a3', 10, minutes(30));
    // Ended 59 minutes ago but started 60 s before: age counts from the end.
    await f.segment(a, 'a4', 10, minutes(59));
    const b1 = await f.segment(b, 'b1', 10, minutes(200));
    await f.segment(b, 'b2', 10, minutes(150));
    await f.segment(b, 'b3', 10, minutes(90));
    await f.segment(forever, 'f1', 10, minutes(100_000));
    // Not ours: a file no row names, next to the segments and beside them.
    await writeFile(join(f.dataDir, 'recordings', a, 'partial.mp4'), 'x');
    await writeFile(join(f.dataDir, 'recordings', 'README'), 'x');

    let result: Awaited<ReturnType<typeof sweepRecordings>> | undefined;
    await expectOnlyDeleted(f, [a1, a2, b1], async () => {
      result = await sweepRecordings(f.db, f.dataDir, noQuota, now);
    });
    assert.deepEqual(
      result?.deleted.map((d) => [d.path, d.reason, d.virtualLiveId]).sort(),
      [
        [a1, 'age', a],
        [a2, 'age', a],
        [b1, 'age', b],
      ],
    );
    assert.equal(result?.keptBytes, 50);
    assert.deepEqual(result?.skipped, []);

    const again = await sweepRecordings(f.db, f.dataDir, noQuota, now);
    assert.deepEqual(again.deleted, [], 'a second sweep finds nothing to do');
  });

  it('applies the channel quota to each channel alone, oldest first', async (t) => {
    const f = await fixture(t);
    const a = await f.channel('a', 1000);
    const b = await f.channel('b', 1000);
    const a1 = await f.segment(a, 'a1', 100, minutes(40));
    const a2 = await f.segment(a, 'a2', 100, minutes(30));
    await f.segment(a, 'a3', 100, minutes(20));
    await f.segment(a, 'a4', 100, minutes(10));
    // Older than all of a's, but b is within its quota.
    await f.segment(b, 'b1', 100, minutes(100));
    await f.segment(b, 'b2', 100, minutes(90));

    let result: Awaited<ReturnType<typeof sweepRecordings>> | undefined;
    await expectOnlyDeleted(f, [a1, a2], async () => {
      result = await sweepRecordings(f.db, f.dataDir, { channelQuotaBytes: 250, totalQuotaBytes: 0 }, now);
    });
    assert.deepEqual(
      result?.deleted.map((d) => [d.path, d.reason]),
      [
        [a1, 'channel-quota'],
        [a2, 'channel-quota'],
      ],
    );
    assert.equal(result?.keptBytes, 400);
  });

  it('applies the total quota across channels, globally oldest first', async (t) => {
    const f = await fixture(t);
    const a = await f.channel('a', 1000);
    const b = await f.channel('b', 1000);
    const t1 = await f.segment(a, 't1', 100, minutes(50));
    const t2 = await f.segment(b, 't2', 100, minutes(40));
    const t3 = await f.segment(a, 't3', 100, minutes(30));
    await f.segment(b, 't4', 100, minutes(20));
    await f.segment(a, 't5', 100, minutes(10));

    let result: Awaited<ReturnType<typeof sweepRecordings>> | undefined;
    await expectOnlyDeleted(f, [t1, t2, t3], async () => {
      result = await sweepRecordings(f.db, f.dataDir, { channelQuotaBytes: 0, totalQuotaBytes: 250 }, now);
    });
    assert.deepEqual(
      result?.deleted.map((d) => [d.path, d.reason]),
      [
        [t1, 'total-quota'],
        [t2, 'total-quota'],
        [t3, 'total-quota'],
      ],
    );
    assert.equal(result?.keptBytes, 200);
  });

  it('runs age, then channel quota, then total quota, counting only what is left', async (t) => {
    const f = await fixture(t);
    const a = await f.channel('a', 2);
    const b = await f.channel('b', 1000);
    const old = await f.segment(a, 'old', 1000, minutes(180));
    const a1 = await f.segment(a, 'a1', 100, minutes(60));
    const b1 = await f.segment(b, 'b1', 100, minutes(50));
    const a2 = await f.segment(a, 'a2', 100, minutes(40));
    await f.segment(b, 'b2', 100, minutes(30));
    await f.segment(a, 'a3', 100, minutes(10));

    let result: Awaited<ReturnType<typeof sweepRecordings>> | undefined;
    await expectOnlyDeleted(f, [old, a1, b1, a2], async () => {
      result = await sweepRecordings(f.db, f.dataDir, { channelQuotaBytes: 250, totalQuotaBytes: 250 }, now);
    });
    // a: 300 after age → a1 goes; b: 200 fits; all: 400 → b1 then a2 go.
    assert.deepEqual(
      result?.deleted.map((d) => [d.path, d.reason]),
      [
        [old, 'age'],
        [a1, 'channel-quota'],
        [b1, 'total-quota'],
        [a2, 'total-quota'],
      ],
    );
    assert.equal(result?.keptBytes, 200);
  });

  it('refuses paths that lead outside the recordings folder, keeping their rows and files', async (t) => {
    const f = await fixture(t);
    const ch = await f.channel('a', 1);
    const ended = new Date(now.getTime() - minutes(600));
    const row = (path: string) =>
      f.db.recording.create({ data: { virtualLiveId: ch, path, startedAt: ended, durationSeconds: 1, sizeBytes: 1 } });
    await writeFile(join(f.outside, 'victim.mp4'), 'x');
    await mkdir(join(f.dataDir, 'media'), { recursive: true });
    await writeFile(join(f.dataDir, 'media', 'clip.mp4'), 'x');
    await writeFile(join(f.dataDir, 'vlive.cfg'), 'x');
    // A folder inside recordings/ that is a symlink to one outside.
    await symlink(f.outside, join(f.dataDir, 'recordings', 'evil'));
    const refused = [
      '../outside/victim.mp4',
      'recordings/../../outside/victim.mp4',
      'media/clip.mp4',
      'vlive.cfg',
      'recordings',
      join(f.outside, 'victim.mp4'),
      'recordings/evil/victim.mp4',
      'recordings/a\0.mp4',
    ];
    for (const path of refused) await row(path);
    const legit = await f.segment(ch, 'seg', 10, minutes(600));

    let result: Awaited<ReturnType<typeof sweepRecordings>> | undefined;
    await expectOnlyDeleted(f, [legit], async () => {
      result = await sweepRecordings(f.db, f.dataDir, { channelQuotaBytes: 1, totalQuotaBytes: 1 }, now);
    });
    assert.deepEqual(result?.deleted.map((d) => d.path), [legit]);
    assert.deepEqual(result?.skipped.map((s) => s.path).sort(), [...refused].sort());
    assert.equal(result?.keptBytes, refused.length, 'refused rows still count as kept');
  });

  it('deletes the row of a segment whose file is already gone', async (t) => {
    const f = await fixture(t);
    const ch = await f.channel('a', 1);
    const seg = await f.segment(ch, 'gone', 10, minutes(120));
    await rm(join(f.dataDir, 'recordings', ch), { recursive: true });
    const result = await sweepRecordings(f.db, f.dataDir, noQuota, now);
    assert.deepEqual(result.deleted.map((d) => d.path), [seg]);
    assert.deepEqual(await rowPaths(f.db), []);
  });

  it('names the option when a quota is not a byte count', async (t) => {
    const f = await fixture(t);
    await assert.rejects(sweepRecordings(f.db, f.dataDir, { channelQuotaBytes: -1, totalQuotaBytes: 0 }, now), /policy\.channelQuotaBytes/);
    await assert.rejects(sweepRecordings(f.db, f.dataDir, { channelQuotaBytes: 0, totalQuotaBytes: NaN }, now), /policy\.totalQuotaBytes/);
  });
});

describe('sweepRecordings in a cluster (each node its own data dir, one database)', () => {
  it("sweeps its own node's rows only, counts only its own bytes, and adopts unnamed rows whose file it has", async (t) => {
    const f = await fixture(t);
    const bDir = join(f.dataDir, '..', 'data-b');
    const ch = await f.channel('a', 1);
    const named = async (rel: string, node: string | null) => f.db.recording.update({ where: { path: rel }, data: { nodeName: node } });
    const mineOld = await f.segment(ch, 'a-old', 10, minutes(120));
    await named(mineOld, 'node-a');
    const mineFresh = await f.segment(ch, 'a-fresh', 60, minutes(1));
    await named(mineFresh, 'node-a');
    // Rows of node B: its files are on B's disk, so A finds no file for them (A used to delete such rows).
    const theirs: string[] = [];
    for (const [name, size, ago] of [['b-old', 10, minutes(120)], ['b-fresh', 1000, minutes(1)]] as const) {
      const rel = `recordings/${ch}/${name}.mp4`;
      await mkdir(join(bDir, 'recordings', ch), { recursive: true });
      await writeFile(join(bDir, rel), Buffer.alloc(size, 7));
      await f.db.recording.create({ data: { virtualLiveId: ch, path: rel, nodeName: 'node-b', startedAt: new Date(now.getTime() - ago - 60_000), durationSeconds: 60, sizeBytes: size } });
      theirs.push(rel);
    }
    // Rows from before nodes were named: one whose file A has, one whose file is on no disk here.
    const unnamedHere = await f.segment(ch, 'u-here', 10, minutes(120));
    const unnamedAway = `recordings/${ch}/u-away.mp4`;
    await f.db.recording.create({ data: { virtualLiveId: ch, path: unnamedAway, startedAt: new Date(now.getTime() - minutes(122)), durationSeconds: 60, sizeBytes: 10 } });

    // Total quota 100 bytes: B's 1000 would exceed it, A's own 60 do not.
    const a = await sweepRecordings(f.db, f.dataDir, { channelQuotaBytes: 0, totalQuotaBytes: 100 }, now, { nodeName: 'node-a' });
    assert.deepEqual(a.deleted.map((d) => [d.path, d.reason]), [[mineOld, 'age'], [unnamedHere, 'age']]);
    assert.equal(a.keptBytes, 60, "A's quota counts A's bytes only");
    assert.deepEqual(await rowPaths(f.db), [mineFresh, ...theirs, unnamedAway].sort());
    assert.deepEqual(await listFiles(bDir), [...theirs].sort(), "B's files untouched");
    assert.equal((await f.db.recording.findUniqueOrThrow({ where: { path: unnamedAway } })).nodeName, null, 'a row whose file A lacks is not adopted');

    const b = await sweepRecordings(f.db, bDir, noQuota, now, { nodeName: 'node-b' });
    assert.deepEqual(b.deleted.map((d) => d.path), [theirs[0]]);
    assert.deepEqual(await rowPaths(f.db), [mineFresh, theirs[1], unnamedAway].sort());
    assert.deepEqual(await listFiles(join(f.dataDir, 'recordings')), [relative('recordings', mineFresh)]);
  });
});

describe('sweepDeletedChannels', () => {
  it('removes the folders and snapshots of channels that no longer exist, and nothing else', async (t) => {
    const f = await fixture(t);
    const kept = await f.channel('kept', 0);
    const seg = await f.segment(kept, 's', 10, 0);
    const gone = 'cm0deleted0channel';
    await mkdir(join(f.dataDir, 'recordings', gone, '1700000000000'), { recursive: true });
    await writeFile(join(f.dataDir, 'recordings', gone, '1700000000000', 'seg-00000.mp4'), 'x');
    await mkdir(join(f.dataDir, 'snapshots'), { recursive: true });
    for (const name of [`${kept}.jpg`, `${gone}.jpg`, `${gone}.jpg.part`, 'not a channel.jpg']) await writeFile(join(f.dataDir, 'snapshots', name), 'j');
    await writeFile(join(f.dataDir, 'recordings', 'stray file'), 's');

    assert.deepEqual(await sweepDeletedChannels(f.db, f.dataDir), [gone]);
    assert.deepEqual(await listFiles(f.dataDir), [seg, 'recordings/stray file', `snapshots/${gone}.jpg.part`, `snapshots/${kept}.jpg`, 'snapshots/not a channel.jpg'].sort());
    assert.deepEqual(await sweepDeletedChannels(f.db, join(f.dataDir, 'missing')), []);
  });
});

describe('sweepSnapshots', () => {
  it('deletes only the *.jpg files older than the limit', async () => {
    counter += 1;
    const base = join(scratch, `case-${counter}`);
    const dir = join(base, 'snapshots');
    await mkdir(dir, { recursive: true });
    const old = new Date(now.getTime() - 120_000);
    const fresh = new Date(now.getTime() - 30_000);
    const put = async (name: string, mtime: Date) => {
      await writeFile(join(dir, name), 'jpeg');
      await utimes(join(dir, name), mtime, mtime);
    };
    await put('old1.jpg', old);
    await put('old2.jpg', old);
    await put('fresh.jpg', fresh);
    await put('old.png', old);
    await put('old.jpg.tmp', old);
    await mkdir(join(dir, 'folder.jpg'));
    await utimes(join(dir, 'folder.jpg'), old, old);
    await writeFile(join(base, 'target.jpg'), 'keep');
    await utimes(join(base, 'target.jpg'), old, old);
    await symlink(join(base, 'target.jpg'), join(dir, 'link.jpg'));

    assert.deepEqual(await sweepSnapshots(dir, 60, now), ['old1.jpg', 'old2.jpg']);
    assert.deepEqual((await readdir(dir)).sort(), ['folder.jpg', 'fresh.jpg', 'link.jpg', 'old.jpg.tmp', 'old.png']);
    assert.equal((await stat(join(base, 'target.jpg'))).isFile(), true);
    assert.deepEqual(await sweepSnapshots(join(base, 'missing'), 60, now), []);
  });
});

describe('removeChannelRecordings', () => {
  it("deletes one channel's folder and nothing else", async () => {
    counter += 1;
    const dataDir = join(scratch, `case-${counter}`, 'data');
    const outside = join(scratch, `case-${counter}`, 'outside');
    await mkdir(join(dataDir, 'recordings', 'chan_A-1', 'sub'), { recursive: true });
    await writeFile(join(dataDir, 'recordings', 'chan_A-1', 'sub', 'x.mp4'), 'x');
    await mkdir(join(dataDir, 'recordings', 'other'), { recursive: true });
    await writeFile(join(dataDir, 'recordings', 'other', 'y.mp4'), 'y');
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, 'z.mp4'), 'z');
    await symlink(outside, join(dataDir, 'recordings', 'linked'));

    await removeChannelRecordings(dataDir, 'chan_A-1');
    await removeChannelRecordings(dataDir, 'never-recorded');
    // A symlinked folder: the link goes, what it points at stays.
    await removeChannelRecordings(dataDir, 'linked');
    assert.deepEqual(await listFiles(dataDir), ['recordings/other/y.mp4']);
    assert.deepEqual(await listFiles(outside), ['z.mp4']);

    for (const bad of ['', '..', '.', 'a/b', '../other', 'a\0', 'ü']) {
      await assert.rejects(removeChannelRecordings(dataDir, bad), /channelId must match/);
    }
    assert.deepEqual(await listFiles(dataDir), ['recordings/other/y.mp4']);
  });
});

describe('startRetention', () => {
  it('sweeps recordings and snapshots on its own timer, and not after stop()', async (t) => {
    const f = await fixture(t);
    const hour = await f.channel('an hour', 1);
    const forever = await f.channel('forever', 0);
    // The fixture dates segments from a fixed day long past, so both ended far more than an hour ago.
    const old = await f.segment(hour, 'old', 10, minutes(120));
    await f.segment(forever, 'kept', 10, minutes(120));
    const snapshots = join(f.dataDir, 'snapshots');
    await mkdir(snapshots, { recursive: true });
    const longAgo = new Date(Date.now() - 120_000);
    // Named after live channels: the timer also removes the snapshots of channels that are gone.
    const oldSnap = `snapshots/${hour}.jpg`;
    await writeFile(join(f.dataDir, oldSnap), 'jpeg');
    await utimes(join(f.dataDir, oldSnap), longAgo, longAgo);
    await writeFile(join(snapshots, `${forever}.jpg`), 'jpeg');

    const config = { dataDir: f.dataDir, recordingChannelQuotaBytes: 0, recordingTotalQuotaBytes: 0, snapshotRetainSeconds: 60, retentionSweepSeconds: 0.1 };
    const retention = startRetention(f.db, config, { nodeName: null }, createLogger({ proc: 'retention-test' }));
    try {
      // Nobody calls sweep(): only the timer can delete them.
      await expectOnlyDeleted(f, [old, oldSnap], async () => {
        const deadline = Date.now() + 5_000;
        while ((await rowPaths(f.db)).includes(old) || (await listFiles(f.dataDir)).includes(oldSnap)) {
          assert.ok(Date.now() < deadline, 'the timer swept within 5 s');
          await new Promise((r) => setTimeout(r, 50));
        }
      });
    } finally {
      await retention.stop();
    }
    const late = await f.segment(hour, 'late', 10, minutes(120));
    await new Promise((r) => setTimeout(r, 500));
    assert.ok((await rowPaths(f.db)).includes(late), 'a stopped timer sweeps nothing');
  });
});
