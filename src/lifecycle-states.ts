/**
 * The four states of a service's lifecycle, named once for every layer that records or shows
 * them: the store's state rows, the metrics' state gauge and the lifecycle itself
 * (services/state-machine.ts holds the transitions between them).
 */
export const SERVICE_STATES = ['cold', 'starting', 'hot', 'stopping'] as const;

export type ServiceState = (typeof SERVICE_STATES)[number];
