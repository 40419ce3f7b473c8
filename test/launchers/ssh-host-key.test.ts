/**
 * known_hosts parsing and host-key decisions, without a server. The hashed line and the
 * fingerprint below were produced by OpenSSH's own `ssh-keygen -H` / `ssh-keygen -lf`, so
 * they check our HMAC and fingerprint code against OpenSSH rather than against itself.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  fingerprintSha256,
  hostFieldMatches,
  hostKeyPolicy,
  keyTypeOf,
  knownHostsName,
  parseKnownHosts,
} from '../../src/remote/ssh/host-key.ts';

const KEY_B64 = 'AAAAC3NzaC1lZDI1NTE5AAAAIJcbepXYkxu/IYXb5iFa4beWtVp2nnQ1w9BJl+xcvhVt';
const KEY = Buffer.from(KEY_B64, 'base64');
const KEY_FP = 'SHA256:ltv55PfcqWicAvYGgn/u3Xipfz4C0hixS3JrkLrQryg'; // ssh-keygen -lf
const HASHED = `|1|cY6x7T3GSC56yu4xd2JNyx3CfI0=|Sp1zxv3JbZc76tq0xF3JeMCXMYI= ssh-ed25519 ${KEY_B64}`; // [example.org]:2200
const OTHER = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIPqwdZ7KKIyCwPYSm6oX/DmE9n+zy+z6q/Po/87Ya+ub', 'base64');

const dir = mkdtempSync(join(tmpdir(), 'hestia-kh-'));
after(() => rmSync(dir, { recursive: true, force: true }));
function khFile(text: string): string {
  const f = join(dir, `kh-${Math.random().toString(36).slice(2)}`);
  writeFileSync(f, text);
  return f;
}

test('fingerprintSha256 matches ssh-keygen -lf and keyTypeOf reads the blob type', () => {
  assert.equal(fingerprintSha256(KEY), KEY_FP);
  assert.equal(keyTypeOf(KEY), 'ssh-ed25519');
});

test('the lookup name is host on port 22 and [host]:port elsewhere', () => {
  assert.equal(knownHostsName('gpu-box', 22), 'gpu-box');
  assert.equal(knownHostsName('127.0.0.1', 2222), '[127.0.0.1]:2222');
});

test('hashed |1| host fields match the name OpenSSH hashed, and nothing else', () => {
  const [e] = parseKnownHosts(HASHED);
  assert.ok(e);
  assert.equal(hostFieldMatches(e.hosts, '[example.org]:2200'), true);
  assert.equal(hostFieldMatches(e.hosts, 'example.org'), false);
  assert.equal(hostFieldMatches(e.hosts, '[example.org]:2201'), false);
});

test('comma lists, wildcards and negations follow OpenSSH', () => {
  assert.equal(hostFieldMatches('a.lan,b.lan', 'b.lan'), true);
  assert.equal(hostFieldMatches('*.lan', 'gpu.lan'), true);
  assert.equal(hostFieldMatches('*.lan,!bad.lan', 'bad.lan'), false);
  assert.equal(hostFieldMatches('[10.0.0.?]:2222', '[10.0.0.5]:2222'), true);
  assert.equal(hostFieldMatches('gpu.lan', 'gpu.lan.evil.com'), false);
});

test('parseKnownHosts skips comments and malformed lines and reads markers', () => {
  const entries = parseKnownHosts(
    `# comment\n\nbroken-line\n@revoked h ssh-ed25519 ${KEY_B64}\nh ssh-ed25519 ${KEY_B64}\n`,
  );
  assert.deepEqual(
    entries.map((e) => [e.marker, e.hosts, e.line]),
    [
      ['@revoked', 'h', 4],
      [null, 'h', 5],
    ],
  );
});

test('a known_hosts policy accepts the pinned key (hashed entry) and restricts algorithms to its type', () => {
  const p = hostKeyPolicy({ host: 'example.org', port: 2200, knownHostsFile: khFile(`${HASHED}\n`) });
  assert.equal(p.verify(KEY), true);
  assert.deepEqual(p.algorithms, ['ssh-ed25519']);
});

test('a different key for a known host is a mismatch that names both fingerprints', () => {
  const p = hostKeyPolicy({ host: 'example.org', port: 2200, knownHostsFile: khFile(`${HASHED}\n`) });
  assert.equal(p.verify(OTHER), false);
  assert.match(p.failure()!, /host key mismatch for \[example\.org\]:2200/);
  assert.ok(p.failure()!.includes(KEY_FP), 'names the pinned fingerprint');
  assert.ok(p.failure()!.includes(fingerprintSha256(OTHER)), 'names the offered fingerprint');
});

test('a host without an entry is unknown; an unreadable file is unknown too', () => {
  const p = hostKeyPolicy({ host: 'other.org', port: 22, knownHostsFile: khFile(`${HASHED}\n`) });
  assert.equal(p.verify(KEY), false);
  assert.match(p.failure()!, /unknown host key for other\.org: no entry/);
  const q = hostKeyPolicy({ host: 'x', port: 22, knownHostsFile: join(dir, 'missing') });
  assert.equal(q.verify(KEY), false);
  assert.match(q.failure()!, /cannot read known_hosts file .*missing \(ENOENT\)/);
});

test('a @revoked key is rejected even when also listed as valid', () => {
  const p = hostKeyPolicy({
    host: 'h',
    port: 22,
    knownHostsFile: khFile(`h ssh-ed25519 ${KEY_B64}\n@revoked * ssh-ed25519 ${KEY_B64}\n`),
  });
  assert.equal(p.verify(KEY), false);
  assert.match(p.failure()!, /@revoked/);
});

test('host_key_sha256 pins by fingerprint, with or without prefix and padding, and wins over known_hosts', () => {
  for (const pin of [KEY_FP, `${KEY_FP}=`, KEY_FP.slice('SHA256:'.length)]) {
    const p = hostKeyPolicy({ host: 'h', port: 22, hostKeySha256: pin, knownHostsFile: join(dir, 'missing') });
    assert.equal(p.verify(KEY), true, pin);
    assert.equal(p.verify(OTHER), false);
    assert.match(p.failure()!, /host_key_sha256 pins SHA256:ltv55/);
  }
});
