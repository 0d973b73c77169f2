/**
 * The channel cost estimator on synthetic samples and a simulated clock: what
 * it learns from the workers' CPU, what it must not learn from, and how the
 * prior gives way.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ChannelCostEstimator,
  costWindowMs,
  minShareOfPrior,
  priorCoresPerChannel,
  priorWeightChannels,
  type WorkerCpuSample,
} from '../src/channels/channel-cost.js';

/** A worker process as the simulation runs it: it burns `cores` while it lives. */
interface SimWorker extends WorkerCpuSample {
  cores: number;
}

/** A simulated clock and the workers it advances; one sample per `stepMs`, like the admission's timer. */
class Sim {
  atMs = 1_000_000;
  readonly est = new ChannelCostEstimator();
  constructor(readonly workers: SimWorker[]) {
    this.est.observe(this.atMs, workers);
  }

  run(seconds: number, stepMs = 1000): void {
    for (let t = 0; t < seconds * 1000; t += stepMs) {
      this.atMs += stepMs;
      for (const w of this.workers) w.cpuSeconds += (w.cores * stepMs) / 1000;
      this.est.observe(this.atMs, this.workers);
    }
  }
}

function worker(pid: number, pipelines: number, relays: number, cores: number): SimWorker {
  return { pid, cpuSeconds: 100, pipelines, relays, cores };
}

/** What the estimator converges to: the measurement blended with the prior's pseudo-channels. */
function converged(measuredCores: number, priorCores: number): number {
  const pseudo = priorWeightChannels * priorCoresPerChannel.vod;
  return (measuredCores + pseudo) / (priorCores + pseudo);
}

function near(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tolerance * expected, `${what}: ${actual}, expected ${expected} ± ${tolerance * 100} %`);
}

test('the prior before anything is measured, and while the workers host nothing however busy they are', () => {
  const sim = new Sim([worker(11, 0, 0, 0.9), worker(12, 0, 0, 0.002)]);
  assert.equal(sim.est.coresPerChannel('vod'), priorCoresPerChannel.vod);
  assert.equal(sim.est.coresPerChannel('relay'), priorCoresPerChannel.relay);
  sim.run(60);
  assert.equal(sim.est.coresPerChannel('vod'), priorCoresPerChannel.vod, 'an idle worker’s CPU is no channel’s');
});

test('learns what channels cost from the workers that host them', () => {
  // The benchmark's VOD channel (0.0015 cores) and each worker's own 0.002 cores.
  const sim = new Sim([worker(11, 50, 0, 50 * 0.0015 + 0.002), worker(12, 50, 0, 50 * 0.0015 + 0.002)]);
  sim.run((6 * costWindowMs) / 1000);
  const scale = converged(2 * (50 * 0.0015 + 0.002), 100 * priorCoresPerChannel.vod);
  near(sim.est.coresPerChannel('vod'), scale * priorCoresPerChannel.vod, 0.01, 'VOD');
  near(sim.est.coresPerChannel('relay'), scale * priorCoresPerChannel.relay, 0.01, 'relay');
  assert.ok(sim.est.coresPerChannel('vod') < 0.7 * priorCoresPerChannel.vod, 'cheaper than the prior, as measured');
});

test('one running channel barely moves the prior, whatever else the machine does', () => {
  // The case: npm start's demo channel alone. The build, the service's
  // start-up and others' work are not in any worker, so they cannot count.
  const sim = new Sim([worker(11, 1, 0, 0.0015 + 0.002), worker(12, 0, 0, 0.002)]);
  sim.run(60);
  const vod = sim.est.coresPerChannel('vod');
  near(vod, converged(0.0035, priorCoresPerChannel.vod) * priorCoresPerChannel.vod, 0.01, 'VOD');
  assert.ok(vod < 1.1 * priorCoresPerChannel.vod, `${vod}`);
});

test('measurement takes over from the prior as time is measured', () => {
  // Channels that really cost 4× the prior: the measurement's weight grows as
  // 1 − e^(−t/window), against the prior's fixed pseudo-channels.
  const measured = 40 * 4 * priorCoresPerChannel.vod;
  const prior = 40 * priorCoresPerChannel.vod;
  const sim = new Sim([worker(11, 40, 0, measured)]);
  let elapsedMs = 0;
  for (const seconds of [1, costWindowMs / 1000 - 1, (4 * costWindowMs) / 1000]) {
    sim.run(seconds);
    elapsedMs += seconds * 1000;
    const mass = 1 - Math.exp(-elapsedMs / costWindowMs);
    near(sim.est.coresPerChannel('vod'), converged(mass * measured, mass * prior) * priorCoresPerChannel.vod, 1e-9, `after ${elapsedMs} ms`);
  }
  assert.ok(sim.est.coresPerChannel('vod') > 3 * priorCoresPerChannel.vod);
});

test('a burst of starts costs its one-off work for a while, then fades to the steady cost', () => {
  const w = worker(11, 40, 0, 40 * 0.0015);
  const sim = new Sim([w]);
  sim.run(60);
  const steady = sim.est.coresPerChannel('vod');
  // 40 more start within a second and burn 2 s of CPU doing it (50 ms each).
  w.pipelines = 80;
  w.cores = 2 + 80 * 0.0015;
  sim.run(1);
  w.cores = 80 * 0.0015;
  const after = sim.est.coresPerChannel('vod');
  assert.ok(after > 2 * steady, `right after the burst: ${after} against ${steady} before`);
  sim.run((4 * costWindowMs) / 1000);
  near(sim.est.coresPerChannel('vod'), converged(80 * 0.0015, 80 * priorCoresPerChannel.vod) * priorCoresPerChannel.vod, 0.03, 'four windows later');
});

test('a replaced worker counts from its new process’s second sample; a missed read restarts the worker’s interval', () => {
  const w = worker(11, 20, 0, 20 * 0.0015);
  const sim = new Sim([w]);
  sim.run(60);
  const before = sim.est.coresPerChannel('vod');
  // The new process has burnt 3 s of CPU starting up (and a total below the old one's).
  w.pid = 21;
  w.cpuSeconds = 3;
  sim.run(1);
  near(sim.est.coresPerChannel('vod'), before, 0.001, 'the new pid’s first sample');
  sim.atMs += 5000;
  w.cpuSeconds += 5;
  sim.est.observe(sim.atMs, []);
  sim.atMs += 1000;
  w.cpuSeconds += 0.03;
  sim.est.observe(sim.atMs, [w]);
  near(sim.est.coresPerChannel('vod'), before, 0.001, 'back after a missed read');
  sim.run(60);
  near(sim.est.coresPerChannel('vod'), before, 0.01, 'steady again');
});

test('relays and VOD channels share one scale, set by the priors’ ratio', () => {
  // Real costs in the priors' ratio, 0.6× each: both estimates carry the same scale.
  const vod = 0.6 * priorCoresPerChannel.vod;
  const relay = 0.6 * priorCoresPerChannel.relay;
  const sim = new Sim([worker(11, 30, 10, 20 * vod + 10 * relay), worker(12, 30, 20, 10 * vod + 20 * relay)]);
  sim.run((6 * costWindowMs) / 1000);
  const scale = converged(30 * vod + 30 * relay, 30 * priorCoresPerChannel.vod + 30 * priorCoresPerChannel.relay);
  near(sim.est.coresPerChannel('vod'), scale * priorCoresPerChannel.vod, 0.01, 'VOD');
  near(sim.est.coresPerChannel('relay') / sim.est.coresPerChannel('vod'), priorCoresPerChannel.relay / priorCoresPerChannel.vod, 1e-9, 'ratio');
});

test('pipelines that burn nothing cannot make a channel free', () => {
  const sim = new Sim([worker(11, 200, 0, 0)]);
  sim.run(120);
  assert.equal(sim.est.coresPerChannel('vod'), minShareOfPrior * priorCoresPerChannel.vod);
});
