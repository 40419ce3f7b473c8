/**
 * The `POST /containers/create` body built from the launcher's `create` block.
 *
 * Defaults and why:
 * - `network_mode: host`: the service answers on the machine's own ports, so base_url is
 *   the same as for a process; no port publishing, no bridge/iptables state.
 * - `init: true` (HostConfig.Init): many servers run as PID 1 ignore SIGTERM (PID 1 has no
 *   default signal handlers), so every stop would wait the full `stop_timeout_s` and end in
 *   SIGKILL. A tiny init forwards the signal (busybox httpd: stop in ~130 ms vs 5 s).
 * - `ulimits`: empty = the daemon's defaults. On hosts where root lacks CAP_SYS_RESOURCE
 *   (some CI containers) those defaults cannot be applied and the start fails with
 *   "setrlimit RLIMIT_NOFILE: operation not permitted"; set `{nofile: 4096, nproc: 4096}`
 *   there (or lower the daemon's default_ulimits). Give both: with podman, setting only
 *   `nofile` brought back the built-in nproc default and the start failed on RLIMIT_NPROC.
 *   Not lowered by default because a real model server on a real host may need more than
 *   4096 open files.
 * - Label `hestia.service=<id>`: shows which containers Hestia created.
 */
import type { DockerLauncherConfig } from '../../config/schema.ts';
import { expandTemplate, type TemplateVars } from '../types.ts';

export type CreateConfig = NonNullable<DockerLauncherConfig['create']>;

export function createSpec(create: CreateConfig, vars: TemplateVars): Record<string, unknown> {
  const hostConfig: Record<string, unknown> = { NetworkMode: create.network_mode, Init: create.init };
  const ulimits = Object.entries(create.ulimits).map(([Name, n]) => ({ Name, Soft: n, Hard: n }));
  if (ulimits.length > 0) hostConfig.Ulimits = ulimits;
  return {
    Image: create.image,
    ...(create.cmd ? { Cmd: create.cmd.map((a) => expandTemplate(a, vars)) } : {}),
    Env: Object.entries(create.env).map(([k, v]) => `${k}=${expandTemplate(v, vars)}`),
    Labels: { 'hestia.service': vars.service },
    HostConfig: hostConfig,
  };
}
