/**
 * The one status writer (src/channels/writer.ts) against a real SQLite
 * database: legal moves are written and published once, an illegal one
 * throws the coded error and leaves the record and the subscribers alone,
 * a detail write needs no edge, and a corrupt status is refused when read.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StatusEvents, type StatusChange } from '../src/channels/events.js';
import { ChannelRepository } from '../src/channels/repository.js';
import { IllegalTransitionError } from '../src/channels/status.js';
import { WarningBook } from '../src/channels/warnings.js';
import { StatusWriter } from '../src/channels/writer.js';
import { openDatabase, type Database } from '../src/db/client.js';
import { VliveError } from '../src/errors.js';
import { createLogger } from '../src/log.js';

describe('status writer', () => {
  let dir: string;
  let db: Database;
  let repo: ChannelRepository;
  const events = new StatusEvents();
  const seen: StatusChange[] = [];
  const warnings = new WarningBook();
  let writer: StatusWriter;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vlive-writer-'));
    db = await openDatabase(`file:${join(dir, 'vlive.db')}`);
    repo = new ChannelRepository(db.prisma);
    events.subscribe((c) => seen.push(c));
    writer = new StatusWriter({
      repo,
      events,
      warnings,
      log: createLogger({ proc: 'writer-test' }),
      viewersOf: () => 7,
      onLeaseLost: () => assert.fail('no lease on a single node'),
    });
  });

  after(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  const newChannel = async (name: string): Promise<string> =>
    (await repo.create({ name, sourceType: 'ONLINE', vodResourceId: null, sourceUrl: 'rtmp://127.0.0.1/live/x', loop: true, connectTimeoutMs: 1000, pushTargets: [], playlist: [] })).id;

  it('writes a legal move, and publishes it once with its previous status', async () => {
    const id = await newChannel('legal');
    seen.length = 0;
    const starting = await writer.transition(id, 'STARTING', { errorString: null });
    assert.equal(starting.status, 'STARTING');
    const living = await writer.transition(id, 'LIVING', { activeSource: 'BACKUP', reconnectAttempts: 0 });
    assert.equal(living.status, 'LIVING');
    assert.equal((await repo.get(id))?.activeSource, 'BACKUP');
    assert.deepEqual(
      seen.map((c) => [c.previous, c.status, c.activeSource, c.viewers]),
      [
        ['STOPPED', 'STARTING', 'PRIMARY', 7],
        ['STARTING', 'LIVING', 'BACKUP', 7],
      ],
    );
  });

  it('refuses an illegal move with a coded error, writing and publishing nothing', async () => {
    const id = await newChannel('illegal');
    seen.length = 0;
    await assert.rejects(writer.transition(id, 'LIVING', { errorString: 'must not land' }), (err: unknown) => {
      assert.ok(err instanceof IllegalTransitionError);
      assert.ok(err instanceof VliveError);
      assert.equal(err.code, 'INVALID_STATE');
      assert.equal(err.from, 'STOPPED');
      assert.equal(err.to, 'LIVING');
      assert.match(err.message, /STOPPED → LIVING/);
      return true;
    });
    const rec = await repo.get(id);
    assert.equal(rec?.status, 'STOPPED');
    assert.equal(rec?.errorString, null);
    assert.deepEqual(seen, []);
  });

  it('writes details under the same status without an edge, and a stop clears the warnings', async () => {
    const id = await newChannel('details');
    await writer.transition(id, 'STARTING');
    await writer.transition(id, 'LIVING');
    warnings.set(id, 'recording', 'recording: disk full');
    seen.length = 0;
    await writer.transition(id, 'LIVING', { activeSource: 'SLATE' });
    assert.deepEqual(seen.map((c) => [c.previous, c.status, c.activeSource, c.warnings]), [['LIVING', 'LIVING', 'SLATE', ['recording: disk full']]]);
    await writer.transition(id, 'STOPPED', { stoppedAt: new Date() });
    assert.deepEqual(warnings.of(id), []);
    assert.deepEqual(seen.at(-1)?.warnings, []);
  });

  it('refuses to read a status outside the union', async () => {
    const id = await newChannel('corrupt');
    await db.prisma.virtualLive.update({ where: { id }, data: { status: 'PAUSED' } });
    await assert.rejects(repo.get(id), /corrupt status PAUSED/);
    await assert.rejects(writer.transition(id, 'STOPPED'), /corrupt status PAUSED/);
  });
});
