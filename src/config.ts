/**
 * One validated config: defaults, then an optional JSON file (VLIVE_CONFIG),
 * then the environment. Loaded once at start and frozen. A bad value stops
 * start-up with a message that names the key.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { resolve } from 'node:path';

export interface Config {
  /** GraphQL over HTTP and WebSocket at /graphql. Default 4000. */
  readonly httpPort: number;
  /** Default 127.0.0.1: the demo mode has no authentication, so it stays on loopback. */
  readonly httpHost: string;
  /** RTMP port of the managed origin. Default 1935. */
  readonly rtmpPort: number;
  /** HLS (HTTP) port of the managed origin. Default 8080. */
  readonly hlsPort: number;
  /** Whether the managed origin writes HLS (VLIVE_ORIGIN_HLS=on|off). Default on; off serves RTMP only. */
  readonly originHls: boolean;
  /** Webhooks may post to loopback, private and reserved addresses (VLIVE_WEBHOOK_ALLOW_PRIVATE=on|off). Default off. */
  readonly webhookAllowPrivate: boolean;
  /** Database, origin files and generated demo media live here. Default ./data. */
  readonly dataDir: string;
  /** VOD paths are relative to this and confined to it. Default <dataDir>/media. */
  readonly mediaRoot: string;
  /** Worker processes in the pool. Default: the number of CPU cores. */
  readonly workers: number;
  /** Admission limit per worker. Default 200. */
  readonly maxPipelinesPerWorker: number;
  /** Default file:<dataDir>/vlive.db (SQLite). */
  readonly databaseUrl: string;
  /** When set, channels publish to this rtmp(s) base URL (…/app) and no nginx is started. */
  readonly externalOriginRtmpUrl: string | null;
  /** HLS base URL of the external origin, if it serves HLS. */
  readonly externalOriginHlsUrl: string | null;
  /** How long a start may take before the channel goes ERROR, in ms. Default 10000. */
  readonly startTimeoutMs: number;
  /** Worker start handshake limit, in ms. Default 10000. */
  readonly workerHandshakeTimeoutMs: number;
  /** Worker heartbeat period, in ms. Default 1000. */
  readonly heartbeatIntervalMs: number;
  /** Grace between SIGTERM and SIGKILL when stopping children, in ms. Default 3000. */
  readonly stopGraceMs: number;
  /** A playing pipeline with no media progress for this long is restarted, in ms. Default 5000. */
  readonly stallTimeoutMs: number;
  /** Longest wait between two reconnect attempts of a channel, ms. Default 1000: a source that comes back is LIVING again within about 2 s. */
  readonly reconnectMaxDelayMs: number;
  /** Reconnect attempts the whole service makes per second at most (bursts of as many). Default 20. */
  readonly reconnectsPerSecond: number;
  /** While a channel plays its backup, how often its primary is tried beside it (it takes over once healthy), ms. Default 5000. */
  readonly switchBackIntervalMs: number;
  /** Recordings of one channel beyond this many bytes are deleted, oldest first. Default 20 GiB. */
  readonly recordingChannelQuotaBytes: number;
  /** Recordings of all channels beyond this many bytes are deleted, oldest first. Default 200 GiB. */
  readonly recordingTotalQuotaBytes: number;
  /** Snapshot files not refreshed for this long are deleted (the seed's cleanSnapDuration), seconds. Default 86400. */
  readonly snapshotRetainSeconds: number;
  /** How often retention sweeps recordings, snapshots and the files of deleted channels, seconds. Default 30. */
  readonly retentionSweepSeconds: number;
  /** Items played are kept this long for the programme guide's past (PlayedItem rows), hours. Default 48. */
  readonly programmeHistoryHours: number;
  /** Starts are refused while the machine's CPU is busier than this fraction. Default 0.8. */
  readonly cpuBudget: number;
  /** Starts are refused when every worker's RSS is at least this, in bytes. Default 2 GiB. */
  readonly workerMemoryBudgetBytes: number;
  /** JSON file of hashed API tokens. Unset: demo mode (no authentication, loopback only). */
  readonly tokensFile: string | null;
  /** A scheduled run found later than this after its time (service down or busy) is skipped, seconds. Default 300. */
  readonly scheduleGraceSeconds: number;
  /**
   * Cluster mode (PostgreSQL): this node's name in the `nodes` query, and on the recordings
   * its data dir holds (keep it stable and unique per data dir). Default <hostname>:<httpPort>.
   */
  readonly nodeName: string;
  /** Cluster mode: how long a channel lease lasts without renewal, in ms. Default 10000. */
  readonly leaseMs: number;
  /** Cluster mode: node heartbeat, lease renewal and placement period, in ms. Default 2000; leaseMs must be at least 3 times it. */
  readonly nodeHeartbeatMs: number;
  /** Base URL of a Grafana showing grafana/'s dashboards; the console links to it. Unset: no link. */
  readonly grafanaUrl: string | null;
  /**
   * PEM file of CA certificates the workers trust for rtmps:// (push targets
   * and sources) beside the system's, e.g. a private CA of an ingest. Unset:
   * the system's only. Verification is never turned off.
   */
  readonly rtmpsCaFile: string | null;
}

type Key = keyof Config;

interface Field {
  env: string;
  kind: 'port' | 'positiveInt' | 'fraction' | 'string' | 'path' | 'url' | 'host' | 'onOff';
  optional?: boolean;
}

const fields: Record<Key, Field> = {
  httpPort: { env: 'VLIVE_HTTP_PORT', kind: 'port' },
  httpHost: { env: 'VLIVE_HTTP_HOST', kind: 'host' },
  rtmpPort: { env: 'VLIVE_RTMP_PORT', kind: 'port' },
  hlsPort: { env: 'VLIVE_HLS_PORT', kind: 'port' },
  originHls: { env: 'VLIVE_ORIGIN_HLS', kind: 'onOff' },
  webhookAllowPrivate: { env: 'VLIVE_WEBHOOK_ALLOW_PRIVATE', kind: 'onOff' },
  dataDir: { env: 'VLIVE_DATA_DIR', kind: 'path' },
  mediaRoot: { env: 'VLIVE_MEDIA_ROOT', kind: 'path' },
  workers: { env: 'VLIVE_WORKERS', kind: 'positiveInt' },
  maxPipelinesPerWorker: { env: 'VLIVE_MAX_PIPELINES_PER_WORKER', kind: 'positiveInt' },
  databaseUrl: { env: 'DATABASE_URL', kind: 'string' },
  externalOriginRtmpUrl: { env: 'VLIVE_ORIGIN_RTMP_URL', kind: 'url', optional: true },
  externalOriginHlsUrl: { env: 'VLIVE_ORIGIN_HLS_URL', kind: 'url', optional: true },
  startTimeoutMs: { env: 'VLIVE_START_TIMEOUT_MS', kind: 'positiveInt' },
  workerHandshakeTimeoutMs: { env: 'VLIVE_WORKER_HANDSHAKE_TIMEOUT_MS', kind: 'positiveInt' },
  heartbeatIntervalMs: { env: 'VLIVE_HEARTBEAT_INTERVAL_MS', kind: 'positiveInt' },
  stopGraceMs: { env: 'VLIVE_STOP_GRACE_MS', kind: 'positiveInt' },
  stallTimeoutMs: { env: 'VLIVE_STALL_TIMEOUT_MS', kind: 'positiveInt' },
  reconnectMaxDelayMs: { env: 'VLIVE_RECONNECT_MAX_DELAY_MS', kind: 'positiveInt' },
  reconnectsPerSecond: { env: 'VLIVE_RECONNECTS_PER_SECOND', kind: 'positiveInt' },
  switchBackIntervalMs: { env: 'VLIVE_SWITCHBACK_INTERVAL_MS', kind: 'positiveInt' },
  recordingChannelQuotaBytes: { env: 'VLIVE_RECORDING_CHANNEL_QUOTA_BYTES', kind: 'positiveInt' },
  recordingTotalQuotaBytes: { env: 'VLIVE_RECORDING_TOTAL_QUOTA_BYTES', kind: 'positiveInt' },
  snapshotRetainSeconds: { env: 'VLIVE_SNAPSHOT_RETAIN_SECONDS', kind: 'positiveInt' },
  retentionSweepSeconds: { env: 'VLIVE_RETENTION_SWEEP_SECONDS', kind: 'positiveInt' },
  programmeHistoryHours: { env: 'VLIVE_PROGRAMME_HISTORY_HOURS', kind: 'positiveInt' },
  cpuBudget: { env: 'VLIVE_CPU_BUDGET', kind: 'fraction' },
  workerMemoryBudgetBytes: { env: 'VLIVE_WORKER_MEMORY_BUDGET_BYTES', kind: 'positiveInt' },
  tokensFile: { env: 'VLIVE_TOKENS_FILE', kind: 'path', optional: true },
  scheduleGraceSeconds: { env: 'VLIVE_SCHEDULE_GRACE_SECONDS', kind: 'positiveInt' },
  nodeName: { env: 'VLIVE_NODE_NAME', kind: 'string' },
  leaseMs: { env: 'VLIVE_LEASE_MS', kind: 'positiveInt' },
  nodeHeartbeatMs: { env: 'VLIVE_NODE_HEARTBEAT_MS', kind: 'positiveInt' },
  grafanaUrl: { env: 'VLIVE_GRAFANA_URL', kind: 'url', optional: true },
  rtmpsCaFile: { env: 'VLIVE_RTMPS_CA_FILE', kind: 'path', optional: true },
};

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`config ${key}: ${message}`);
    this.name = 'ConfigError';
  }
}

function convert(key: string, field: Field, raw: unknown): unknown {
  // A JSON file may say true or false where the environment says on or off.
  if (field.kind === 'onOff' && typeof raw === 'boolean') return raw;
  const text = typeof raw === 'number' ? String(raw) : raw;
  if (typeof text !== 'string') throw new ConfigError(key, 'must be a string or a number');
  switch (field.kind) {
    case 'port':
    case 'positiveInt': {
      if (!/^\d+$/.test(text)) throw new ConfigError(key, `must be a whole number, got ${JSON.stringify(text)}`);
      const n = Number(text);
      const max = field.kind === 'port' ? 65535 : 2 ** 40;
      if (n < 1 || n > max) throw new ConfigError(key, `must be between 1 and ${max}, got ${n}`);
      return n;
    }
    case 'fraction': {
      const f = Number(text);
      if (!/^\d*\.?\d+$/.test(text) || !(f > 0 && f <= 1)) throw new ConfigError(key, `must be a number in (0, 1], got ${JSON.stringify(text)}`);
      return f;
    }
    case 'path':
      if (text === '' || text.includes('\0')) throw new ConfigError(key, 'must be a non-empty path');
      return resolve(text);
    case 'host':
      if (!/^[A-Za-z0-9.:-]+$/.test(text)) throw new ConfigError(key, `not a host name or address: ${JSON.stringify(text)}`);
      return text;
    case 'url': {
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        throw new ConfigError(key, `not a URL: ${JSON.stringify(text)}`);
      }
      if (!['rtmp:', 'rtmps:', 'http:', 'https:'].includes(url.protocol)) {
        throw new ConfigError(key, `scheme ${url.protocol} is not allowed`);
      }
      return text.replace(/\/+$/, '');
    }
    case 'string':
      if (text === '') throw new ConfigError(key, 'must not be empty');
      return text;
    case 'onOff':
      if (text !== 'on' && text !== 'off') throw new ConfigError(key, `must be on or off, got ${JSON.stringify(text)}`);
      return text === 'on';
  }
}

function readFileLayer(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError('VLIVE_CONFIG', `cannot read ${path}: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError('VLIVE_CONFIG', `${path} must hold a JSON object`);
  }
  for (const k of Object.keys(parsed)) {
    if (!(k in fields)) throw new ConfigError(k, `unknown key in ${path}`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * The CA file must hold a certificate Node can read: the workers get it as
 * NODE_EXTRA_CA_CERTS, which Node would otherwise skip with a warning, and
 * every rtmps:// target would then fail its verification for no visible reason.
 */
function checkCaFile(path: string): void {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('VLIVE_RTMPS_CA_FILE', `cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    new X509Certificate(text);
  } catch {
    throw new ConfigError('VLIVE_RTMPS_CA_FILE', `${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
}

/** Builds the config from defaults, the optional file, and `env` (process.env by default). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const dataDir = resolve(env['VLIVE_DATA_DIR'] ?? 'data');
  const defaults: Record<Key, unknown> = {
    httpPort: 4000,
    httpHost: '127.0.0.1',
    rtmpPort: 1935,
    hlsPort: 8080,
    originHls: true,
    webhookAllowPrivate: false,
    dataDir,
    mediaRoot: resolve(dataDir, 'media'),
    workers: availableParallelism(),
    maxPipelinesPerWorker: 500,
    databaseUrl: `file:${resolve(dataDir, 'vlive.db')}`,
    externalOriginRtmpUrl: null,
    externalOriginHlsUrl: null,
    startTimeoutMs: 10_000,
    workerHandshakeTimeoutMs: 10_000,
    heartbeatIntervalMs: 1_000,
    stopGraceMs: 3_000,
    stallTimeoutMs: 5_000,
    reconnectMaxDelayMs: 1_000,
    reconnectsPerSecond: 20,
    switchBackIntervalMs: 5_000,
    recordingChannelQuotaBytes: 20 * 2 ** 30,
    recordingTotalQuotaBytes: 200 * 2 ** 30,
    snapshotRetainSeconds: 86_400,
    retentionSweepSeconds: 30,
    programmeHistoryHours: 48,
    // The benchmark's 200 channels stuttered with the machine 86 % busy.
    cpuBudget: 0.8,
    workerMemoryBudgetBytes: 2 * 2 ** 30,
    tokensFile: null,
    scheduleGraceSeconds: 300,
    nodeName: '',
    leaseMs: 10_000,
    nodeHeartbeatMs: 2_000,
    grafanaUrl: null,
    rtmpsCaFile: null,
  };
  const file = env['VLIVE_CONFIG'] ? readFileLayer(env['VLIVE_CONFIG']) : {};
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(fields) as Key[]) {
    const field = fields[key];
    const fromEnv = env[field.env];
    if (fromEnv !== undefined && fromEnv !== '') out[key] = convert(field.env, field, fromEnv);
    else if (key in file) out[key] = convert(key, field, file[key]);
    else out[key] = defaults[key];
  }
  // The media root follows a data dir given in the file when it was not set itself.
  if (env['VLIVE_MEDIA_ROOT'] === undefined && !('mediaRoot' in file) && 'dataDir' in file) {
    out['mediaRoot'] = resolve(out['dataDir'] as string, 'media');
  }
  if (env['DATABASE_URL'] === undefined && !('databaseUrl' in file) && 'dataDir' in file) {
    out['databaseUrl'] = `file:${resolve(out['dataDir'] as string, 'vlive.db')}`;
  }
  if (out['externalOriginHlsUrl'] !== null && out['externalOriginRtmpUrl'] === null) {
    throw new ConfigError('VLIVE_ORIGIN_HLS_URL', 'needs VLIVE_ORIGIN_RTMP_URL as well');
  }
  if (out['rtmpsCaFile'] !== null) checkCaFile(out['rtmpsCaFile'] as string);
  if (out['nodeName'] === '') out['nodeName'] = `${hostname()}:${String(out['httpPort'])}`;
  // The worker fence stops pipelines 2 heartbeats before the lease ends; below 3 the
  // fence would fall before the next renewal and stop healthy channels.
  if ((out['leaseMs'] as number) < 3 * (out['nodeHeartbeatMs'] as number)) {
    throw new ConfigError('VLIVE_LEASE_MS', `must be at least 3 × VLIVE_NODE_HEARTBEAT_MS (${3 * (out['nodeHeartbeatMs'] as number)}), got ${String(out['leaseMs'])}`);
  }
  // Demo mode has no authentication, so it must not be reachable from elsewhere.
  const loopback = ['127.0.0.1', '::1', 'localhost'];
  if (out['tokensFile'] === null && !loopback.includes(out['httpHost'] as string)) {
    throw new ConfigError('VLIVE_HTTP_HOST', `listening on ${String(out['httpHost'])} needs VLIVE_TOKENS_FILE; without tokens the API stays on loopback`);
  }
  return Object.freeze(out as unknown as Config);
}
