import { Counter, Gauge, type Registry } from 'prom-client';

/** Reconcile's metrics per connector (README → Operations → Reconcile). */
export function createReconcileMetrics(registry: Registry) {
  return {
    checked: new Counter({ name: 'reconcile_entities_checked_total', help: 'Source entities compared with their target', labelNames: ['connector'] as const, registers: [registry] }),
    differences: new Counter({ name: 'reconcile_differences_total', help: 'Differences found, by kind (missing, stale, target-newer, unknown-to-source)', labelNames: ['connector', 'kind'] as const, registers: [registry] }),
    inFlight: new Counter({ name: 'reconcile_in_flight_total', help: 'Target records not judged because the bus still had work on its way for their entity (left for the next run)', labelNames: ['connector'] as const, registers: [registry] }),
    repairs: new Counter({ name: 'reconcile_repairs_total', help: 'Repair commands sent through deliver', labelNames: ['connector', 'kind'] as const, registers: [registry] }),
    flagged: new Counter({ name: 'reconcile_flagged_total', help: 'Differences left for a person (bus reconcile report)', labelNames: ['connector', 'kind'] as const, registers: [registry] }),
    runsFailed: new Counter({ name: 'reconcile_runs_failed_total', help: 'Reconcile runs that failed (NATS unavailable, lease unavailable, target errors), by error code; a scheduled one is tried again at the next tick', labelNames: ['connector', 'code'] as const, registers: [registry] }),
    lastSuccess: new Gauge({ name: 'reconcile_last_success_timestamp_seconds', help: 'When the last reconcile run of a connector finished (unix seconds); alert when it is old', labelNames: ['connector'] as const, registers: [registry] }),
  };
}
export type ReconcileMetrics = ReturnType<typeof createReconcileMetrics>;
