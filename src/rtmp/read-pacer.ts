/**
 * Reads a player's socket in batches: after each read the socket is paused
 * (with a one-byte high-water mark, so libuv stops polling its descriptor),
 * and one shared timer resumes every paused socket each period. A relay's
 * source then costs one read, one wake-up and one parse per period instead
 * of one per TCP segment (about 70 per second for a 2 Mbit/s stream), while
 * the kernel holds what arrives meanwhile (about 26 KB per 100 ms at
 * 2 Mbit/s, far below a socket's receive buffer).
 *
 * The relay plays its source 250 ms behind its arrival (live-feeder.ts), so
 * arrivals bunched into 100 ms batches never reach its output late.
 */
import type { Socket } from 'node:net';

/** The period: well inside the relay's 250 ms of delay. */
export const readBatchMs = 100;

const paused = new Set<Socket>();
let timer: NodeJS.Timeout | null = null;

function tick(): void {
  timer = null;
  for (const socket of paused) if (!socket.destroyed) socket.resume();
  paused.clear();
}

/** Called after a read has been handled: holds the socket until the next period. */
export function holdUntilNextBatch(socket: Socket): void {
  if (socket.destroyed) return;
  socket.pause();
  paused.add(socket);
  // One timer for all paused sockets; it runs only while some socket waits.
  timer ??= setTimeout(tick, readBatchMs);
}

/** The connection ended: forget its socket. */
export function release(socket: Socket): void {
  paused.delete(socket);
}
