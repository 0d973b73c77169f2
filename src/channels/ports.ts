/**
 * What the channel domain needs from the pool and the origin. WorkerPool and
 * the origins satisfy these structurally; tests and main wire the real ones.
 */
import type { VodResource } from '../generated/prisma-sqlite/client.js';
import type { OutputProfile } from '../media/output-profile.js';
import type { PlayoutCommand } from '../pool/playout-spec.js';
import type { LiveSource, PipelineSpec, PipelineState, ProgrammeSpec, SourceEvent, VodItem } from '../pool/pipeline-spec.js';

export interface PipelineRunner {
  startPipeline(spec: PipelineSpec): Promise<{ workerId: string }>;
  stopPipeline(channelId: string): Promise<void>;
  /** A running VOD channel's new playlist (and wall-clock programme), applied at its next item boundary; false when it has no pipeline. */
  updatePlaylist(channelId: string, items: VodItem[], loop: boolean, programme?: ProgrammeSpec): boolean;
  /** A running relay's next source; false when it has no pipeline. */
  setSource(channelId: string, source: LiveSource, mode: 'replace' | 'candidate'): boolean;
  /** A skip or jump for a running VOD channel, answered by a playout event; false when it has no pipeline. */
  playout(channelId: string, requestId: number, command: PlayoutCommand): boolean;
  /** Pipeline slots of the ready workers, and how many are taken. */
  capacity(): { total: number; used: number };
  /** Per-target totals over the channel's pipelines (bytes, errors, last error), by target index; null when unknown. */
  channelCounters(channelId: string): { targets: { index: number; bytesSent: number; errors: number; bitrateBps: number; lastError?: string; state?: 'connecting' | 'up' | 'retrying' }[] } | null;
  /** Drops the pool's running totals of a deleted channel. */
  forgetChannel(channelId: string): void;
}

/**
 * The origin as channels use it. `hls` is the channel's choice, required here:
 * at the managed origin it picks the RTMP application the channel publishes
 * to and is read back from (src/origin/config.ts), so every URL and check of
 * a channel must carry it.
 */
export interface PublishPoint {
  publishUrl(stream: string, hls: boolean): string;
  playUrls(stream: string, hls: boolean): { rtmp: string; hls: string | null };
}

export interface SourceChange {
  channelId: string;
  workerId: string;
  event: SourceEvent;
}

export interface PipelineEvent {
  channelId: string;
  workerId: string;
  state: PipelineState;
  error?: string;
}

/**
 * Cluster mode (PostgreSQL), as the channel domain sees it; src/cluster/ implements
 * it. Absent on a single node (SQLite), where every channel is this process's.
 */
export interface ClusterPort {
  readonly nodeId: string;
  /** The epoch of this node's live lease on the channel, or null when it holds none. */
  epochOf(channelId: string): number | null;
  /** The operator changed a channel's desired state: tell the owner and the placers (NOTIFY). */
  desiredChanged(channelId: string, desired: 'RUNNING' | 'STOPPED'): void;
  /** The operator edited a running channel's playlist or loop here, but another node runs it: tell it. */
  playlistChanged(channelId: string): void;
  /** Gives up this node's lease (the channel stopped here, or the node shuts down). */
  release(channelId: string): Promise<void>;
  /** The node shuts down: it claims nothing more, and the others stop counting it when they share out channels. */
  leave(): Promise<void>;
  /** True while another node holds a live lease on the channel. */
  ownedElsewhere(channelId: string): Promise<boolean>;
  /** Some live node (this one included) has slots and budget for one more channel. */
  hasRoom(): Promise<boolean>;
}

/** Renditions for output profiles (src/vods/conform.ts): made once per (file, profile), in the background. */
export interface ConformPort {
  /** Queues the renditions `vods` lack under `profile`; resolves once their rows exist. */
  ensure(vods: readonly VodResource[], profile: OutputProfile): Promise<void>;
}
