/**
 * What the agent reports about its machine (SPEC §15): CPU count and load, memory, and per-GPU
 * memory from `nvidia-smi --query-gpu=index,name,memory.used,memory.total
 * --format=csv,noheader,nounits` when that program exists. Its output is one line per GPU,
 * fields separated by ", ", memory in MiB, e.g.:
 *
 *     0, NVIDIA GeForce RTX 4090, 1234, 24564
 *
 * A field nvidia-smi cannot read is `[N/A]` or `[Not Supported]`: such a GPU is skipped rather
 * than reported with made-up numbers.
 */
import { execFile } from 'node:child_process';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import type { AgentResources, GpuInfo } from '../remote/agent/protocol.ts';

export const NVIDIA_SMI_ARGS = [
  '--query-gpu=index,name,memory.used,memory.total',
  '--format=csv,noheader,nounits',
] as const;

const NVIDIA_SMI_TIMEOUT_MS = 5_000;

/** Parse nvidia-smi's CSV (noheader, nounits). Throws on a line that is not in that format. */
export function parseNvidiaSmiCsv(text: string): GpuInfo[] {
  const out: GpuInfo[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const fields = line.split(',').map((f) => f.trim());
    if (fields.length < 4) throw new Error(`unexpected nvidia-smi line: ${JSON.stringify(line.slice(0, 200))}`);
    // The name may itself contain commas: index first, the two numbers last.
    const index = Number(fields[0]);
    const total = Number(fields.at(-1));
    const used = Number(fields.at(-2));
    const name = fields.slice(1, -2).join(', ');
    if (!Number.isInteger(index)) throw new Error(`unexpected nvidia-smi line: ${JSON.stringify(line.slice(0, 200))}`);
    if (!Number.isFinite(used) || !Number.isFinite(total)) continue; // [N/A], [Not Supported]
    out.push({ index, name, memoryUsedMb: used, memoryTotalMb: total });
  }
  return out;
}

export type GpuReader = () => Promise<{ gpus: GpuInfo[] | null; error?: string }>;

/** Run nvidia-smi (`command` for tests); null gpus when it is not installed. */
export function nvidiaSmiReader(command = 'nvidia-smi'): GpuReader {
  return () =>
    new Promise((resolve) => {
      execFile(
        command,
        [...NVIDIA_SMI_ARGS],
        { timeout: NVIDIA_SMI_TIMEOUT_MS, maxBuffer: 256 * 1024 },
        (err, stdout, stderr) => {
          if (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return resolve({ gpus: null });
            return resolve({ gpus: null, error: `${command}: ${(stderr || err.message).trim().slice(0, 300)}` });
          }
          try {
            resolve({ gpus: parseNvidiaSmiCsv(stdout) });
          } catch (e) {
            resolve({ gpus: null, error: (e as Error).message });
          }
        },
      );
    });
}

export async function readResources(gpu: GpuReader): Promise<AgentResources> {
  const g = await gpu();
  const la = loadavg();
  return {
    cpus: cpus().length,
    loadavg: [la[0] ?? 0, la[1] ?? 0, la[2] ?? 0],
    memory: { totalMb: Math.round(totalmem() / 1048576), freeMb: Math.round(freemem() / 1048576) },
    gpus: g.gpus,
    ...(g.error ? { gpuError: g.error } : {}),
    at: new Date().toISOString(),
  };
}
