/**
 * Reads the measurement fields of a pipeline's heartbeat stats. The fields
 * beyond state and position arrive with a newer worker; an older worker (or
 * a field it does not send) gives null, and the metric fed by it simply has
 * no series for that channel instead of a made-up zero.
 */
import type { PipelineStats } from '../pool/pipeline-spec.js';

export interface TargetCounters {
  index: number;
  bytesSent: number;
  errors: number;
  /** 0 from a worker that does not send it. */
  bitrateBps: number;
}

export interface PipelineMeasurements {
  positionSeconds: number | null;
  outputLagSeconds: number | null;
  stutterSeconds: number | null;
  stallEvents: number | null;
  loopBoundaries: number | null;
  framesOut: number | null;
  boundaryGapsSeconds: number[] | null;
  targets: TargetCounters[] | null;
}

function finite(v: unknown, min = -Infinity): number | null {
  return typeof v === 'number' && Number.isFinite(v) && v >= min ? v : null;
}

function isTarget(v: unknown): v is Omit<TargetCounters, 'bitrateBps'> {
  if (typeof v !== 'object' || v === null) return false;
  const t = v as Record<string, unknown>;
  return (
    typeof t['index'] === 'number' && Number.isSafeInteger(t['index']) && t['index'] >= 0 &&
    finite(t['bytesSent'], 0) !== null && finite(t['errors'], 0) !== null
  );
}

export function measurements(stats: PipelineStats): PipelineMeasurements {
  const s = stats as unknown as Record<string, unknown>;
  const gaps = s['boundaryGapsSeconds'];
  const targets = s['targets'];
  const position = finite(s['positionSeconds'], 0); // -1 means unknown
  return {
    positionSeconds: position,
    outputLagSeconds: finite(s['outputLagSeconds']),
    stutterSeconds: finite(s['stutterSeconds'], 0),
    stallEvents: finite(s['stallEvents'], 0),
    loopBoundaries: finite(s['loopBoundaries'], 0),
    framesOut: finite(s['framesOut'], 0),
    boundaryGapsSeconds: Array.isArray(gaps) ? gaps.filter((g): g is number => finite(g, 0) !== null) : null,
    targets: Array.isArray(targets) ? targets.filter(isTarget).map((t) => ({ ...t, bitrateBps: finite((t as unknown as Record<string, unknown>)['bitrateBps'], 0) ?? 0 })) : null,
  };
}
