import { Counter, Gauge, type Registry } from 'prom-client';

/** The live projector's metrics (README → Operations); its queue depth is bus_consumer_pending{consumer="projection"}. */
export function createProjectionMetrics(registry: Registry) {
  return {
    events: new Counter({
      name: 'projection_events_total',
      help: 'Events applied to the projection, by outcome: applied (newer version), stale (older), duplicate (same version)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    writes: new Counter({
      name: 'projection_kv_writes_total',
      help: 'KV writes made by the projector: below projection_events_total when events of one entity handled together are folded into one',
      registers: [registry],
    }),
    conflicts: new Counter({
      name: 'projection_cas_conflicts_total',
      help: 'Projection writes that lost a compare-and-set to another writer and were tried again',
      registers: [registry],
    }),
    generation: new Gauge({
      name: 'projection_generation',
      help: 'The projection generation this process writes into',
      registers: [registry],
    }),
  };
}
export type ProjectionMetrics = ReturnType<typeof createProjectionMetrics>;
