/**
 * Host-key pinning for SSH connections (SPEC §6): an unknown or changed host key fails the
 * connection with a message that says which; it is never accepted silently.
 *
 * Rule (documented for users):
 * - `host_key_sha256: "SHA256:…"` pins exactly one key by its OpenSSH fingerprint (the
 *   `ssh-keygen -lf key.pub` form; trailing `=` padding optional). When set it wins.
 * - else `known_hosts: <file>` (default `~/.ssh/known_hosts`, like OpenSSH with
 *   `StrictHostKeyChecking=yes`): the host is looked up as `host` on port 22 and as
 *   `[host]:port` on any other port, exactly as OpenSSH writes it. Plain, comma-separated,
 *   wildcard (`*`, `?`), negated (`!pattern`) and hashed (`|1|salt|hash`) host fields are
 *   understood. `@revoked` lines reject that key; `@cert-authority` lines are ignored (host
 *   certificates are not supported).
 * - No matching line → "unknown host key"; matching lines but none with the offered key →
 *   "host key mismatch". Both fail the connection.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface KnownHostEntry {
  marker: '@revoked' | '@cert-authority' | null;
  /** The raw host field: `a,b,[c]:2222` or `|1|salt|hash`. */
  hosts: string;
  keyType: string;
  key: Buffer;
  line: number;
}

/** Parse OpenSSH known_hosts text; malformed lines are skipped (as OpenSSH does). */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const parts = line.split(/\s+/);
    let marker: KnownHostEntry['marker'] = null;
    if (parts[0] === '@revoked' || parts[0] === '@cert-authority') {
      marker = parts[0];
      parts.shift();
    }
    const [hosts, keyType, b64] = parts;
    if (!hosts || !keyType || !b64) return;
    const key = Buffer.from(b64, 'base64');
    if (key.length === 0) return;
    out.push({ marker, hosts, keyType, key, line: i + 1 });
  });
  return out;
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(pattern: string): RegExp {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i');
}

/** Whether an entry's host field names `lookup` (`host` or `[host]:port`). */
export function hostFieldMatches(hosts: string, lookup: string): boolean {
  if (hosts.startsWith('|1|')) {
    const [, , saltB64, hashB64] = hosts.split('|');
    if (!saltB64 || !hashB64) return false;
    const mac = createHmac('sha1', Buffer.from(saltB64, 'base64')).update(lookup).digest('base64');
    return mac === hashB64;
  }
  let matched = false;
  for (const pat of hosts.split(',')) {
    if (pat.startsWith('!')) {
      if (globToRegExp(pat.slice(1)).test(lookup)) return false;
    } else if (globToRegExp(pat).test(lookup)) {
      matched = true;
    }
  }
  return matched;
}

/** OpenSSH fingerprint of a public key blob: `SHA256:` + unpadded base64 of its SHA-256. */
export function fingerprintSha256(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside an SSH public key blob (`ssh-ed25519`, …). */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const n = key.readUInt32BE(0);
  return n > 0 && n < 64 && key.length >= 4 + n ? key.subarray(4, 4 + n).toString('latin1') : 'unknown';
}

function normaliseFingerprint(fp: string): string {
  const v = fp.trim().replace(/=+$/, '');
  return v.startsWith('SHA256:') ? v : `SHA256:${v}`;
}

/** Host-key algorithms to negotiate, from the key types pinned in known_hosts. */
function algorithmsFor(keyTypes: Set<string>): string[] {
  const out: string[] = [];
  for (const t of keyTypes) {
    // An RSA key is negotiated under the SHA-2 signature names; ssh2 1.17 knows these.
    if (t === 'ssh-rsa') out.push('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa');
    else out.push(t);
  }
  return out;
}

export interface HostKeyPolicyInput {
  host: string;
  port: number;
  /** `SHA256:…` fingerprint; wins over known_hosts when set. */
  hostKeySha256?: string | undefined;
  /** Path of a known_hosts file (already `~`-expanded). */
  knownHostsFile: string;
}

export interface HostKeyPolicy {
  /** Passed to ssh2 as `hostVerifier` (sync form: raw key blob in, boolean out). */
  verify(key: Buffer): boolean;
  /** Why the last verify() failed, for the error message. */
  failure(): string | undefined;
  /**
   * Host-key algorithms to offer, so the server presents a key type that is pinned (as
   * OpenSSH prefers known key types). Undefined = ssh2's defaults.
   */
  algorithms: string[] | undefined;
  /** Human description of what pins the key ("known_hosts /x" or "host_key_sha256"). */
  source: string;
}

/**
 * Build the verifier for one connection. Reading known_hosts happens here (per connection,
 * so an edited file takes effect without a restart); an unreadable file yields a policy that
 * rejects every key with a message naming the file.
 */
export function hostKeyPolicy(input: HostKeyPolicyInput): HostKeyPolicy {
  const lookup = knownHostsName(input.host, input.port);
  let reason: string | undefined;
  const offered = (key: Buffer) => `${keyTypeOf(key)} ${fingerprintSha256(key)}`;

  if (input.hostKeySha256) {
    const want = normaliseFingerprint(input.hostKeySha256);
    return {
      source: 'host_key_sha256',
      algorithms: undefined,
      failure: () => reason,
      verify(key) {
        const got = fingerprintSha256(key);
        if (got === want) return true;
        reason = `host key mismatch for ${lookup}: server offered ${offered(key)}, but host_key_sha256 pins ${want}`;
        return false;
      },
    };
  }

  let entries: KnownHostEntry[] = [];
  let readError: string | undefined;
  try {
    entries = parseKnownHosts(readFileSync(input.knownHostsFile, 'utf8'));
  } catch (err) {
    readError = (err as NodeJS.ErrnoException).code ?? String(err);
  }
  const mine = entries.filter((e) => e.marker !== '@cert-authority' && hostFieldMatches(e.hosts, lookup));
  const usable = mine.filter((e) => e.marker === null);
  const types = new Set(usable.map((e) => e.keyType));
  return {
    source: `known_hosts ${input.knownHostsFile}`,
    algorithms: types.size > 0 ? algorithmsFor(types) : undefined,
    failure: () => reason,
    verify(key) {
      if (readError !== undefined) {
        reason = `unknown host key for ${lookup}: cannot read known_hosts file ${input.knownHostsFile} (${readError}); server offered ${offered(key)}`;
        return false;
      }
      if (mine.some((e) => e.marker === '@revoked' && e.key.equals(key))) {
        reason = `host key for ${lookup} is marked @revoked in ${input.knownHostsFile}: ${offered(key)}`;
        return false;
      }
      if (usable.some((e) => e.key.equals(key))) return true;
      if (usable.length === 0) {
        reason =
          `unknown host key for ${lookup}: no entry in ${input.knownHostsFile} ` +
          `(server offered ${offered(key)}); add it (ssh-keyscan -p ${input.port} ${input.host}) or set host_key_sha256`;
      } else {
        const pinned = usable.map((e) => `${e.keyType} ${fingerprintSha256(e.key)} (line ${e.line})`).join(', ');
        reason =
          `host key mismatch for ${lookup}: server offered ${offered(key)}, ` +
          `${input.knownHostsFile} has ${pinned}; the host was reinstalled or someone is intercepting`;
      }
      return false;
    },
  };
}
