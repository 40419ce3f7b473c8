/**
 * One V8 setting for the gateway process: the old generation's growing factor.
 *
 * V8 starts a major GC (mark-compact) when the room left in the old generation falls to the
 * young generation's capacity, and it counts as "used" not only the old generation's objects
 * but also the external memory allocated since the last major GC. External memory is every
 * ArrayBuffer's backing store, and every socket read of a proxied body is a new one
 * (~400-800 MB/s for 64 KiB responses on one core). A proxy allocates little on the JS heap
 * per response (~1 KB), so the young buffers wait seconds for a scavenge, and with V8's own
 * growing factor the room was used up within tens of milliseconds of traffic: phases of 5-12
 * major GCs per second, each a 7-9 ms pause for every request in flight (the p99 of large
 * bodies). After each major GC V8 sets the next limit to the live size times its growing
 * factor; a fixed factor of 4 (V8's own maximum for large heaps) leaves a room of three times
 * the live size (~60 MB for the gateway), which the scavenges keep ahead of.
 *
 * Measured (bench/README.md, "Findings, session 6"): major GCs in a 64 KiB run 150-190 → 0-2,
 * p99 23-36 ms → 6-13 ms, CPU per response −10-25 %, peak RSS unchanged within noise.
 *
 * `--heap-growing-percent` is read by V8 each time it computes a limit, so setting it at the
 * start of the process takes effect. A value given on node's own command line wins (0 restores
 * V8's dynamic factor): docs/configuration.md, "Running in less memory".
 */
import { setFlagsFromString } from 'node:v8';

/** Growing factor 1 + 300 / 100 = 4. */
export const HEAP_GROWING_PERCENT = 300;

const FLAG = /^--heap[-_]growing[-_]percent(=|$)/;

/**
 * Set the growing factor unless node's command line (`execArgv`) already sets it. Returns what
 * applies: `set` (this module's value) or `kept` (the command line's).
 */
export function tuneHeapForProxying(execArgv: readonly string[] = process.execArgv): 'set' | 'kept' {
  if (execArgv.some((a) => FLAG.test(a))) return 'kept';
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return 'set';
}
