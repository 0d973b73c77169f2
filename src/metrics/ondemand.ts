/**
 * Viewer counts, on-demand starts and idle stops, and schedule runs. The
 * viewer gauge is read from the viewer book at scrape time; the counters are
 * fed by src/ondemand/ and src/schedule/ through the hooks returned here.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { OnDemandCounters, StartTrigger } from '../ondemand/manager.js';
import { scheduleActions, type ScheduleAction } from '../schedule/input.js';
import type { RunOutcome } from '../schedule/scheduler.js';

const triggers: readonly StartTrigger[] = ['viewer', 'touch'];
const outcomes: readonly RunOutcome[] = ['done', 'failed', 'skipped'];

export class OnDemandMetrics {
  readonly counters: OnDemandCounters;
  readonly scheduleRun: (action: ScheduleAction, outcome: RunOutcome) => void;

  /** @param viewers Channels the viewer book knows, with their player counts. */
  constructor(registry: Registry, viewers: () => Iterable<[string, number]>) {
    const registers = [registry];
    new Gauge({
      name: 'vlive_channel_viewers',
      help: 'RTMP players on the channel at the managed origin (on_play/on_play_done, checked against the origin\'s /stat). HLS players are not counted. A channel without players has no series.',
      labelNames: ['channel'] as const,
      registers,
      collect() {
        this.reset();
        for (const [channel, n] of viewers()) this.set({ channel }, n);
      },
    });
    const starts = new Counter({
      name: 'vlive_ondemand_starts_total',
      help: 'Starts of on-demand channels, by what asked for them: a viewer at the origin (on_play) or touchVirtualLive.',
      labelNames: ['trigger'] as const,
      registers,
    });
    const idleStops = new Counter({
      name: 'vlive_ondemand_idle_stops_total',
      help: 'On-demand channels stopped for idleness: no viewer or touch for touchDurationSeconds, then idleDelaySeconds more.',
      registers,
    });
    const runs = new Counter({
      name: 'vlive_schedule_runs_total',
      help: 'Scheduled runs, by action (START, STOP) and outcome: done, failed, or skipped (found later than VLIVE_SCHEDULE_GRACE_SECONDS).',
      labelNames: ['action', 'outcome'] as const,
      registers,
    });
    for (const trigger of triggers) starts.inc({ trigger }, 0);
    for (const action of scheduleActions) for (const outcome of outcomes) runs.inc({ action, outcome }, 0);
    this.counters = { started: (trigger) => starts.inc({ trigger }), idleStopped: () => idleStops.inc() };
    this.scheduleRun = (action, outcome) => runs.inc({ action, outcome });
  }
}
