/**
 * A small client for Ansible Semaphore's HTTP API (the calls the original Hestia made):
 *
 * | call | Semaphore API |
 * | --- | --- |
 * | login | `POST /api/auth/login` `{auth, password}` → 204 + session cookie (`semaphore=…`) |
 * | run a task | `POST /api/project/{project_id}/tasks` `{template_id, environment}` → 201 Task |
 * | read a task | `GET /api/project/{project_id}/tasks/{task_id}` → 200 Task `{id, template_id, status, …}` |
 * | stop a task | `POST /api/project/{project_id}/tasks/{task_id}/stop` → 204 |
 *
 * Auth: `semaphore_api_key` as `Authorization: Bearer <key>`; else username/password login,
 * whose session cookie is reused and renewed once on a 401. `environment` is a JSON-encoded
 * *string* in Semaphore's API (extra variables for the playbook), not an object.
 * Every call is bounded by `semaphore_timeout` seconds. Secrets never reach a message.
 */
import { request } from '../../http-client.ts';
import { excerpt } from '../../remote/output-excerpt.ts';
import { LaunchError } from '../types.ts';

export interface SemaphoreAuth {
  apiKey?: string | null | undefined;
  username?: string | null | undefined;
  password?: string | null | undefined;
}

/** Semaphore's Task object (the fields Hestia reads). */
export interface SemaphoreTask {
  id: number;
  template_id: number;
  status: string;
  created?: string;
  start?: string | null;
  end?: string | null;
}

/** Task statuses after which Semaphore does nothing more. */
export const FINAL_STATUSES = new Set(['success', 'error', 'stopped', 'rejected', 'not_executed']);

interface Reply {
  status: number;
  text: string;
  setCookie: string[];
}

export class SemaphoreClient {
  private cookie: string | null = null;

  constructor(
    private readonly baseUrl: string,
    private readonly auth: SemaphoreAuth,
    private readonly timeoutMs: number,
  ) {}

  private url(path: string): string {
    return `${this.baseUrl.replace(/\/+$/, '')}${path}`;
  }

  private async send(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<Reply> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.auth.apiKey) headers.authorization = `Bearer ${this.auth.apiKey}`;
    else if (this.cookie) headers.cookie = this.cookie;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    try {
      const r = await request(this.url(path), {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const sc = r.headers['set-cookie'];
      return {
        status: r.statusCode,
        text: await r.body.text(),
        setCookie: sc === undefined ? [] : Array.isArray(sc) ? sc : [sc],
      };
    } catch (err) {
      if (signal?.aborted) throw new LaunchError(`Semaphore ${method} ${path} aborted`, { reason: 'aborted' });
      const e = err as NodeJS.ErrnoException;
      const why = timeout.aborted ? `no answer within ${this.timeoutMs} ms` : `${e.code ?? ''} ${e.message}`.trim();
      throw new LaunchError(`Semaphore at ${this.baseUrl} unreachable (${method} ${path}): ${why}`, {
        baseUrl: this.baseUrl,
        code: e.code,
      });
    }
  }

  /** Log in with username/password; keeps the session cookie for later calls. */
  async login(signal?: AbortSignal): Promise<void> {
    const r = await this.send(
      'POST',
      '/api/auth/login',
      { auth: this.auth.username, password: this.auth.password },
      signal,
    );
    if (r.status !== 204 && r.status !== 200)
      throw new LaunchError(`Semaphore login as '${this.auth.username}' refused (HTTP ${r.status})`, {
        status: r.status,
        username: this.auth.username,
      });
    const pairs = r.setCookie.map((c) => c.split(';')[0]!.trim()).filter((c) => c.includes('='));
    if (pairs.length === 0)
      throw new LaunchError('Semaphore login answered without a session cookie', { status: r.status });
    this.cookie = pairs.join('; ');
  }

  /** One authenticated call; with username/password, logs in first and once more on a 401. */
  private async call(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<Reply> {
    const session = !this.auth.apiKey && !!this.auth.username;
    if (session && !this.cookie) await this.login(signal);
    let r = await this.send(method, path, body, signal);
    if (r.status === 401 && session) {
      this.cookie = null;
      await this.login(signal);
      r = await this.send(method, path, body, signal);
    }
    if (r.status === 401)
      throw new LaunchError(
        `Semaphore refused ${method} ${path} (HTTP 401): ${
          this.auth.apiKey
            ? 'semaphore_api_key was not accepted'
            : 'set semaphore_api_key or semaphore_username/password'
        }`,
        { status: 401 },
      );
    return r;
  }

  private parseTask(r: Reply, what: string): SemaphoreTask {
    try {
      const t = JSON.parse(r.text) as SemaphoreTask;
      if (typeof t.id === 'number' && typeof t.status === 'string') return t;
    } catch {
      /* fall through */
    }
    throw new LaunchError(`${what}: unexpected answer from Semaphore: ${excerpt(r.text, 200)}`, { status: r.status });
  }

  /** Run template `templateId` with extra variables `vars` (sent as Semaphore's `environment` string). */
  async createTask(
    projectId: number,
    templateId: number,
    vars: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<SemaphoreTask> {
    const path = `/api/project/${projectId}/tasks`;
    const r = await this.call('POST', path, { template_id: templateId, environment: JSON.stringify(vars) }, signal);
    if (r.status !== 201 && r.status !== 200)
      throw new LaunchError(
        `Semaphore did not run template ${templateId} in project ${projectId} (HTTP ${r.status}): ${excerpt(r.text, 300)}`,
        { status: r.status, templateId, projectId },
      );
    return this.parseTask(r, `run template ${templateId}`);
  }

  async getTask(projectId: number, taskId: number, signal?: AbortSignal): Promise<SemaphoreTask> {
    const r = await this.call('GET', `/api/project/${projectId}/tasks/${taskId}`, undefined, signal);
    if (r.status !== 200)
      throw new LaunchError(`Semaphore task ${taskId} could not be read (HTTP ${r.status}): ${excerpt(r.text, 300)}`, {
        status: r.status,
        taskId,
      });
    return this.parseTask(r, `read task ${taskId}`);
  }

  /** Ask Semaphore to stop a task (best effort: errors are returned, not thrown). */
  async stopTask(projectId: number, taskId: number): Promise<Error | null> {
    try {
      const r = await this.call('POST', `/api/project/${projectId}/tasks/${taskId}/stop`, {});
      return r.status === 204 || r.status === 200 ? null : new Error(`HTTP ${r.status}`);
    } catch (err) {
      return err as Error;
    }
  }
}
