/**
 * Is a server Hestia did not start already holding a local child's address? Checked on every
 * launch of a launcher whose children are local (`stopOnShutdown`), so a stranger is never
 * mistaken for the service (services/DESIGN.md, "A stranger on the port").
 *
 * ## Without delaying the launch
 * The check used to be an HTTP probe awaited before the launch. Awaiting it handed the event loop
 * over, and under a cold-start burst the loop first parsed and queued every request already
 * waiting in the socket buffers (~40 µs each: 40 ms for 1,000) before the child was spawned.
 * For a loopback address it is now a TCP connect issued *before* the launch and read after it:
 *
 * - `net.connect` to an IP literal issues its connect() system call on the next tick; the
 *   launch waits for that tick only (`connectIssued`), never for the event loop;
 * - on loopback the kernel normally delivers the SYN inside that call, so whether something
 *   listened is settled before the child exists (spawning and binding a port take milliseconds).
 *   Under heavy loopback traffic the kernel may finish it a little later; should our own fast
 *   child be listening by then, /proc names it as the holder and it is not taken for a stranger;
 * - refused (the usual case): nothing held the port, and the child was launched without waiting.
 *   Accepted: something held it before the launch; the HTTP probe then decides, as before,
 *   whether it is a server that answers (a stranger), and the child just launched is stopped.
 *
 * Any other address (a host name, a remote IP) keeps the HTTP probe before the launch.
 */
import { isIP, Socket } from 'node:net';
import type { ServiceConfig } from '../config/schema.ts';
import { readStat, tcpListener } from '../launchers/process/proc.ts';
import { expandTemplate, type TemplateVars } from '../launchers/types.ts';
import { probeOnce } from '../remote/http-probe.ts';
import { PROBE_TIMEOUT_MS } from './probe.ts';

const LOCAL_HOSTS: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '[::1]', '0.0.0.0', '[::]']);

/** The URL whose answer means "taken": health_url, else base_url. */
function checkedUrl(cfg: ServiceConfig, vars: TemplateVars): { url: string; u: URL } {
  const url = expandTemplate(cfg.health_url ?? cfg.base_url, vars);
  return { url, u: new URL(url) };
}

function portOf(u: URL): number {
  return Number(u.port || (u.protocol === 'https:' ? '443' : '80'));
}

/** A loopback IP literal (the kernel settles a connect to it inside the system call), else null. */
function loopbackLiteral(hostname: string): string | null {
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  const family = isIP(host);
  if (family === 4) return host.startsWith('127.') || host === '0.0.0.0' ? host : null;
  if (family === 6) return host === '::1' || host === '::' ? host : null;
  return null;
}

/** A connect issued before the launch (see the module comment). */
export interface PortCheck {
  /** Resolves once the connect() system call was made: launch after this, not before. */
  readonly connectIssued: Promise<void>;
  /**
   * Whether something accepted the connection. null: no verdict (no answer within the probe
   * timeout, or an error other than "refused", e.g. no IPv6): like the HTTP probe's "no answer",
   * that is not a stranger. Only `true` is checked further: an HTTP probe sent after the launch
   * could otherwise reach our own fast child.
   */
  readonly accepted: Promise<boolean | null>;
}

/**
 * Start the pre-launch check of the service's address, or null when the address is not a
 * loopback IP literal (then `answeringStranger` must run before the launch).
 */
export function checkPortBeforeLaunch(cfg: ServiceConfig, vars: TemplateVars): PortCheck | null {
  const { u } = checkedUrl(cfg, vars);
  const host = loopbackLiteral(u.hostname);
  if (host === null) return null;
  const socket = new Socket();
  const accepted = new Promise<boolean | null>((resolve) => {
    const done = (verdict: boolean | null) => {
      socket.destroy();
      resolve(verdict);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(null));
    socket.once('connect', () => done(true));
    socket.once('error', (err: Error & { code?: string }) => done(err.code === 'ECONNREFUSED' ? false : null));
  });
  socket.connect({ host, port: portOf(u) });
  // net.connect to an IP literal calls connect() in a process.nextTick callback queued just now;
  // a tick queued after it runs after it.
  const connectIssued = new Promise<void>((resolve) => process.nextTick(resolve));
  return { connectIssued, accepted };
}

/**
 * When the service's health_url (else base_url) already answers, a server Hestia did not start
 * holds the address (a start only runs when Hestia has no running record of the service). The
 * sentence saying so, naming the port; null when nothing answers. An HTTP answer of any status
 * on base_url counts (something listens); on health_url only a 2xx does.
 */
export async function answeringStranger(
  cfg: ServiceConfig,
  vars: TemplateVars,
  signal: AbortSignal,
  /** The process group of a child launched before this probe: a listener in it is ours. */
  ownGroup: number | null = null,
): Promise<string | null> {
  const { url, u } = checkedUrl(cfg, vars);
  const r = await probeOnce(url, PROBE_TIMEOUT_MS, signal);
  signal.throwIfAborted();
  const answered = r.ok || (cfg.health_url == null && /^status \d{3}/.test(r.detail));
  if (!answered) return null;
  const port = portOf(u);
  // The process holding the port, when cheaply known (a local listener readable in /proc).
  const holder = LOCAL_HOSTS.has(u.hostname) ? tcpListener(port) : null;
  if (holder !== null && ownGroup !== null && readStat(holder.pid)?.pgrp === ownGroup) return null;
  const by = holder === null ? '' : ` by pid ${holder.pid} (${holder.command.slice(0, 200)})`;
  return (
    `port ${port} on ${u.hostname} is already in use${by}: ${url} answered (${r.ok ? 'ready' : r.detail}) before Hestia ` +
    `launched the service, so another server holds the service's address; stop it, move the service to a free port, ` +
    `or set adopt_running: true to use that server as the service`
  );
}
