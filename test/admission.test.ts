/**
 * Admission control's CPU budget under real load: burner processes
 * (test/fixtures/cpu-burner.ts) load the machine, as someone else's work or
 * as a stand-in worker whose CPU the admission measures from /proc like a
 * real one's. Reads the real /proc/stat, so every expectation is computed
 * from the load the admission itself saw just before the burst: the tests
 * hold on a machine that others keep busy.
 */
import assert from 'node:assert/strict';
import { cpus } from 'node:os';
import { test } from 'node:test';
import { Admission, type ChannelKind, type WorkerLoad } from '../src/channels/admission.js';
import { priorCoresPerChannel } from '../src/channels/channel-cost.js';
import { loadConfig } from '../src/config.js';
import { startCpuLoad } from './helpers/load.js';
import { eventually } from './helpers/service.js';

const budget = loadConfig({}).cpuBudget;
const machineCores = cpus().length;

function standInWorker(pid: number | undefined, pipelines: number): WorkerLoad {
  assert.ok(pid !== undefined);
  return { state: 'ready', rssBytes: 0, pid, pipelines, relays: 0 };
}

/** Starts checked back to back until one is refused (at most `limit`), as a burst of requests is. */
function burst(admission: Admission, kind: ChannelKind, limit: number): { admitted: number; refusal: string } {
  for (let admitted = 0; admitted < limit; admitted++) {
    try {
      admission.check(kind);
    } catch (err) {
      return { admitted, refusal: (err as Error).message };
    }
  }
  return { admitted: limit, refusal: '' };
}

/** How many starts fit under `cpuBudget` by the admission's own figures now: its load, its reservations, its cost. */
function room(admission: Admission, cpuBudget: number, kind: ChannelKind): number {
  return Math.max(0, Math.floor((cpuBudget - admission.cpuBusy - admission.reservedCpu()) / admission.startCost(kind)));
}

test('a burst of starts stops at the budget when the channels really load the machine', async (t) => {
  // A stand-in worker: a real process burning one core that hosts (it says)
  // ten VOD channels, so channels that really cost a tenth of a core each.
  const load = startCpuLoad(1);
  t.after(() => load.stop());
  const admission = new Admission({
    cpuBudget: budget,
    workerMemoryBudgetBytes: 2 ** 40,
    sampleIntervalMs: 250,
    workers: () => [standInWorker(load.pids[0], 10)],
  });
  t.after(() => admission.dispose());
  // The machine load is smoothed over 5 s from zero: 60 % of the burner's share shows after about 5 s.
  await eventually(
    async () => admission.cpuBusy >= 0.6 / machineCores && admission.startCost('vod') * machineCores >= 8 * priorCoresPerChannel.vod,
    30_000,
    'the load and the channels’ cost to show',
  );
  const expected = room(admission, budget, 'vod');
  const cost = admission.startCost('vod');
  const atPrior = Math.max(0, Math.floor((budget - admission.cpuBusy) / (priorCoresPerChannel.vod / machineCores)));
  const { admitted, refusal } = burst(admission, 'vod', 1000);
  t.diagnostic(`machine ${admission.cpuBusy.toFixed(3)} busy, a VOD channel ${cost.toFixed(4)} of it: ${admitted} admitted (${atPrior} at the prior)`);

  assert.match(refusal, /more is on its way from channels just started/);
  assert.ok(Math.abs(admitted - expected) <= 1, `${admitted} admitted; room for ${expected} at ${cost} of the machine each, the machine ${admission.cpuBusy} busy`);
  assert.ok(admitted * 4 <= atPrior + 4, `${admitted} admitted: the measured cost, not the prior's ${atPrior}, set the stop`);
  const now = Date.now();
  const reserved = admission.reservedCpu(now);
  assert.ok(Math.abs(reserved - admitted * cost) < cost, `reserved ${reserved} for ${admitted} starts of ${cost}`);
  // At most (not below): on a machine others already load past the budget, nothing is admitted and nothing reserved.
  assert.ok(admission.reservedCpu(now + 15_000) <= reserved * 0.06, `faded after three time constants from ${reserved}`);
});

test('load outside the workers counts against the budget but does not make channels dear', async (t) => {
  // Someone else's work takes one core; the workers' stand-in burns what ten
  // benchmark VOD channels do (0.0015 cores each).
  const other = startCpuLoad(1);
  const worker = startCpuLoad(10 * 0.0015);
  t.after(() => Promise.all([other.stop(), worker.stop()]));
  const workers = (): WorkerLoad[] => [standInWorker(worker.pids[0], 10)];
  const roomy = new Admission({ cpuBudget: budget, workerMemoryBudgetBytes: 2 ** 40, sampleIntervalMs: 250, workers });
  // A budget below the load the other work alone puts on the machine.
  const tightBudget = 0.5 / machineCores;
  const tight = new Admission({ cpuBudget: tightBudget, workerMemoryBudgetBytes: 2 ** 40, sampleIntervalMs: 250, workers });
  t.after(() => {
    roomy.dispose();
    tight.dispose();
  });
  await eventually(async () => roomy.cpuBusy >= 0.6 / machineCores && tight.cpuBusy >= 0.6 / machineCores, 30_000, 'the load to show');

  const vod = roomy.startCost('vod') * machineCores;
  assert.ok(vod < 1.5 * priorCoresPerChannel.vod, `a VOD channel is expected to cost ${vod} cores with a core of other work on the machine`);
  const expected = room(roomy, budget, 'vod');
  const { admitted, refusal } = burst(roomy, 'vod', 5000);
  t.diagnostic(`machine ${roomy.cpuBusy.toFixed(3)} busy, a VOD channel ${vod.toFixed(4)} cores: ${admitted} admitted`);
  assert.match(refusal, /more is on its way from channels just started/);
  assert.ok(Math.abs(admitted - expected) <= 1, `${admitted} admitted; room for ${expected}, the machine ${roomy.cpuBusy} busy`);

  assert.throws(
    () => tight.check('vod'),
    (err: Error) => {
      const m = /the machine is (\d+) % busy and 0\.0 % more is on its way/.exec(err.message);
      assert.ok(m?.[1] !== undefined && Number(m[1]) / 100 > tightBudget, err.message);
      return true;
    },
  );
});

test('a budget of 1 turns the CPU check off; the memory budget still holds', () => {
  let rssBytes = 0;
  const admission = new Admission({
    cpuBudget: 1,
    workerMemoryBudgetBytes: 2 ** 40,
    sampleIntervalMs: 60_000,
    workers: () => [{ state: 'ready', rssBytes, pid: null, pipelines: 0, relays: 0 }],
  });
  for (let i = 0; i < 500; i++) admission.check(i % 2 === 0 ? 'vod' : 'relay');
  assert.equal(admission.reservedCpu(), 0);
  rssBytes = 2 ** 41;
  assert.throws(() => admission.check('vod'), /memory budget is spent/);
  admission.dispose();
});
