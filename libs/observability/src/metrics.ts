import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Seconds buckets from 0.5 ms to 30 s: bus steps are sub-millisecond, targets are not. */
export const LATENCY_BUCKETS_SEC = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The metrics every process has. Names are the contract with dashboards and alerts
 * (README → Operations); services register their own on `registry` beside them.
 */
export function createMetrics(service: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    published: new Counter({
      name: 'bus_published_total',
      help: 'Publishes to JetStream by stream and outcome (stored, duplicate, failed)',
      labelNames: ['stream', 'outcome'] as const,
      registers: [registry],
    }),
    publishSeconds: new Histogram({
      name: 'bus_publish_duration_seconds',
      help: 'Time from publish to PubAck',
      labelNames: ['stream'] as const,
      buckets: LATENCY_BUCKETS_SEC,
      registers: [registry],
    }),
    consumed: new Counter({
      name: 'bus_consumed_total',
      help: 'Messages handled by consumer and outcome (done, retry, dead_letter, failed_dead_letter)',
      labelNames: ['consumer', 'outcome'] as const,
      registers: [registry],
    }),
    handlerSeconds: new Histogram({
      name: 'bus_handler_duration_seconds',
      help: 'Time a handler took per message',
      labelNames: ['consumer'] as const,
      buckets: LATENCY_BUCKETS_SEC,
      registers: [registry],
    }),
    redelivered: new Counter({
      name: 'bus_redelivered_total',
      help: 'Messages seen again (after a retry, a crash or an ack timeout)',
      labelNames: ['consumer'] as const,
      registers: [registry],
    }),
    deadLettered: new Counter({
      name: 'bus_dead_lettered_total',
      help: 'Messages sent to the DLQ by stage and failure class',
      labelNames: ['stage', 'failure_class'] as const,
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'bus_handler_in_flight',
      help: 'Messages being handled now in this process',
      labelNames: ['consumer'] as const,
      registers: [registry],
    }),
    consumerPending: new Gauge({
      name: 'bus_consumer_pending',
      help: 'Messages not yet delivered to the consumer (its queue). Cluster-wide: every process reports the same value, so aggregate with max, not sum',
      labelNames: ['stream', 'consumer'] as const,
      registers: [registry],
    }),
    consumerAckPending: new Gauge({
      name: 'bus_consumer_ack_pending',
      help: 'Messages delivered and not yet acknowledged. Cluster-wide: every process reports the same value, so aggregate with max, not sum',
      labelNames: ['stream', 'consumer'] as const,
      registers: [registry],
    }),
    consumerOldestAge: new Gauge({
      name: 'bus_consumer_oldest_pending_age_seconds',
      help: 'Age of the oldest message the consumer has not finished (0 when none): alert on it, not on the count. Cluster-wide: every process reports the same value, so aggregate with max, not sum',
      labelNames: ['stream', 'consumer'] as const,
      registers: [registry],
    }),
    dlqMessages: new Gauge({
      name: 'bus_dlq_messages',
      help: 'Entries in the DLQ by stage and connector (read every BUS_DLQ_STATS_INTERVAL_MS, default 15 s). Cluster-wide: every process reports the same value, so aggregate with max, not sum',
      labelNames: ['stage', 'connector'] as const,
      registers: [registry],
    }),
    dlqOldestAgeSeconds: new Gauge({
      name: 'bus_dlq_oldest_age_seconds',
      help: 'Age of the oldest DLQ entry by stage and connector, at the last read; 0 when there is none. Cluster-wide: every process reports the same value, so aggregate with max, not sum',
      labelNames: ['stage', 'connector'] as const,
      registers: [registry],
    }),
    natsConnected: new Gauge({
      name: 'bus_nats_connected',
      help: '1 while connected to NATS',
      registers: [registry],
    }),
    natsStatus: new Counter({
      name: 'bus_nats_status_changes_total',
      help: 'NATS connection status changes by type (disconnect, reconnect, error, ...)',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    unhandledRejections: new Counter({
      name: 'bus_unhandled_rejections_total',
      help: 'Promise rejections no code handled (a bug: each is logged at error with the service); the process keeps running',
      registers: [registry],
    }),
    topologyDrift: new Gauge({
      name: 'bus_topology_drift',
      help: 'Definitions in streams/ that differ from JetStream and could not be updated',
      registers: [registry],
    }),
  };
}

export type BusMetrics = ReturnType<typeof createMetrics>;
