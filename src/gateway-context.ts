/**
 * Everything a route or the proxy may use, built once by the composition root (main.ts).
 * Routes receive this object; they never construct their own collaborators.
 */
import type { Authenticator } from './auth/authenticate.ts';
import type { Config } from './config/schema.ts';
import type { MachineInfo } from './machines/machine-placement.ts';
import type { EventBus } from './observability/events.ts';
import type { Logger } from './observability/logger.ts';
import type { RoutingTable } from './routing/router.ts';
import type { ServiceLookup } from './services/types.ts';
import type { Store } from './store/store.ts';

export interface GatewayContext {
  /** The current config; replaced on reload (read it through the getter, never cache it). */
  readonly config: Config;
  readonly services: ServiceLookup;
  /** Machines: capacity, allocation, power (GET /v1/machines). Optional for test doubles. */
  readonly machines?: { list(): MachineInfo[] };
  readonly bus: EventBus;
  readonly log: Logger;
  /** API keys, sessions, rate limits (auth/). `auth.enabled` is the hot path's one check. */
  readonly auth: Authenticator;
  /** Strategies (built in + plugins) and each service's router; see routing/router.ts. */
  readonly routing: RoutingTable;
  /** The SQLite store (events, service state; colleagues add tables through its migrations). */
  readonly store: Store;
  /** Set while shutting down: new requests get 503 HESTIA_SHUTTING_DOWN. */
  readonly shuttingDown: boolean;
}
