/**
 * The placeholders of commands and URLs (`{host}`, `{machine}`, `{port}`, `{service}`): used by
 * every launcher and by the machines' wake/sleep actions.
 */

/** Placeholders every launcher's commands and URLs may use (SPEC §5). */
export interface TemplateVars {
  host: string;
  machine: string;
  port: string;
  service: string;
}

/** The machine a start was placed on (SPEC §6); `local` when no machines are configured. */
export interface PlacedMachine {
  id: string;
  host: string;
}

/** Substitute `{host}`, `{machine}`, `{port}`, `{service}` in a template string. */
export function expandTemplate(template: string, vars: TemplateVars): string {
  return template.replace(/\{(host|machine|port|service)\}/g, (_m, k: keyof TemplateVars) => vars[k]);
}
