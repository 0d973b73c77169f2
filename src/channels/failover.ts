/**
 * A relay's failover, as decisions: which source the next attempt pulls
 * (`nextSource`, pure) and when the primary is tried again beside a playing
 * backup (`SwitchBack`, a timer on an injectable clock). The moves they lead
 * to (RECONNECTING while the source is away, LIVING once one plays, the
 * output and its publish session kept throughout) are ChannelRun's, in the
 * "A relay's source" part of channels/run.ts.
 *
 * Owns: the source bookkeeping of one run and the failover rule. Imports
 * only the pool's IPC types and status.ts; nothing here touches the
 * database or the pool.
 */
import type { SourceLabel } from '../pool/pipeline-spec.js';
import type { ActiveSource } from './status.js';

export const activeSourceOf = (label: SourceLabel): ActiveSource => (label === 'backup' ? 'BACKUP' : 'PRIMARY');

/** The channel's failover settings, as the record holds them. */
export interface FailoverPolicy {
  backupUrl: string | null;
  /** Failed attempts (counting the loss itself) before the backup is tried. */
  failoverAfterFailures: number;
  /** Time away, ms, after which the backup is tried whatever the count. */
  failoverAfterMs: number;
}

/** Since when the source is away (null while one plays), and which was tried last. */
export interface SourceState {
  lostAt: number | null;
  lastTried: SourceLabel;
}

/**
 * Which source the next attempt pulls: the primary, until the failover is
 * due (failoverAfterFailures failures, counting the loss, or failoverAfterMs
 * away); from then on the backup and the primary take turns. A channel
 * without a backup always pulls its primary.
 */
export function nextSource(policy: FailoverPolicy, state: SourceState, attempt: number, nowMs: number): SourceLabel {
  if (policy.backupUrl === null) return 'primary';
  const awayMs = nowMs - (state.lostAt ?? nowMs);
  const due = attempt >= policy.failoverAfterFailures || awayMs >= policy.failoverAfterMs;
  if (!due) return 'primary';
  return state.lastTried === 'backup' ? 'primary' : 'backup';
}

/** setTimeout and clearTimeout, so that tests can drive time. */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

/**
 * While the backup plays, the primary is tried beside it every `intervalMs`
 * (the worker switches over once the primary proves healthy). One pending
 * try at most: arming an armed timer keeps the earlier deadline.
 */
export class SwitchBack {
  #handle: unknown = null;

  constructor(
    private readonly intervalMs: number,
    private readonly onDue: () => void,
    private readonly timers: Timers = realTimers,
  ) {}

  get armed(): boolean {
    return this.#handle !== null;
  }

  arm(): void {
    if (this.#handle !== null) return;
    this.#handle = this.timers.set(() => {
      this.#handle = null;
      this.onDue();
    }, this.intervalMs);
  }

  clear(): void {
    if (this.#handle !== null) this.timers.clear(this.#handle);
    this.#handle = null;
  }
}
