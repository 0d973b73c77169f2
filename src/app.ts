/**
 * The composition root: config → database → origin → pool → channels → API.
 * main.ts runs it as the service; end-to-end tests run it in-process with
 * real worker processes, a real origin and a scratch database.
 */
import { mkdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { repoPath } from './paths.js';
import { Admission } from './channels/admission.js';
import { StatusEvents } from './channels/events.js';
import { ReconnectBudget } from './channels/reconnect-budget.js';
import { ChannelRepository } from './channels/repository.js';
import { ChannelService } from './channels/service.js';
import { CleanupStack } from './cleanups.js';
import { startCluster } from './cluster/node.js';
import type { Config } from './config.js';
import { openDatabase } from './db/client.js';
import type { Logger } from './log.js';
import { Conformer } from './vods/conform.js';
import { MediaPreparer } from './vods/preparer.js';
import { VodRegistry } from './vods/registry.js';
import { createMetrics } from './metrics/metrics.js';
import { ExternalOrigin } from './origin/external.js';
import { ManagedOrigin } from './origin/nginx.js';
import type { Origin } from './origin/origin.js';
import { fullJitterBackoff } from './pool/backoff.js';
import { WorkerPool } from './pool/pool.js';
import { startRetention } from './recording/sweeper.js';
import { loadTokens } from './api/auth.js';
import { OnDemandMetrics } from './metrics/ondemand.js';
import { PlayoutMetrics } from './metrics/playout.js';
import { OnDemand } from './ondemand/manager.js';
import { feedStatusEvents } from './webhooks/events.js';
import { WebhookOutbox } from './webhooks/outbox.js';
import { startNotifyServer } from './ondemand/notify.js';
import { ViewerBook } from './ondemand/viewers.js';
import { ScheduleRepository } from './schedule/repository.js';
import { Scheduler } from './schedule/scheduler.js';
import { ProgrammeService } from './schedule/programme-service.js';
import { programmePlan } from './guide/programme-plan.js';
import { startApiServer, type ApiServer } from './api/server.js';
import { consoleRoutes } from './api/console.js';
import { epgRoutes } from './api/epg.js';
import { PlayedLog } from './guide/played-log.js';
import { ProgrammeGuide } from './guide/programme.js';

export interface App {
  readonly config: Readonly<Config>;
  readonly api: ApiServer;
  readonly channels: ChannelService;
  readonly vods: VodRegistry;
  readonly pool: WorkerPool;
  readonly origin: Origin;
  /** Graceful stop: no more mutations, pipelines stopped, states persisted, children stopped. */
  stop(): Promise<void>;
}

/**
 * Reconnect delays: a ceiling of reconnectBaseMs (ms) for the first attempt, doubling per attempt up to
 * VLIVE_RECONNECT_MAX_DELAY_MS, with full jitter (never a synchronized storm).
 */
const reconnectBaseMs = 250;

/** A managed origin that dies is started again after this long. */
const originRestartDelayMs = 500;

/** How often the reconciler checks desired against observed state. */
const reconcileIntervalMs = 5_000;

export async function startApp(config: Readonly<Config>, log: Logger): Promise<App> {
  const startedAt = new Date();
  const cleanups = new CleanupStack(log);
  try {
    // Read first: a bad tokens file must stop start-up before anything runs.
    const tokens = loadTokens(config.tokensFile);
    await mkdir(config.dataDir, { recursive: true });
    await mkdir(config.mediaRoot, { recursive: true });
    const db = await openDatabase(config.databaseUrl);
    cleanups.push('database', () => db.close());
    log.info('database ready', { provider: db.provider, migrationsApplied: db.migrations.applied.length, migrations: db.migrations.total });

    // nginx-rtmp reports players (on_play, on_play_done) here; on-demand is wired to it below.
    const viewers = new ViewerBook();
    let ondemand: OnDemand | null = null;
    const notify =
      config.externalOriginRtmpUrl === null ? await startNotifyServer((ev) => ondemand?.onPlayEvent(ev), log.child({ part: 'origin-notify' })) : null;
    if (notify) cleanups.push('origin-notify', () => notify.close());

    const origin: Origin =
      config.externalOriginRtmpUrl !== null
        ? new ExternalOrigin({
            rtmpBaseUrl: config.externalOriginRtmpUrl,
            ...(config.externalOriginHlsUrl !== null ? { hlsBaseUrl: config.externalOriginHlsUrl } : {}),
          })
        : new ManagedOrigin({
            dataDir: config.dataDir,
            rtmpPort: config.rtmpPort,
            hlsPort: config.hlsPort,
            hls: config.originHls,
            stopGraceMs: config.stopGraceMs,
            ...(notify ? { notifyUrl: notify.url } : {}),
            logger: log.child({ part: 'origin' }),
            restartDelayMs: originRestartDelayMs,
          });
    await origin.start();
    cleanups.push('origin', () => origin.stop());

    const pool = new WorkerPool({
      size: config.workers,
      maxPipelinesPerWorker: config.maxPipelinesPerWorker,
      handshakeTimeoutMs: config.workerHandshakeTimeoutMs,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      stopGraceMs: config.stopGraceMs,
      stallTimeoutMs: config.stallTimeoutMs,
      // Node reads extra CAs only at a process's start: the workers are where rtmps:// connects.
      ...(config.rtmpsCaFile !== null ? { env: { NODE_EXTRA_CA_CERTS: config.rtmpsCaFile } } : {}),
      log: log.child({ part: 'pool' }),
    });
    await pool.start();
    cleanups.push('pool', () => pool.dispose());

    const admission = new Admission({ cpuBudget: config.cpuBudget, workerMemoryBudgetBytes: config.workerMemoryBudgetBytes, workers: () => pool.workers() });
    cleanups.push('admission', async () => admission.dispose());
    const events = new StatusEvents();
    // Recording rows name the node whose data dir holds the file (src/recording/retention.ts).
    const repo = new ChannelRepository(db.prisma, config.nodeName);
    // Cluster mode on PostgreSQL (src/cluster/): leases, fencing, LISTEN/NOTIFY; else a single node.
    // Stopped after the channels (cleanups run in reverse): their hand-over releases leases.
    let apiUrl = '';
    const cluster = startCluster({
      db,
      nodeName: config.nodeName,
      leaseMs: config.leaseMs,
      nodeHeartbeatMs: config.nodeHeartbeatMs,
      pool,
      admission,
      events,
      apiUrl: () => apiUrl,
      startedAt,
      log,
    });
    cleanups.push('cluster', () => cluster.stop());
    // The VOD library's one background queue: prepares, then conforms to channels' output profiles.
    const preparer = new MediaPreparer(db.prisma, config, log.child({ part: 'preparer' }));
    cleanups.push('preparer', () => preparer.close());
    const conformer = new Conformer(db.prisma, preparer);
    const reconnectBudget = new ReconnectBudget(config.reconnectsPerSecond, config.reconnectsPerSecond, Date.now());
    const channels = new ChannelService({
      config,
      repo,
      runner: pool,
      origin,
      events,
      log: log.child({ part: 'channels' }),
      admission,
      // Full jitter per channel, then the service-wide budget: never a storm.
      retryDelayMs: (attempt) => {
        const delay = fullJitterBackoff(attempt - 1, { baseMs: Math.min(reconnectBaseMs, config.reconnectMaxDelayMs), capMs: config.reconnectMaxDelayMs });
        return delay + reconnectBudget.reserve(Date.now() + delay);
      },
      viewersOf: (id) => viewers.count(id),
      // SQLite runs one write at a time anyway; PostgreSQL overlaps a few round trips.
      writeConcurrency: db.provider === 'sqlite' ? 1 : 4,
      ...(cluster.port !== null ? { cluster: cluster.port } : {}),
      conform: conformer,
    });
    // The programme guide's past: this node's items as they leave the air, in turn with the status writes.
    const played = new PlayedLog({
      db: db.prisma,
      events: cluster.ownEvents,
      turn: channels.writeTurn,
      historyMs: config.programmeHistoryHours * 3600_000,
      log: log.child({ part: 'guide' }),
    });
    // Pushed before the channels, so disposed after their shutdown: its stops end the items on air, and those rows are written.
    cleanups.push('played items', () => played.dispose());
    cluster.attach(channels);
    pool.on('pipeline', (ev) => channels.onPipelineEvent(ev));
    pool.on('tap', (ev) => void channels.onTapEvent(ev));
    pool.on('source', (ev) => channels.onSourceEvent(ev));
    pool.on('playout', (ev) => channels.onPlayoutEvent(ev));
    pool.on('workerLost', (ev) => channels.onWorkerLost(ev.channelIds, ev.reason));
    cleanups.push('channels', () => channels.shutdown());

    // Before reconcile places any channel: metrics read the idle workers' memory first.
    const metrics = await createMetrics({
      pool,
      // In a cluster, `events` also carries the other nodes' transitions; metrics count this node's own.
      events: cluster.ownEvents,
      channelStatuses: async () => (await channels.list()).map((c) => c.status),
      heartbeatIntervalMs: config.heartbeatIntervalMs,
    });
    cleanups.push('metrics', async () => metrics.dispose());

    const playoutMetrics = new PlayoutMetrics(metrics.registry, cluster.ownEvents);
    cleanups.push('playout metrics', async () => playoutMetrics.dispose());
    const ondemandMetrics = new OnDemandMetrics(metrics.registry, () => viewers.entries());
    const od = new OnDemand({
      channels,
      repo,
      viewers,
      players: origin.players !== undefined ? (hls) => origin.players!(hls) : null,
      log: log.child({ part: 'ondemand' }),
      counters: ondemandMetrics.counters,
    });
    ondemand = od;
    const scheduler = new Scheduler({
      repo: new ScheduleRepository(db.prisma),
      channels,
      graceMs: config.scheduleGraceSeconds * 1000,
      log: log.child({ part: 'schedule' }),
      onRun: ondemandMetrics.scheduleRun,
    });
    // Wall-clock programmes: sent to a channel's worker when it turns LIVING here, so listening starts before any channel does.
    const programmes = new ProgrammeService({ channels, repo, events: cluster.ownEvents, log: log.child({ part: 'programme' }) });
    programmes.start();
    cleanups.push('programmes', async () => programmes.stop());

    // This node's own events only: in a cluster each event reaches the outbox once.
    const webhooks = new WebhookOutbox({ db: db.prisma, log: log.child({ part: 'webhooks' }), nodeId: config.nodeName, allowPrivate: config.webhookAllowPrivate });
    const unfeed = feedStatusEvents(cluster.ownEvents, webhooks, log.child({ part: 'webhooks' }));
    pool.on('tap', (ev) => {
      if (ev.event.kind !== 'segment') return;
      const { path, startedAtMs, durationSeconds, sizeBytes } = ev.event;
      const data = { channelId: ev.channelId, path: relative(config.dataDir, path), node: config.nodeName, startedAt: new Date(startedAtMs).toISOString(), durationSeconds, sizeBytes };
      void webhooks.enqueue('RECORDING_FINISHED', data).catch((err: unknown) => log.warn('webhook event not written', { event: 'RECORDING_FINISHED', err: String(err) }));
    });
    webhooks.start();
    cleanups.push('webhooks', async () => {
      unfeed();
      await webhooks.stop();
    });

    const guide = new ProgrammeGuide({
      channels,
      played,
      nowPlaying: (id) => channels.nowPlaying(id),
      planSources: [programmePlan(played)],
      vodNames: async (ids) => new Map((await db.prisma.vodResource.findMany({ where: { id: { in: [...ids] } }, select: { id: true, name: true } })).map((v) => [v.id, v.name])),
    });

    await preparer.resumePending();
    const vods = new VodRegistry(db.prisma, config.mediaRoot, preparer, conformer);
    // Before the API answers anyone: what the last process left LIVING is not
    // at the origin now (issue #18: the API never says LIVING for a stream
    // that is not there).
    const resuming = await channels.markResuming();
    if (resuming > 0) log.info('resuming channels', { channels: resuming });
    const api = await startApiServer(
      {
        channels,
        vods,
        events,
        workers: () => pool.workers(),
        ondemand: od,
        schedules: scheduler,
        programmes,
        webhooks,
        programme: guide,
        nodes: () => cluster.nodes(),
        ...(cluster.apiBases !== undefined ? { apiBases: cluster.apiBases } : {}),
      },
      {
        host: config.httpHost,
        port: config.httpPort,
        tokens,
        log: log.child({ part: 'api' }),
        routes: { '/metrics': (res) => metrics.route(res) },
        handlers: [
          epgRoutes({ tokens, guide }),
          consoleRoutes({
            assetsDir: repoPath('dist/console'),
            tokens,
            // The managed origin serves HLS on loopback; an external one at its own base URL.
            hlsBaseUrl:
              config.externalOriginRtmpUrl !== null ? config.externalOriginHlsUrl : config.originHls ? `http://127.0.0.1:${config.hlsPort}/hls` : null,
            grafanaUrl: config.grafanaUrl,
          }),
        ],
        files: { '/recordings/': join(config.dataDir, 'recordings'), '/snapshots/': join(config.dataDir, 'snapshots') },
        plugins: [metrics.apolloPlugin()],
      },
    );
    cleanups.push('api', () => api.close());
    apiUrl = `http://${config.httpHost}:${api.port}/graphql`;

    // In a cluster each node sweeps the recordings on its own disk only.
    const retention = startRetention(db.prisma, config, { nodeName: cluster.port !== null ? config.nodeName : null }, log.child({ part: 'retention' }));
    cleanups.push('retention', async () => retention.stop());

    await cluster.join();
    await channels.reconcile();
    channels.startReconciler(reconcileIntervalMs);
    // After reconcile: channels wanted RUNNING are back before idleness or schedules judge them.
    od.start();
    cleanups.push('ondemand', async () => od.stop());
    scheduler.start();
    cleanups.push('scheduler', () => scheduler.stop());
    return {
      config,
      api,
      channels,
      vods,
      pool,
      origin,
      stop: () => cleanups.unwind(),
    };
  } catch (err) {
    await cleanups.unwind();
    throw err;
  }
}
