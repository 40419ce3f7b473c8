/**
 * A minimal Docker Engine API client on undici: just the calls the docker launcher makes
 * (inspect, create, start, stop, wait, logs), over the unix socket or plain TCP.
 * Podman's Docker-compatible service answers the same paths (verified with podman 4.3, API
 * 1.41), which is what the tests run against.
 *
 * Requests go through one `Client` (keep-alive; undici serialises them on one connection,
 * which is fine for a launcher's few calls). A `wait` is a long poll that can last as long
 * as the container runs, so each wait gets its own short-lived Client and never blocks the
 * shared connection.
 */
import { Client } from '../../http-client.ts';
import { excerpt } from '../../remote/output-excerpt.ts';
import { LaunchError } from '../types.ts';

export const API_PREFIX = '/v1.41';

export interface DockerEndpoint {
  /** unix socket path; used when `dockerHost` is not set. */
  socket: string;
  /** `tcp://host:port` (plain HTTP; TLS is not supported here). */
  dockerHost?: string | undefined;
}

export interface ContainerState {
  Status: string;
  Running: boolean;
  /** Frozen by `POST /pause` (Running stays true). */
  Paused?: boolean;
  ExitCode: number;
  Error?: string;
  StartedAt?: string;
  FinishedAt?: string;
}

export interface ContainerInspect {
  Id: string;
  Name: string;
  State: ContainerState;
  Config?: { Image?: string; Tty?: boolean };
}

interface Reply {
  status: number;
  text: string;
}

/** Where the API is, for messages: `unix:/var/run/docker.sock` or `tcp://h:p`. */
export function describeEndpoint(e: DockerEndpoint): string {
  return e.dockerHost ?? `unix:${e.socket}`;
}

function newClient(e: DockerEndpoint, opts: { headersTimeout: number; bodyTimeout: number }): Client {
  if (e.dockerHost) {
    const m = /^(?:tcp|http):\/\/([^/]+)\/?$/.exec(e.dockerHost);
    if (!m)
      throw new LaunchError(`docker_host must be tcp://host:port, got '${e.dockerHost}'`, { dockerHost: e.dockerHost });
    return new Client(`http://${m[1]}`, opts);
  }
  // The origin's host name is only the Host header on a unix socket; Docker ignores it.
  return new Client('http://docker', { ...opts, socketPath: e.socket });
}

/** The `message` of a Docker API error body, else the raw body, bounded. */
function apiMessage(text: string): string {
  try {
    const j = JSON.parse(text) as { message?: unknown };
    if (typeof j.message === 'string') return excerpt(j.message, 300);
  } catch {
    /* not JSON */
  }
  return excerpt(text, 300);
}

export class DockerApi {
  private readonly client: Client;
  private readonly waiters = new Set<Client>();

  constructor(
    readonly endpoint: DockerEndpoint,
    /** Longest wait for an ordinary API answer. */
    private readonly timeoutMs = 30_000,
  ) {
    this.client = newClient(endpoint, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  }

  private async call(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
    timeoutMs?: number,
  ): Promise<Reply> {
    try {
      const r = await this.client.request({
        method,
        path: `${API_PREFIX}${path}`,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? null : JSON.stringify(body),
        ...(timeoutMs ? { headersTimeout: timeoutMs, bodyTimeout: timeoutMs } : {}),
      });
      return { status: r.statusCode, text: await r.body.text() };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new LaunchError(
        `Docker API at ${describeEndpoint(this.endpoint)} unreachable: ${e.code ?? ''} ${e.message}`.replace(
          /\s+/g,
          ' ',
        ),
        { endpoint: describeEndpoint(this.endpoint), code: e.code },
      );
    }
  }

  private fail(what: string, r: Reply, details: Record<string, unknown> = {}): never {
    throw new LaunchError(`${what}: Docker API answered ${r.status}: ${apiMessage(r.text)}`, {
      ...details,
      status: r.status,
      endpoint: describeEndpoint(this.endpoint),
    });
  }

  /** Inspect a container by name or id; null when it does not exist. */
  async inspect(name: string): Promise<ContainerInspect | null> {
    const r = await this.call('GET', `/containers/${encodeURIComponent(name)}/json`);
    if (r.status === 404) return null;
    if (r.status !== 200) this.fail(`inspect container '${name}'`, r, { container: name });
    return JSON.parse(r.text) as ContainerInspect;
  }

  /** Create a container; returns its id. A name conflict (created meanwhile) is not an error. */
  async create(name: string, spec: Record<string, unknown>): Promise<string | null> {
    const r = await this.call('POST', `/containers/create?name=${encodeURIComponent(name)}`, spec);
    if (r.status === 201) return (JSON.parse(r.text) as { Id: string }).Id;
    if (r.status === 409) return null;
    if (r.status === 404)
      this.fail(`cannot create container '${name}': image '${String(spec.Image)}' not found (pull it first)`, r, {
        container: name,
        image: spec.Image,
      });
    return this.fail(`cannot create container '${name}'`, r, { container: name });
  }

  /** Start; true when started now, false when it was already running (304). */
  async start(name: string): Promise<boolean> {
    const r = await this.call('POST', `/containers/${encodeURIComponent(name)}/start`);
    if (r.status === 204) return true;
    if (r.status === 304) return false;
    if (r.status === 404) this.fail(`container '${name}' not found`, r, { container: name });
    return this.fail(`cannot start container '${name}'`, r, { container: name });
  }

  /**
   * Stop with Docker's own grace period (SIGTERM, SIGKILL after `timeoutS`). Already stopped
   * (304) or gone (404) is fine. Resolves once the daemon reports the container stopped.
   */
  async stop(name: string, timeoutS: number): Promise<'stopped' | 'not_running' | 'missing'> {
    const r = await this.call(
      'POST',
      `/containers/${encodeURIComponent(name)}/stop?t=${timeoutS}`,
      undefined,
      // The daemon answers only after the grace period, so the HTTP timeout must exceed it.
      timeoutS * 1000 + this.timeoutMs,
    );
    if (r.status === 204) return 'stopped';
    if (r.status === 304) return 'not_running';
    if (r.status === 404) return 'missing';
    return this.fail(`cannot stop container '${name}'`, r, { container: name });
  }

  /** Freeze (cgroup freezer). 204 = paused; 409 when not running. */
  async pause(name: string): Promise<void> {
    const r = await this.call('POST', `/containers/${encodeURIComponent(name)}/pause`);
    if (r.status !== 204) this.fail(`cannot pause container '${name}'`, r, { container: name });
  }

  /** Thaw a paused container. */
  async unpause(name: string): Promise<void> {
    const r = await this.call('POST', `/containers/${encodeURIComponent(name)}/unpause`);
    if (r.status !== 204) this.fail(`cannot unpause container '${name}'`, r, { container: name });
  }

  /** Remove (force). 404 is fine. Used by tests and for cleanup. */
  async remove(name: string): Promise<void> {
    const r = await this.call('DELETE', `/containers/${encodeURIComponent(name)}?force=true`);
    if (r.status !== 204 && r.status !== 200 && r.status !== 404) this.fail(`cannot remove container '${name}'`, r);
  }

  /** The last `tail` lines of stdout+stderr (demultiplexed), bounded; '' when unavailable. */
  async logsTail(name: string, tail = 20): Promise<string> {
    try {
      const r = await this.client.request({
        method: 'GET',
        path: `${API_PREFIX}/containers/${encodeURIComponent(name)}/logs?stdout=true&stderr=true&tail=${tail}`,
      });
      const buf = Buffer.from(await r.body.arrayBuffer());
      if (r.statusCode !== 200) return '';
      return demuxLogs(buf);
    } catch {
      return '';
    }
  }

  /**
   * Long-poll `POST /containers/{id}/wait?condition=not-running`: resolves with the exit code
   * once the container is not running (at once if it already is not). Rejects on connection
   * errors, and when `signal` aborts.
   */
  async wait(id: string, signal: AbortSignal): Promise<number | null> {
    const c = newClient(this.endpoint, { headersTimeout: 0, bodyTimeout: 0 });
    this.waiters.add(c);
    try {
      const r = await c.request({
        method: 'POST',
        path: `${API_PREFIX}/containers/${encodeURIComponent(id)}/wait?condition=not-running`,
        signal,
      });
      const text = await r.body.text();
      if (r.statusCode === 404) return null;
      if (r.statusCode !== 200) throw new Error(`wait answered ${r.statusCode}: ${apiMessage(text)}`);
      const j = JSON.parse(text) as { StatusCode?: number };
      return typeof j.StatusCode === 'number' ? j.StatusCode : null;
    } finally {
      this.waiters.delete(c);
      c.destroy().catch(() => {});
    }
  }

  /**
   * Follow a container's output (`GET /containers/{id}/logs?follow=true`): each piece of
   * stdout/stderr goes to `onData` as it arrives (demultiplexed unless `tty`), bounded by the
   * chunk size whatever the container prints. Resolves when the stream ends (the container
   * stopped) or `signal` aborts; rejects on connection errors. `since` (unix seconds) skips
   * earlier runs' output; `tail` limits what is replayed.
   */
  async followLogs(
    id: string,
    opts: { since?: string; tail?: number; tty: boolean; signal: AbortSignal },
    onData: (stream: 'stdout' | 'stderr', data: Buffer) => void,
  ): Promise<void> {
    const c = newClient(this.endpoint, { headersTimeout: this.timeoutMs, bodyTimeout: 0 });
    this.waiters.add(c);
    try {
      const q = `follow=true&stdout=true&stderr=true${opts.since !== undefined ? `&since=${opts.since}` : ''}&tail=${opts.tail ?? 'all'}`;
      const r = await c.request({
        method: 'GET',
        path: `${API_PREFIX}/containers/${encodeURIComponent(id)}/logs?${q}`,
        signal: opts.signal,
      });
      if (r.statusCode !== 200) {
        const text = await r.body.text();
        throw new Error(`logs answered ${r.statusCode}: ${apiMessage(text)}`);
      }
      const demux = opts.tty ? null : new LogDemuxer(onData);
      for await (const chunk of r.body) {
        if (demux) demux.push(chunk as Buffer);
        else onData('stdout', chunk as Buffer);
      }
    } finally {
      this.waiters.delete(c);
      c.destroy().catch(() => {});
    }
  }

  async close(): Promise<void> {
    for (const c of this.waiters) await c.destroy().catch(() => {});
    await this.client.close().catch(() => {});
  }
}

/**
 * Docker multiplexes a non-TTY container's stdout/stderr into frames: 8-byte header
 * (stream type, 3 zero bytes, big-endian uint32 length) then the payload. A TTY container's
 * log is raw; detect that by a header that does not parse.
 */
export function demuxLogs(buf: Buffer): string {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const type = buf[i]!;
    if (type > 2 || buf[i + 1] !== 0 || buf[i + 2] !== 0 || buf[i + 3] !== 0) return buf.toString('utf8');
    const len = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + len));
    i += 8 + len;
  }
  return Buffer.concat(parts).toString('utf8');
}

/**
 * `demuxLogs` for a live stream: frames may be split anywhere across chunks, and a frame's
 * payload is passed on piece by piece as it arrives (never collected), so a container writing
 * one huge frame costs no more memory than a chunk.
 */
export class LogDemuxer {
  private header = Buffer.alloc(0);
  /** Payload bytes of the current frame still to come, and its stream. */
  private left = 0;
  private stream: 'stdout' | 'stderr' = 'stdout';

  constructor(private readonly onData: (stream: 'stdout' | 'stderr', data: Buffer) => void) {}

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.left > 0) {
        const n = Math.min(this.left, chunk.length - i);
        this.onData(this.stream, chunk.subarray(i, i + n));
        this.left -= n;
        i += n;
        continue;
      }
      const need = 8 - this.header.length;
      const take = chunk.subarray(i, i + need);
      this.header = this.header.length === 0 ? Buffer.from(take) : Buffer.concat([this.header, take]);
      i += take.length;
      if (this.header.length < 8) return;
      this.stream = this.header[0] === 2 ? 'stderr' : 'stdout';
      this.left = this.header.readUInt32BE(4);
      this.header = Buffer.alloc(0);
    }
  }
}
