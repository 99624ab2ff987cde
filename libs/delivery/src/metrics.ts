import { LATENCY_BUCKETS_SEC } from '@bus/observability';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Deliver's metrics per connector (README → Operations). */
export function createDeliverMetrics(registry: Registry) {
  return {
    attempts: new Counter({ name: 'deliver_attempts_total', help: 'Calls to targets by connector and result class (ok, transient, business, permanent, ambiguous)', labelNames: ['connector', 'class'] as const, registers: [registry] }),
    outcomes: new Counter({ name: 'deliver_outcomes_total', help: 'Commands finished by connector and outcome (delivered, stale, duplicate, dead_letter, gap)', labelNames: ['connector', 'outcome'] as const, registers: [registry] }),
    lookups: new Counter({ name: 'deliver_lookups_total', help: 'Lookups at the target after an ambiguous attempt: landed (not sent again), absent (sent again), failed', labelNames: ['connector', 'result'] as const, registers: [registry] }),
    waits: new Counter({ name: 'deliver_waits_total', help: 'Commands sent back to wait by connector and reason: gap (a missing version, the gap clock runs), pending (an older version is still on its way), reorder (a stamp\'s reorder window), busy (another attempt holds the entity), lease (the entity lease ran short or was lost)', labelNames: ['connector', 'reason'] as const, registers: [registry] }),
    kvOps: new Counter({ name: 'deliver_kv_ops_total', help: 'KV round trips of the ordering guard by connector and operation (get, create, update): divide by deliveries for the cost per delivery', labelNames: ['connector', 'op'] as const, registers: [registry] }),
    folded: new Counter({ name: 'deliver_versions_folded_total', help: 'Idle entities whose applied version was folded into a partition value (their own key removed from bus_versions)', labelNames: ['connector'] as const, registers: [registry] }),
    hotKeys: new Gauge({ name: 'deliver_versions_hot_keys', help: 'Entity keys of the connector the last fold pass saw and left in bus_versions (in use or recently written; a pass stops listing at 20,000 idle keys, so a lower bound while it catches up): nats-server memory grows with these', labelNames: ['connector'] as const, registers: [registry] }),
    seconds: new Histogram({ name: 'deliver_call_duration_seconds', help: 'Time of each call to the target', labelNames: ['connector'] as const, buckets: LATENCY_BUCKETS_SEC, registers: [registry] }),
    circuit: new Gauge({ name: 'deliver_circuit_state', help: 'Circuit per connector: 0 closed, 1 half-open, 2 open', labelNames: ['connector'] as const, registers: [registry] }),
    tokenExpiry: new Gauge({ name: 'deliver_token_expiry_timestamp_seconds', help: 'When the connector\'s current OAuth2 access token expires (unix seconds)', labelNames: ['connector'] as const, registers: [registry] }),
    paused: new Gauge({ name: 'deliver_connector_paused', help: '1 while a connector is paused after a permanent error (alert on it)', labelNames: ['connector'] as const, registers: [registry] }),
  };
}
export type DeliverMetrics = ReturnType<typeof createDeliverMetrics>;
