/**
 * The `semaphore` launcher: the original Hestia's Ansible Semaphore integration, with its
 * exact config fields (SPEC §3/§5). `semaphore_enabled: true` implies it.
 *
 * - start / stop: run the service's `semaphore_start_template_id` /
 *   `semaphore_stop_template_id` in project `semaphore_project_id` with extra variables
 *   `{SERVICE_ID, MACHINE_ID, ACTION: "start"|"stop"}`, then poll the task every
 *   `semaphore_poll_interval` s until it ends, at most `semaphore_task_timeout` s.
 *   `success` resolves; `error`/`stopped`/… or the timeout is a LaunchError naming the task
 *   id and status. A timed-out task is asked to stop.
 * - Global `semaphore_base_url`, `semaphore_timeout` (per HTTP call), and
 *   `semaphore_api_key` or `semaphore_username`/`semaphore_password` (client.ts).
 * - statusInfo(): the original's `automation` status object, exactly its OpenAPI shape:
 *   `{enabled, provider: 'semaphore', machine_id, current_task, last_task}`.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { ServiceConfig } from '../../config/schema.ts';
import { type LaunchContext, LaunchError, type Launcher, type LauncherFactory, type LaunchHandle } from '../types.ts';
import { FINAL_STATUSES, SemaphoreClient, type SemaphoreTask } from './client.ts';

export { FINAL_STATUSES, SemaphoreClient, type SemaphoreTask } from './client.ts';

/** `automation.current_task` (OpenAPI: status ∈ running, success, error, pending). */
export interface CurrentTask {
  task_id: string;
  status: 'pending' | 'running';
  template_id: number;
  started_at: string;
}

/** `automation.last_task` (OpenAPI: status ∈ success, error). */
export interface LastTask {
  task_id: string;
  status: 'success' | 'error';
  template_id: number;
  started_at: string;
  completed_at: string;
  duration_ms: number;
}

/** The original's `automation` status object (a type alias, so it is a plain record). */
export type AutomationStatus = {
  enabled: boolean;
  provider: 'semaphore';
  machine_id: string | null;
  current_task: CurrentTask | null;
  last_task: LastTask | null;
};

/** Semaphore's not-yet-running statuses, shown as `pending` like the original. */
const PENDING = new Set(['waiting', 'starting', 'waiting_confirmation', 'confirmed']);

export const createSemaphoreLauncher: LauncherFactory = (_config, deps): Launcher => {
  const svc: ServiceConfig | undefined = deps.config.services[deps.serviceId];
  if (!svc) throw new LaunchError(`semaphore launcher: unknown service '${deps.serviceId}'`);
  const g = deps.config;
  const projectId = svc.semaphore_project_id;
  const pollMs = Math.max(10, Math.round(svc.semaphore_poll_interval * 1000));
  const taskTimeoutMs = Math.round(svc.semaphore_task_timeout * 1000);
  let client: SemaphoreClient | null = null;
  const clientFor = (): SemaphoreClient => {
    if (!g.semaphore_base_url)
      throw new LaunchError(`service '${deps.serviceId}' uses Semaphore, but semaphore_base_url is not set`, {
        serviceId: deps.serviceId,
      });
    client ??= new SemaphoreClient(
      g.semaphore_base_url,
      { apiKey: g.semaphore_api_key, username: g.semaphore_username, password: g.semaphore_password },
      Math.round(g.semaphore_timeout * 1000),
    );
    return client;
  };

  let current: CurrentTask | null = null;
  let last: LastTask | null = null;
  const machineIdFor = (ctx?: LaunchContext): string | null => svc.semaphore_machine_id ?? ctx?.machine.id ?? null;

  /** Run one template to the end; resolves on success, throws a LaunchError otherwise. */
  const runTemplate = async (
    action: 'start' | 'stop',
    templateId: number,
    ctx: LaunchContext,
    signal?: AbortSignal,
  ) => {
    const c = clientFor();
    const machineId = machineIdFor(ctx) ?? '';
    const task = await c.createTask(
      projectId,
      templateId,
      { SERVICE_ID: deps.serviceId, MACHINE_ID: machineId, ACTION: action },
      signal,
    );
    const startedAt = new Date();
    const taskId = String(task.id);
    current = {
      task_id: taskId,
      status: PENDING.has(task.status) ? 'pending' : 'running',
      template_id: templateId,
      started_at: startedAt.toISOString(),
    };
    ctx.log.info(
      { event_type: 'launcher_semaphore', task_id: task.id, template_id: templateId, action, machine_id: machineId },
      `Semaphore task ${task.id} (${action}) created`,
    );
    const finish = (status: 'success' | 'error') => {
      const end = new Date();
      last = {
        task_id: taskId,
        status,
        template_id: templateId,
        started_at: startedAt.toISOString(),
        completed_at: end.toISOString(),
        duration_ms: end.getTime() - startedAt.getTime(),
      };
      if (current?.task_id === taskId) current = null;
    };
    const details = { taskId: task.id, templateId, projectId, action, machineId };

    const deadline = startedAt.getTime() + taskTimeoutMs;
    let t: SemaphoreTask = task;
    try {
      while (!FINAL_STATUSES.has(t.status)) {
        if (Date.now() >= deadline) {
          const stopErr = await c.stopTask(projectId, task.id);
          throw new LaunchError(
            `Semaphore task ${task.id} (template ${templateId}, ${action} of '${deps.serviceId}') still '${t.status}' ` +
              `after ${svc.semaphore_task_timeout} s${stopErr ? '' : '; asked Semaphore to stop it'}`,
            { ...details, status: t.status, timedOut: true },
          );
        }
        await delay(Math.min(pollMs, Math.max(0, deadline - Date.now())), undefined, signal ? { signal } : {});
        t = await c.getTask(projectId, task.id, signal);
        if (current?.task_id === taskId) current.status = PENDING.has(t.status) ? 'pending' : 'running';
      }
    } catch (err) {
      finish('error');
      if (signal?.aborted)
        throw new LaunchError(`${action} abandoned while Semaphore task ${task.id} was '${t.status}' (left running)`, {
          ...details,
          status: t.status,
          reason: 'aborted',
        });
      throw err;
    }
    if (t.status === 'success') {
      finish('success');
      return t;
    }
    finish('error');
    throw new LaunchError(
      `Semaphore task ${task.id} (template ${templateId}, ${action} of '${deps.serviceId}' on '${machineId}') ended with status '${t.status}'`,
      { ...details, status: t.status },
    );
  };

  return {
    type: 'semaphore',

    async start(ctx: LaunchContext): Promise<LaunchHandle> {
      const t = await runTemplate('start', svc.semaphore_start_template_id, ctx, ctx.signal);
      return {
        persist: { machine_id: machineIdFor(ctx) },
        info: { semaphore_task_id: t.id, semaphore_template_id: svc.semaphore_start_template_id },
      };
    },

    async stop(_handle: LaunchHandle, ctx: LaunchContext): Promise<void> {
      await runTemplate('stop', svc.semaphore_stop_template_id, ctx);
    },

    statusInfo(): AutomationStatus {
      return {
        enabled: true,
        provider: 'semaphore',
        machine_id: machineIdFor(),
        current_task: current ? { ...current } : null,
        last_task: last ? { ...last } : null,
      };
    },
  };
};

export default createSemaphoreLauncher;
