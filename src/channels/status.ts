/**
 * A channel's observed status: a closed union with one transition table,
 * and beside each edge the event that takes it. The one writer
 * (channels/writer.ts) checks every move here, so an illegal move is a bug
 * that throws a coded error instead of a state nobody planned for.
 *
 *   STOPPED ──start──▶ STARTING ──plays──▶ LIVING ◀────plays again─────┐
 *                         │                   │                        │
 *                   fails ▼              lost ▼                        │
 *                       ERROR ◀──gave up── RECONNECTING ⟲ next attempt ┘
 *
 *   Besides: every status but STOPPED can stop; ERROR can start again; a
 *   claim, the reconciler or a hand-over moves STARTING to RECONNECTING.
 *
 * Owns: the statuses, the desired states, the table. Imports only errors.ts.
 */
import { VliveError } from '../errors.js';

export const liveStatuses = ['STOPPED', 'STARTING', 'LIVING', 'RECONNECTING', 'ERROR'] as const;
export type LiveStatus = (typeof liveStatuses)[number];

export const desiredStates = ['RUNNING', 'STOPPED'] as const;
export type DesiredState = (typeof desiredStates)[number];

/** What feeds a channel's output; SLATE while a relay's source is away and the slate fills in. */
export const activeSources = ['PRIMARY', 'BACKUP', 'SLATE'] as const;
export type ActiveSource = (typeof activeSources)[number];

/**
 * Every legal move, keyed by where it starts, with the trigger that takes it.
 * A write that keeps the status (LIVING with a new activeSource, the time of
 * the next attempt) changes details only and needs no edge; RECONNECTING's
 * self-edge is listed because its trigger is worth naming.
 */
const transitions: { readonly [F in LiveStatus]: Partial<Record<LiveStatus, string>> } = {
  STOPPED: {
    STARTING: 'an operator start, a schedule, a touch, or the reconciler finding a channel wanted RUNNING',
  },
  STARTING: {
    LIVING: 'the pipeline plays: the origin accepted the publish and media flows',
    ERROR: 'the start failed (and the backup too, for a relay): desired goes STOPPED',
    STOPPED: 'a stop before the start finished',
    RECONNECTING: 'the reconciler or a node claiming it finds the start unfinished, or its node shut down and hands it over',
  },
  LIVING: {
    RECONNECTING: 'the pipeline failed, its worker died, a relay source dropped, an hls change moves it, or its node handed it over',
    STOPPED: 'an operator or service stop, or a VOD without loop reached its end',
    ERROR: 'none today (a loss passes through RECONNECTING before it gives up); kept for a fault no retry can mend',
  },
  RECONNECTING: {
    LIVING: 'a restarted pipeline plays, or a relay source came back in place',
    STOPPED: 'a stop while waiting for the next attempt',
    ERROR: 'the channel gave up after maxReconnectAttempts',
    RECONNECTING: 'an attempt failed and the next one is scheduled, or a claim or hand-over finds it already reconnecting',
  },
  ERROR: {
    STARTING: 'an operator start, or the reconciler finding the channel wanted RUNNING',
    STOPPED: 'a stop, or the reconciler settling a channel nobody wants',
  },
};

/** The trigger of the move from → to, or null when the table has no such edge. */
export function triggerOf(from: LiveStatus, to: LiveStatus): string | null {
  return transitions[from][to] ?? null;
}

export function canTransition(from: LiveStatus, to: LiveStatus): boolean {
  return triggerOf(from, to) !== null;
}

/** A move the table does not allow: a bug in the service, never the client's input. */
export class IllegalTransitionError extends VliveError {
  constructor(
    readonly from: LiveStatus,
    readonly to: LiveStatus,
    channelId?: string,
  ) {
    super('INVALID_STATE', `illegal channel transition ${from} → ${to}${channelId === undefined ? '' : ` on channel ${channelId}`}`);
    this.name = 'IllegalTransitionError';
  }
}

export function assertTransition(from: LiveStatus, to: LiveStatus, channelId?: string): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to, channelId);
}

export function isLiveStatus(v: string): v is LiveStatus {
  return (liveStatuses as readonly string[]).includes(v);
}

export function isDesiredState(v: string): v is DesiredState {
  return (desiredStates as readonly string[]).includes(v);
}

export function isActiveSource(v: string): v is ActiveSource {
  return (activeSources as readonly string[]).includes(v);
}

/** Statuses in which the channel holds (or is getting) a pipeline. */
export function isActive(s: LiveStatus): boolean {
  return s === 'STARTING' || s === 'LIVING' || s === 'RECONNECTING';
}
