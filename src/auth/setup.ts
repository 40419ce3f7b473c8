/**
 * Wiring for the composition root (main.ts): build the Authenticator, open the key store, log
 * refusals, and say at start what the auth situation is. Kept here so main.ts needs three lines.
 */
import type { Database } from 'better-sqlite3';
import type { Config } from '../config/schema.ts';
import type { EventBus } from '../observability/events.ts';
import type { Logger } from '../observability/logger.ts';
import { Authenticator } from './authenticate.ts';
import { KeyStore } from './key-store.ts';

export interface AuthSetup {
  auth: Authenticator;
  /** Log the start-up warning (auth off) or notes (auth on but no keys / no dashboard login). */
  announce(url: string): void;
  close(): void;
}

/**
 * `db` is the store's database (its migrations created `api_keys`); without one (unit tests)
 * only the config's hashed keys are known.
 */
export function setupAuth(opts: { config: () => Config; bus: EventBus; log: Logger; db?: Database }): AuthSetup {
  const { config, bus, log } = opts;
  const store = opts.db ? new KeyStore(opts.db) : null;
  const auth = new Authenticator({
    config,
    bus,
    keys: store,
    onStoreError: (err) => log.warn({ event_type: 'auth_store_error', err }, 'could not record API key use'),
  });

  // auth_denied events to the log, with a message of their own (main.ts's generic event logger
  // skips them). Their details never hold a key, a header value or a query string
  // (authenticate.ts); the logger's redaction is the second line of defence.
  bus.on('event', (ev) => {
    if (ev.type !== 'auth_denied') return;
    log.warn(
      { event_type: 'auth_denied', service_id: ev.serviceId, ...ev.details },
      `request refused (${String(ev.details.reason)}) from ${String(ev.details.client)}`,
    );
  });

  return {
    auth,
    announce(url) {
      const c = config();
      if (!c.auth.enabled) {
        log.warn(
          { event_type: 'auth_disabled' },
          `authentication is disabled: anyone who can reach ${url} can use every service and the control API. ` +
            'Set auth.enabled: true (or HESTIA_AUTH_ENABLED=1) and create a key with `hestia keys create NAME`.',
        );
        return;
      }
      const keyCount = c.auth.api_keys.length + (store?.list().filter((k) => k.revokedAt === null).length ?? 0);
      if (keyCount === 0)
        log.warn(
          { event_type: 'auth_no_keys' },
          'authentication is enabled but no API key exists: every /services and /v1 request will be refused. Create one with `hestia keys create NAME`.',
        );
      if (!c.auth.dashboard)
        log.info(
          { event_type: 'auth_no_dashboard_login' },
          'auth.dashboard is not configured: the dashboard (/ui) cannot be logged into; API keys still work',
        );
    },
    close() {
      // The database belongs to the store, which closes it.
    },
  };
}
