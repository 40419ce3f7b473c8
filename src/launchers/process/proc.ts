/**
 * Linux /proc readers used to tell whether a process (group) is alive and still the one we
 * launched. `kill(pid, 0)` alone cannot: a pid can be reused by an unrelated process after a
 * reboot or a long time, and a zombie nobody reaped still "exists". The pair (pid, start time
 * in clock ticks since boot) plus the boot id identifies one process for the machine's lifetime.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface ProcStat {
  pid: number;
  /** R, S, D, Z, T, … */
  state: string;
  ppid: number;
  pgrp: number;
  /** Field 22 of /proc/<pid>/stat: start time after boot, in clock ticks. */
  startTime: string;
}

/** Parse /proc/<pid>/stat; null when the process does not exist (or /proc is unavailable). */
export function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces and ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const rest = text.slice(close + 2).split(' ');
  const state = rest[0];
  const ppid = Number(rest[1]);
  const pgrp = Number(rest[2]);
  const startTime = rest[19];
  if (state === undefined || startTime === undefined) return null;
  return { pid, state, ppid, pgrp, startTime };
}

/** A process that exists and is not a zombie. */
export function isLive(pid: number): boolean {
  const st = readStat(pid);
  return st !== null && st.state !== 'Z' && st.state !== 'X';
}

/** argv of a process (NUL-separated in /proc), or null. */
export function readCmdline(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const parts = raw.split('\0');
    if (parts.at(-1) === '') parts.pop();
    return parts;
  } catch {
    return null;
  }
}

export function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

export const HAS_PROC = (() => {
  try {
    readdirSync('/proc/self');
    return true;
  } catch {
    return false;
  }
})();

/**
 * Live (non-zombie) members of process group `pgid`. Without /proc, falls back to
 * `kill(-pgid, 0)`, which cannot tell zombies apart: it then reports the leader's pid.
 */
export function liveGroupMembers(pgid: number): number[] {
  if (!HAS_PROC) {
    try {
      process.kill(-pgid, 0);
      return [pgid];
    } catch {
      return [];
    }
  }
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of entries) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const st = readStat(Number(name));
    if (st && st.pgrp === pgid && st.state !== 'Z' && st.state !== 'X') out.push(st.pid);
  }
  return out;
}

/**
 * The process listening on TCP `port` (any local address), when /proc shows it: its pid and
 * command line. Null when nothing listens there, /proc is unavailable, or the listener belongs to
 * a process whose descriptors we cannot read (another user's). For error messages only: one read
 * of /proc/net/tcp{,6}, then the descriptors of readable processes until the socket is found.
 */
export function tcpListener(port: number): { pid: number; command: string } | null {
  if (!HAS_PROC) return null;
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      // Column 4 is the state (0A = LISTEN), column 10 the socket's inode.
      if (local === undefined || cols[3] !== '0A' || cols[9] === undefined) continue;
      if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) inodes.add(cols[9]);
    }
  }
  if (inodes.size === 0) return null;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${entry}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m !== null && inodes.has(m[1]!)) {
        const pid = Number(entry);
        return { pid, command: readCmdline(pid)?.join(' ') ?? '?' };
      }
    }
  }
  return null;
}
