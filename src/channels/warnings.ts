/**
 * The book of a running channel's warnings and what its tap reports. A
 * warning (a recording or snapshot fault, playlist items whose files are
 * gone) describes the present, so it lives in memory and goes when the
 * channel stops; the live output is unaffected by any of them. Closed
 * recording segments and snapshot times go to the database.
 *
 * Owns: the warnings by channel and part, and the handling of tap events.
 * Imports repository.ts, spec.ts, ports.ts (types), the pool's IPC types,
 * errors.ts and log.ts; it publishes
 * through a callback, so it knows nothing of the status writer.
 */
import { isAbsolute, relative } from 'node:path';
import { notFound } from '../errors.js';
import type { Logger } from '../log.js';
import type { PipelineSpec, TapEvent } from '../pool/pipeline-spec.js';
import type { ClusterPort } from './ports.js';
import type { ChannelRecord, ChannelRepository } from './repository.js';
import { missingItemNames } from './spec.js';

/** What a warning is about: the tap's parts, or playlist items whose files are gone. */
export type WarningPart = 'recording' | 'snapshot' | 'playlist' | 'live-item';

export class WarningBook {
  readonly #byChannel = new Map<string, Map<WarningPart, string>>();

  of(id: string): string[] {
    return [...(this.#byChannel.get(id)?.values() ?? [])];
  }

  /** Raises (or, with null, clears) a channel's warning about `part`; true when that changed it. */
  set(id: string, part: WarningPart, message: string | null): boolean {
    const byPart = this.#byChannel.get(id) ?? new Map<WarningPart, string>();
    if ((byPart.get(part) ?? null) === message) return false;
    if (message === null) byPart.delete(part);
    else byPart.set(part, message);
    if (byPart.size === 0) this.#byChannel.delete(id);
    else this.#byChannel.set(id, byPart);
    return true;
  }

  clear(id: string): void {
    this.#byChannel.delete(id);
  }
}

export interface TapDeps {
  dataDir: string;
  repo: ChannelRepository;
  warnings: WarningBook;
  log: Logger;
  /** A warning changed: publish the channel as it is (a detail event); false when it is gone. */
  publish: (id: string) => Promise<boolean>;
  /** Cluster mode: snapshot times are written under this node's lease only. */
  cluster?: Pick<ClusterPort, 'nodeId' | 'epochOf'>;
}

/** What a channel's tap reported: a closed segment, a snapshot, or a warning raised or cleared. */
export async function onTapEvent(deps: TapDeps, id: string, event: TapEvent): Promise<void> {
  try {
    if (event.kind === 'segment') {
      const rel = relative(deps.dataDir, event.path);
      if (rel.startsWith('..') || isAbsolute(rel)) return;
      await deps.repo.addRecording({ virtualLiveId: id, path: rel, startedAt: new Date(event.startedAtMs), durationSeconds: event.durationSeconds, sizeBytes: event.sizeBytes });
    } else if (event.kind === 'snapshot') {
      // In a cluster, only under this node's lease: a late snapshot of a node that lost it
      // must not replace the new owner's (a refused write changes nothing; the renewal notices the loss).
      // Segments above are listed whatever the lease: the file is on this node's disk.
      const epoch = deps.cluster?.epochOf(id) ?? null;
      if (deps.cluster !== undefined && epoch === null) return;
      const owner = deps.cluster !== undefined && epoch !== null ? { nodeId: deps.cluster.nodeId, epoch } : undefined;
      await deps.repo.setSnapTakenAt(id, new Date(event.takenAtMs), owner);
    } else {
      if (!deps.warnings.set(id, event.part, event.message)) return;
      if (!(await deps.publish(id))) throw notFound('virtual live', id);
      if (event.message !== null) deps.log.warn('channel warning', { channel: id, part: event.part, warning: event.message });
    }
  } catch (err) {
    // The channel was deleted meanwhile, or the database is away: a tap event is not worth a crash.
    deps.log.warn('tap event not recorded', { channel: id, kind: event.kind, err: String(err) });
  }
}

/** A playlist item whose file is gone plays the slate instead: a warning says which, while it lasts. */
export function noteMissingItems(warnings: WarningBook, log: Logger, rec: ChannelRecord, spec: PipelineSpec): void {
  const missing = spec.source.kind === 'vod' ? missingItemNames(rec, spec.source.items) : [];
  warnings.set(rec.id, 'playlist', missing.length === 0 ? null : `playlist: the slate plays in place of missing ${missing.map((n) => JSON.stringify(n)).join(', ')}`);
  if (missing.length > 0) log.warn('playlist items missing; the slate plays in their place', { channel: rec.id, items: missing });
}
