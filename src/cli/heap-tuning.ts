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
 * factor; a fixed factor of 2.5 (inside the range V8 picks from on its own, 1.1-4) leaves a
 * room of 1.5 times the live size (~30 MB for the gateway), which the scavenges keep ahead of.
 *
 * Measured, one A/B run against V8's own factor (bench/results/2026-12-03T19-07-00, 64 KiB):
 * major GCs 8.4/s → 0.5/s at c=32, p99 41 → 12 ms (c=32) and 104 → 78 ms (c=256), CPU per
 * response 226 → 163 µs; peak RSS at c=256 158 MiB against 161. A factor of 4 did as well on
 * GCs but cost ~30 MiB of peak RSS (results/2026-12-03T18-55-26).

 * `--heap-growing-percent` is read by V8 each time it computes a limit, so setting it at the
 * start of the process takes effect. A value given on node's own command line wins (0 restores
 * V8's dynamic factor): docs/configuration.md, "Running in less memory".
 */
import { setFlagsFromString } from 'node:v8';

/** Growing factor 1 + 150 / 100 = 2.5. */
export const HEAP_GROWING_PERCENT = 150;

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
