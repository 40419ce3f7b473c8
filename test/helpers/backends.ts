/**
 * The external back ends some tests need — the CI sshd, Slurm, podman's Docker API
 * (scripts/ci/setup-backends.sh sets them up) and Debian's Chromium — and THE rule for when one
 * is missing: `requireOrSkip`.
 *
 * Every skip of the suite for a missing back end goes through `requireOrSkip(what, reason)`:
 * - available (reason null): returns false; the tests run.
 * - missing, locally: registers one test named after it, skipped with the reason (so node's own
 *   `# skipped N` counts it: node 20 does not count a suite skipped with `{skip}`), and returns
 *   the reason for the caller's `describe`/`test` `{skip}`.
 * - missing where it is required — CI=true, or HESTIA_REQUIRE_BACKENDS=1 (.ci/run sets it) —
 *   registers that test as a FAILING one naming what is missing; the run fails instead of
 *   passing by skipping.
 *
 * HESTIA_CI_DIR (default /tmp/hestia-ci) says where the back ends' files and sockets are;
 * HESTIA_CHROMIUM (default /usr/bin/chromium) the browser.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Client, request } from 'undici';
import { portOpen } from './net.ts';

const run = promisify(execFile);

export const CI_DIR = process.env.HESTIA_CI_DIR ?? '/tmp/hestia-ci';
export const SSH_DIR = `${CI_DIR}/ssh`;
export const SLURM_CONF = `${CI_DIR}/slurm/slurm.conf`;
export const PODMAN_SOCK = `${CI_DIR}/podman.sock`;
export const CHROMIUM = process.env.HESTIA_CHROMIUM ?? '/usr/bin/chromium';
const SETUP_HINT = 'run scripts/ci/setup-backends.sh';

/** Why missing back ends fail here instead of skipping, or null when they may skip. */
export function backendsRequiredBy(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.HESTIA_REQUIRE_BACKENDS === '1') return 'HESTIA_REQUIRE_BACKENDS=1';
  if (env.CI === 'true' || env.CI === '1') return `CI=${env.CI}`;
  return null;
}

/**
 * `reason` null: false (run). Otherwise a counted skip — or, where back ends are required, a
 * failing test — named after `what`; returns `reason` for the caller's `{skip}` option.
 */
export function requireOrSkip(what: string, reason: string | null): string | false {
  if (reason === null) return false;
  const requiredBy = backendsRequiredBy();
  if (requiredBy !== null) {
    test(`${what} is available (required: ${requiredBy})`, () => {
      throw new Error(`${reason}; ${requiredBy} requires it, so its tests fail instead of skipping`);
    });
  } else {
    test(`${what} is available`, { skip: reason }, () => {});
  }
  return reason;
}

/** Why the CI sshd cannot be used, or null when it can. */
export async function sshdUnavailable(): Promise<string | null> {
  for (const f of ['client_key', 'known_hosts', 'wrong_key']) {
    if (!existsSync(`${SSH_DIR}/${f}`)) return `sshd back end not set up (${SSH_DIR}/${f} missing; ${SETUP_HINT})`;
  }
  if (!(await portOpen(2222))) return `sshd not listening on 127.0.0.1:2222 (${SETUP_HINT})`;
  return null;
}

/** Why the CI Slurm cluster cannot be used, or null when it can. */
export async function slurmUnavailable(): Promise<string | null> {
  if (!existsSync(SLURM_CONF)) return `Slurm back end not set up (${SLURM_CONF} missing; ${SETUP_HINT})`;
  try {
    const { stdout } = await run('sinfo', ['-h', '-n', 'localhost', '-o', '%t'], {
      env: { ...process.env, SLURM_CONF },
      timeout: 10_000,
    });
    if (stdout.trim() !== 'idle' && stdout.trim() !== 'mix' && stdout.trim() !== 'alloc')
      return `Slurm node 'localhost' not usable (state '${stdout.trim()}'; ${SETUP_HINT})`;
  } catch (err) {
    return `Slurm not answering (${(err as Error).message.split('\n')[0]}; ${SETUP_HINT})`;
  }
  return null;
}

/** Why the CI podman Docker API cannot be used, or null when it can. */
export async function podmanUnavailable(): Promise<string | null> {
  if (!existsSync(PODMAN_SOCK)) return `podman API socket ${PODMAN_SOCK} missing (${SETUP_HINT})`;
  const client = new Client('http://d', { socketPath: PODMAN_SOCK });
  try {
    const r = await request('http://d/_ping', { dispatcher: client });
    const text = await r.body.text();
    if (text !== 'OK') return `podman API at ${PODMAN_SOCK} answered '${text}' to _ping`;
  } catch (err) {
    return `podman API at ${PODMAN_SOCK} not answering (${(err as Error).message}; ${SETUP_HINT})`;
  } finally {
    await client.close();
  }
  return null;
}

/** Why the dashboard's headless Chromium cannot be used, or null when it can. */
export function chromiumUnavailable(): string | null {
  return existsSync(CHROMIUM)
    ? null
    : `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run the dashboard tests`;
}
