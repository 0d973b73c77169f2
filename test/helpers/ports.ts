/**
 * Free loopback ports for tests: the benchmark's own helpers (bench/net.ts),
 * so that tests and the benchmark pick ports the same way.
 */
export { freePort, freePorts } from '../../bench/net.js';
