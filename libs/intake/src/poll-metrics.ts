import { Counter, Gauge, type Registry } from 'prom-client';

/** The metrics of source polling (pollSourceChanges); README → Operations. */
function createPollMetrics(registry: Registry) {
  return {
    runs: new Counter({
      name: 'source_poll_runs_total', help: 'Source change polls by source and outcome (completed, busy, skipped, failed, aborted)',
      labelNames: ['source', 'outcome'] as const, registers: [registry],
    }),
    items: new Counter({
      name: 'source_poll_items_total', help: 'Listed items by source and result (listed, stored, duplicate, quarantined); stored = a missed webhook found',
      labelNames: ['source', 'result'] as const, registers: [registry],
    }),
    pages: new Counter({ name: 'source_poll_pages_total', help: 'Listing pages stored (checkpoint moved) by source', labelNames: ['source'] as const, registers: [registry] }),
    lastSuccess: new Gauge({
      name: 'source_poll_last_success_timestamp_seconds', help: 'When a poll of the source last completed (unix seconds)',
      labelNames: ['source'] as const, registers: [registry],
    }),
  };
}
export type PollMetrics = ReturnType<typeof createPollMetrics>;

const byRegistry = new WeakMap<Registry, PollMetrics>();

/** One set per registry: a poll runs many times in a process, its metrics are registered once. */
export function pollMetricsFor(registry: Registry): PollMetrics {
  let m = byRegistry.get(registry);
  if (!m) {
    m = createPollMetrics(registry);
    byRegistry.set(registry, m);
  }
  return m;
}
