/**
 * A channel's observed status is a closed union with one transition table.
 * Every move goes through `assertTransition`, so an illegal move is a bug
 * that throws instead of a state nobody planned for.
 */
export const liveStatuses = ['STOPPED', 'STARTING', 'LIVING', 'RECONNECTING', 'ERROR'] as const;
export type LiveStatus = (typeof liveStatuses)[number];

export const desiredStates = ['RUNNING', 'STOPPED'] as const;
export type DesiredState = (typeof desiredStates)[number];

const transitions: Record<LiveStatus, readonly LiveStatus[]> = {
  STOPPED: ['STARTING'],
  // A start can also be stopped before it finishes, or lose its worker.
  STARTING: ['LIVING', 'ERROR', 'STOPPED', 'RECONNECTING'],
  LIVING: ['RECONNECTING', 'STOPPED', 'ERROR'],
  RECONNECTING: ['LIVING', 'STOPPED', 'ERROR', 'RECONNECTING'],
  ERROR: ['STARTING', 'STOPPED'],
};

export function canTransition(from: LiveStatus, to: LiveStatus): boolean {
  return transitions[from].includes(to);
}

export function assertTransition(from: LiveStatus, to: LiveStatus): void {
  if (!canTransition(from, to)) throw new Error(`illegal channel transition ${from} → ${to}`);
}

export function isLiveStatus(v: string): v is LiveStatus {
  return (liveStatuses as readonly string[]).includes(v);
}

/** Statuses in which the channel holds (or is getting) a pipeline. */
export function isActive(s: LiveStatus): boolean {
  return s === 'STARTING' || s === 'LIVING' || s === 'RECONNECTING';
}
