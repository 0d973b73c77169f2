/**
 * V8 settings for the service process, set before anything compiles
 * WebAssembly. Imported first by main.ts (an import's module body runs before
 * the imports after it are even loaded).
 *
 * --liftoff-only: Prisma 7's query compiler is a WebAssembly module. V8
 * compiles it with its baseline compiler (Liftoff) and then again, in the
 * background, with its optimising one: the second copy of the machine code
 * costs about 50 MiB of the service's memory (measured: 107 → 57 MiB PSS for
 * an open client after one query), and the service's queries are few and not
 * on any media path. Baseline code was not slower here either: 300 queries
 * took 145 ms against 212 ms with the background compiles competing.
 *
 * --max-semi-space-size: the young generation may grow to 16 MiB per
 * semi-space by default; the service allocates little per second (status
 * writes, API calls), so a smaller one costs a few more scavenges and saves
 * resident memory.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--liftoff-only');
setFlagsFromString('--max-semi-space-size=2');
