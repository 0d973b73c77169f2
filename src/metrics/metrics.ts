/**
 * The service's Prometheus registry and everything that feeds it. One
 * registry per app (not prom-client's global one), so several apps in one
 * process (tests) keep their series apart. Served at GET /metrics.
 */
import type { ServerResponse } from 'node:http';
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { StatusEvents } from '../channels/events.js';
import { liveStatuses } from '../channels/status.js';
import type { PipelineStats } from '../pool/pipeline-spec.js';
import { ChannelMetrics } from './channels.js';
import { GraphqlMetrics } from './graphql.js';
import { PoolMetrics, type PoolSource } from './pool.js';

const lintFailingDefaults = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export interface MetricsDeps {
  pool: PoolSource;
  events: StatusEvents;
  /** The status of every channel in the database. */
  channelStatuses: () => Promise<string[]>;
  /** The workers' heartbeat period, ms; heartbeats are picked up four times as often. */
  heartbeatIntervalMs: number;
}

export interface Metrics {
  readonly registry: Registry;
  /** The exposition text, after reading /proc and the database. */
  render(): Promise<string>;
  /** GET /metrics. */
  route(res: ServerResponse): Promise<void>;
  /** Operation metrics for Apollo Server. */
  apolloPlugin(): ApolloServerPlugin<BaseContext>;
  dispose(): void;
}

/** Period of the event-loop lag monitor's timer (vlive_nodejs_eventloop_lag_*), ms. */
export const eventLoopSampleMs = 100;

/**
 * Creates the registry and its feeds. Call it after the pool started and
 * before any channel is placed: the first reading of the (then idle) workers
 * is the base of the per-channel memory estimate.
 */
export async function createMetrics(deps: MetricsDeps): Promise<Metrics> {
  const registry = new Registry();
  // The event-loop lag monitor is a timer; at prom-client's default 10 ms it
  // woke the idle service 100 times a second, half of its idle CPU. The
  // media path runs in the workers, so 100 ms is precise enough here: a
  // stall of 100 ms or more is always seen, shorter ones sometimes. The
  // vlive_nodejs_eventloop_lag_* series count from one firing to the next,
  // so they read 0.1 s with no delay at all (the dashboard takes it off).
  collectDefaultMetrics({ register: registry, prefix: 'vlive_', eventLoopMonitoringPrecision: eventLoopSampleMs });
  // prom-client names these gauges *_total, which Prometheus reserves for
  // counters (promtool check metrics fails them); the handle count is not worth that.
  for (const name of lintFailingDefaults) registry.removeSingleMetric(`vlive_${name}`);
  const source = deps.pool;
  const channels = new ChannelMetrics(
    registry,
    typeof source.channelCounters === 'function' ? (id) => source.channelCounters?.(id) ?? null : null,
  );
  const pool = new PoolMetrics(registry, deps.pool, channels);
  const graphql = new GraphqlMetrics(registry);
  const byStatus = new Gauge({
    name: 'vlive_channels',
    help: 'Channels by observed status (STOPPED, STARTING, LIVING, RECONNECTING, ERROR), from the database at scrape time.',
    labelNames: ['status'] as const,
    registers: [registry],
  });

  await pool.refresh();
  const unsubscribe = deps.events.subscribe((change) => channels.onStatus(change));

  // The pool keeps only the last heartbeat of each worker, as a new array
  // each time; polling faster than heartbeats arrive sees every one of them
  // (gap histograms need each heartbeat exactly once).
  const lastStats = new Map<string, readonly PipelineStats[]>();
  const pickUpHeartbeats = (): void => {
    const workers = deps.pool.workers();
    for (const w of workers) {
      if (lastStats.get(w.id) === w.stats) continue;
      lastStats.set(w.id, w.stats);
      channels.onHeartbeat(w.id, w.stats);
    }
    const current = new Set(workers.map((w) => w.id));
    for (const id of lastStats.keys()) if (!current.has(id)) lastStats.delete(id);
  };
  const poller = setInterval(pickUpHeartbeats, Math.max(50, Math.floor(deps.heartbeatIntervalMs / 4)));
  poller.unref();

  const render = async (): Promise<string> => {
    pickUpHeartbeats();
    channels.applyTotals();
    const [statuses] = await Promise.all([deps.channelStatuses(), pool.refresh()]);
    for (const status of liveStatuses) byStatus.set({ status }, statuses.filter((s) => s === status).length);
    return registry.metrics();
  };

  return {
    registry,
    render,
    route: async (res) => {
      const text = await render();
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(text);
    },
    apolloPlugin: () => graphql.plugin(),
    dispose: () => {
      clearInterval(poller);
      unsubscribe();
      registry.clear();
    },
  };
}
