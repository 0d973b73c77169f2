/**
 * What the channel domain needs from the pool and the origin. WorkerPool and
 * the origins satisfy these structurally; tests and main wire the real ones.
 */
import type { LiveSource, PipelineSpec, PipelineState, SourceEvent, VodItem } from '../pool/ipc.js';

export interface PipelineRunner {
  startPipeline(spec: PipelineSpec): Promise<{ workerId: string }>;
  stopPipeline(channelId: string): Promise<void>;
  /** A running VOD channel's new playlist, applied at its next item boundary; false when it has no pipeline. */
  updatePlaylist(channelId: string, items: VodItem[], loop: boolean): boolean;
  /** A running relay's next source; false when it has no pipeline. */
  setSource(channelId: string, source: LiveSource, mode: 'replace' | 'candidate'): boolean;
  /** Pipeline slots of the ready workers, and how many are taken. */
  capacity(): { total: number; used: number };
  /** The workers' state and memory, for admission control. */
  workers(): { state: string; rssBytes: number }[];
  /** Per-target totals over the channel's pipelines (bytes, errors, last error), by target index; null when unknown. */
  channelCounters(channelId: string): { targets: { index: number; bytesSent: number; errors: number; lastError?: string; state?: 'connecting' | 'up' | 'retrying' }[] } | null;
  /** Drops the pool's running totals of a deleted channel. */
  forgetChannel(channelId: string): void;
}

export interface PublishPoint {
  publishUrl(stream: string): string;
  playUrls(stream: string): { rtmp: string; hls: string | null };
  waitForPublish(stream: string, timeoutMs: number, signal?: AbortSignal): Promise<void>;
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
