/**
 * The CPU reservation of admission control: a burst of starts is refused
 * before the machine's smoothed load shows it, and the reservation fades as
 * the load takes over. Reads the real /proc/stat; the budget is set around
 * the load this machine shows right now, so the test holds on a busy one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Admission } from '../src/channels/admission.js';

test('a burst of starts stops at the budget, then the reservation fades', async () => {
  // The probe samples exactly as the admission below will (its two start-up
  // samples, 200 ms apart), so both see the same smoothed load unless the
  // machine changes within the second between them.
  const probe = new Admission({ cpuBudget: 0.99, workerMemoryBudgetBytes: 2 ** 40, sampleIntervalMs: 60_000 });
  await new Promise((r) => setTimeout(r, 400));
  const busy = probe.cpuBusy;
  probe.dispose();
  // Room for about ten starts of the default cost (1 % each) above today's load.
  const admission = new Admission({ cpuBudget: Math.min(0.98, busy + 0.105), workerMemoryBudgetBytes: 2 ** 40, sampleIntervalMs: 60_000 });
  await new Promise((r) => setTimeout(r, 400));
  let admitted = 0;
  let refusal = '';
  for (let i = 0; i < 50; i++) {
    try {
      admission.check([{ state: 'ready', rssBytes: 0 }], 0);
      admitted += 1;
    } catch (err) {
      refusal = (err as Error).message;
      break;
    }
  }
  assert.ok(admitted >= 5 && admitted <= 20, `${admitted} starts admitted in a burst`);
  assert.match(refusal, /more is on its way from channels just started/);
  const now = Date.now();
  const reserved = admission.reservedCpu(now);
  assert.ok(Math.abs(reserved - admitted * 0.01) < 0.01, `reserved ${reserved}`);
  assert.ok(admission.reservedCpu(now + 15_000) < reserved * 0.06, 'faded after three time constants');
  admission.dispose();
});

test('a budget of 1 turns the CPU check off', () => {
  const admission = new Admission({ cpuBudget: 1, workerMemoryBudgetBytes: 2 ** 40, sampleIntervalMs: 60_000 });
  for (let i = 0; i < 500; i++) admission.check([{ state: 'ready', rssBytes: 0 }], i);
  assert.throws(() => admission.check([{ state: 'ready', rssBytes: 2 ** 41 }], 0), /memory budget is spent/);
  admission.dispose();
});
