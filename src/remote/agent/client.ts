/**
 * The gateway's client of a `hestia agent` (SPEC §15): one keep-alive pool per agent (HTTPS
 * with the machine's `ca_file` when given), the token on every request, and errors that say
 * what happened in words a user can act on: "does not answer (connect ECONNREFUSED …)",
 * "refused the token", "answered 429: too many processes …".
 */
import { readFileSync } from 'node:fs';
import { Pool, request } from '../../http-client.ts';
import type { AgentHealth, AgentProcess, AgentResources, ExitRecord, OutputLine, StartRequest } from './protocol.ts';

export interface AgentEndpoint {
  url: string;
  token: string;
  ca_file?: string | undefined;
}

export type AgentFailure = 'unreachable' | 'unauthorized' | 'refused' | 'protocol';

export class AgentError extends Error {
  constructor(
    readonly kind: AgentFailure,
    message: string,
    readonly status: number | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'AgentError';
  }
}

const DEFAULT_TIMEOUT_MS = 10_000;

export class AgentClient {
  readonly origin: string;
  private readonly pool: Pool;
  private readonly auth: string;

  constructor(
    readonly endpoint: AgentEndpoint,
    /** For messages: "agent of machine 'gpu-a' (http://…)". */
    readonly label = `agent at ${new URL(endpoint.url).origin}`,
  ) {
    this.origin = new URL(endpoint.url).origin;
    const ca = endpoint.ca_file ? readFileSync(endpoint.ca_file) : undefined;
    this.pool = new Pool(this.origin, {
      connections: 8,
      connectTimeout: 5_000,
      ...(ca ? { connect: { ca } } : {}),
    });
    this.auth = `Bearer ${endpoint.token}`;
  }

  health(signal?: AbortSignal): Promise<AgentHealth> {
    return this.json('GET', '/v1/health', undefined, 5_000, signal);
  }

  resources(signal?: AbortSignal): Promise<AgentResources> {
    return this.json('GET', '/v1/resources', undefined, DEFAULT_TIMEOUT_MS, signal);
  }

  async list(signal?: AbortSignal): Promise<AgentProcess[]> {
    const r = await this.json<{ processes: AgentProcess[] }>(
      'GET',
      '/v1/processes',
      undefined,
      DEFAULT_TIMEOUT_MS,
      signal,
    );
    return r.processes;
  }

  start(req: StartRequest, signal?: AbortSignal): Promise<AgentProcess> {
    return this.json('POST', '/v1/processes', req, DEFAULT_TIMEOUT_MS, signal);
  }

  /** null when the agent does not know the id (it restarted without it, or it was trimmed). */
  async get(id: string, signal?: AbortSignal): Promise<AgentProcess | null> {
    try {
      return await this.json('GET', `/v1/processes/${encodeURIComponent(id)}`, undefined, DEFAULT_TIMEOUT_MS, signal);
    } catch (err) {
      if (err instanceof AgentError && err.status === 404) return null;
      throw err;
    }
  }

  /** Resolves when the group is gone (the agent escalates to SIGKILL after the stop timeout). */
  async stop(id: string, timeoutMs: number): Promise<AgentProcess | null> {
    try {
      return await this.json('POST', `/v1/processes/${encodeURIComponent(id)}/stop`, undefined, timeoutMs);
    } catch (err) {
      if (err instanceof AgentError && err.status === 404) return null;
      throw err;
    }
  }

  async output(id: string, tail?: number): Promise<OutputLine[]> {
    const q = tail === undefined ? '' : `?tail=${tail}`;
    const r = await this.json<{ lines: OutputLine[] }>('GET', `/v1/processes/${encodeURIComponent(id)}/output${q}`);
    return r.lines;
  }

  /** The event stream's response body (NDJSON); the caller reads and destroys it. */
  async events(output: boolean, signal: AbortSignal): Promise<NodeJS.ReadableStream & { destroy(): void }> {
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(`${this.origin}/v1/events${output ? '?output=1' : ''}`, {
        dispatcher: this.pool,
        headers: { authorization: this.auth },
        signal,
        headersTimeout: 5_000,
        bodyTimeout: 0,
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    if (res.statusCode !== 200) throw await this.failure(res.statusCode, await res.body.text().catch(() => ''));
    return res.body;
  }

  close(): Promise<void> {
    // destroy, not close: a long-lived event stream would keep close() waiting.
    return this.pool.destroy().catch(() => {});
  }

  private async json<T>(
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = DEFAULT_TIMEOUT_MS,
    signal?: AbortSignal,
  ): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const sig = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(`${this.origin}${path}`, {
        dispatcher: this.pool,
        method: method as 'GET',
        headers: {
          authorization: this.auth,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: sig,
      });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw this.unreachable(timeout.aborted ? new Error(`no answer within ${timeoutMs} ms`) : err);
    }
    const text = await res.body.text().catch(() => '');
    if (res.statusCode < 200 || res.statusCode >= 300) throw await this.failure(res.statusCode, text);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new AgentError('protocol', `${this.label} answered ${res.statusCode} with a body that is not JSON`);
    }
  }

  private unreachable(err: unknown): AgentError {
    const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const detail = e.cause?.code ?? e.code ?? e.message ?? String(err);
    return new AgentError('unreachable', `${this.label} does not answer (${detail})`);
  }

  private async failure(status: number, text: string): Promise<AgentError> {
    let code: string | null = null;
    let msg = text.slice(0, 300);
    try {
      const j = JSON.parse(text) as { error?: string; code?: string };
      code = j.code ?? null;
      msg = j.error ?? msg;
    } catch {
      // not JSON: the text as is
    }
    if (status === 401) {
      return new AgentError('unauthorized', `${this.label} refused the token (401: ${msg})`, status, code);
    }
    return new AgentError('refused', `${this.label} answered ${status}: ${msg}`, status, code);
  }
}

export type { AgentProcess, ExitRecord };
