/**
 * Opening an authenticated, host-key-checked SSH connection to a machine (ssh2 client).
 *
 * One connection per command: a remote start/stop is rare and ~0.3 s per handshake is
 * noise next to a cold start, while a pooled connection would need keepalive, reconnect and
 * half-dead-socket handling. Every failure becomes a LaunchError whose message says which
 * of refused / timed out / host key / authentication went wrong.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import type { Client, ConnectConfig } from 'ssh2';
import type { Config } from '../../config/schema.ts';
import { LaunchError } from '../errors.ts';
import type { PlacedMachine } from '../templates.ts';
import { hostKeyPolicy } from './host-key.ts';

/** Everything needed to reach one machine over SSH. */
export interface SshTarget {
  machineId: string;
  host: string;
  port: number;
  user: string;
  /** Private key path (`~` expanded); undefined = ssh-agent, else ~/.ssh/id_{ed25519,ecdsa,rsa}. */
  identityFile?: string | undefined;
  /** known_hosts path (`~` expanded); default ~/.ssh/known_hosts. */
  knownHosts: string;
  hostKeySha256?: string | undefined;
  connectTimeoutMs: number;
}

export function expandHome(p: string): string {
  return p === '~' ? homedir() : p.startsWith('~/') ? `${homedir()}${p.slice(1)}` : p;
}

/**
 * The SSH target for machine `machineId` from the config's `machines` section. A machine
 * that is not configured is accepted only when it is the placed machine (`fallback`, e.g.
 * the implicit `local`): it is then reached with default ssh settings.
 */
export function sshTargetFor(config: Config, machineId: string, fallback?: PlacedMachine): SshTarget {
  const m = config.machines[machineId];
  let host: string;
  if (m) host = m.host;
  else if (fallback && fallback.id === machineId) host = fallback.host;
  else throw new LaunchError(`unknown machine '${machineId}' for ssh`, { machineId });
  const s = m?.ssh;
  return {
    machineId,
    host,
    port: s?.port ?? 22,
    user: s?.user ?? 'root',
    identityFile: s?.identity_file ? expandHome(s.identity_file) : undefined,
    knownHosts: expandHome(s?.known_hosts ?? '~/.ssh/known_hosts'),
    hostKeySha256: s?.host_key_sha256 ?? undefined,
    connectTimeoutMs: s?.connect_timeout_ms ?? 10_000,
  };
}

/** `user@host:port` for messages. */
export function describeTarget(t: SshTarget): string {
  return `${t.user}@${t.host}:${t.port}`;
}

function authConfig(t: SshTarget): Pick<ConnectConfig, 'privateKey' | 'agent'> & { keyDesc: string } {
  let file = t.identityFile;
  if (!file) {
    const agent = process.env.SSH_AUTH_SOCK;
    if (agent) return { agent, keyDesc: 'ssh-agent' };
    file = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => `${homedir()}/.ssh/${f}`).find((f) => existsSync(f));
  }
  if (!file)
    throw new LaunchError(
      `no ssh identity for machine '${t.machineId}': set machines.${t.machineId}.ssh.identity_file`,
      {
        machineId: t.machineId,
      },
    );
  try {
    return { privateKey: readFileSync(file), keyDesc: file };
  } catch (err) {
    throw new LaunchError(
      `cannot read ssh identity_file ${file} for machine '${t.machineId}': ${(err as NodeJS.ErrnoException).code ?? err}`,
      { machineId: t.machineId, identityFile: file },
    );
  }
}

/**
 * ssh2, loaded on first use: it is needed only by ssh/slurm launchers and ssh wake actions, and
 * loading it costs every gateway ~14 MiB of RSS (its crypto tables), whether or not a machine
 * is ever reached over SSH (measured: bare node 40 MiB → 54 MiB after `require('ssh2')`).
 */
let ssh2: Promise<typeof import('ssh2')> | null = null;
function loadSsh2(): Promise<typeof import('ssh2')> {
  ssh2 ??= import('ssh2');
  return ssh2;
}

/**
 * Connect and authenticate. Resolves with a ready client (the caller must `end()` it);
 * rejects with a LaunchError. `signal` aborts the attempt.
 */
export async function openSsh(t: SshTarget, signal?: AbortSignal): Promise<Client> {
  const where = describeTarget(t);
  const details = { machineId: t.machineId, host: t.host, port: t.port, user: t.user };
  const policy = hostKeyPolicy({
    host: t.host,
    port: t.port,
    hostKeySha256: t.hostKeySha256,
    knownHostsFile: t.knownHosts,
  });
  const { keyDesc, ...authOpts } = authConfig(t);
  const { Client } = await loadSsh2();

  return new Promise<Client>((resolve, reject) => {
    const client = new Client();
    let settled = false;
    const finish = (err: LaunchError | null) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (err) {
        client.destroy();
        reject(err);
      } else resolve(client);
    };
    const onAbort = () => finish(new LaunchError(`ssh connection to ${where} aborted`, { ...details, aborted: true }));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });

    client.on('ready', () => finish(null));
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      const hostKeyFailure = policy.failure();
      if (hostKeyFailure) {
        finish(
          new LaunchError(`ssh to machine '${t.machineId}': ${hostKeyFailure}`, { ...details, reason: 'host_key' }),
        );
      } else if (err.level === 'client-authentication') {
        finish(
          new LaunchError(`ssh authentication refused for ${where} (machine '${t.machineId}') with key ${keyDesc}`, {
            ...details,
            reason: 'auth',
            key: keyDesc,
          }),
        );
      } else if (err.level === 'client-timeout') {
        finish(
          new LaunchError(`ssh connection to ${where} timed out after ${t.connectTimeoutMs} ms (no SSH handshake)`, {
            ...details,
            reason: 'timeout',
          }),
        );
      } else if (err.code === 'ECONNREFUSED') {
        finish(
          new LaunchError(`ssh connection to ${where} refused (is sshd running?)`, { ...details, reason: 'refused' }),
        );
      } else {
        finish(new LaunchError(`ssh connection to ${where} failed: ${err.message}`, { ...details, reason: 'connect' }));
      }
    });
    client.on('close', () =>
      finish(
        new LaunchError(`ssh connection to ${where} closed before it was ready`, { ...details, reason: 'closed' }),
      ),
    );

    const cfg: ConnectConfig = {
      host: t.host,
      port: t.port,
      username: t.user,
      readyTimeout: t.connectTimeoutMs,
      ...authOpts,
      hostVerifier: (key: Buffer) => policy.verify(key),
    };
    if (policy.algorithms) {
      // Cast: ssh2's typings list the algorithm names as a literal union; ours come from
      // known_hosts and are passed through exactly as OpenSSH names them.
      cfg.algorithms = {
        serverHostKey: policy.algorithms as NonNullable<ConnectConfig['algorithms']>['serverHostKey'],
      };
    }
    client.connect(cfg);
  });
}
