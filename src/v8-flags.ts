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
 * --semi-space-growth-factor=1 and --heap-growing-percent=20: the young
 * generation may otherwise grow to 16 MiB per semi-space, and the old one to
 * several times its live data before a full collection. The service
 * allocates little per second (status writes, API calls), but every channel
 * start reads a record with its relations, so after a burst of starts its
 * heap held about 35 MiB of live objects in 120 MiB (heap snapshot at 100
 * channels). With these, the young generation stays at its first size and a
 * full collection comes once the old one grew by a fifth: the service's PSS
 * at 100 channels fell from 150–181 MiB to 103–107 MiB, start latency
 * unchanged. Only flags V8 reads at each collection take effect here, once
 * the process runs: --max-semi-space-size, which this file set before, is
 * read when the heap is created, so it changed nothing (new space stayed 32
 * MiB); --optimize-for-size saved a little more (92 MiB) but made every
 * start about 90 ms slower, as it also changes how V8 compiles code
 * (bench/README.md, the service's own heap).
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--liftoff-only');
setFlagsFromString('--semi-space-growth-factor=1');
setFlagsFromString('--heap-growing-percent=20');
