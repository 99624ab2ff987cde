import { LATENCY_BUCKETS_SEC, tallyBy } from '@bus/observability';
import { Counter, Histogram, type Registry } from 'prom-client';

/** Ingest's own metrics (README → Operations). */
export function createIntakeMetrics(registry: Registry) {
  const m = {
    received: new Counter({ name: 'ingest_received_total', help: 'Requests received by source', labelNames: ['source'] as const, registers: [registry] }),
    stored: new Counter({ name: 'ingest_stored_total', help: 'Events stored in EVENTS by source', labelNames: ['source'] as const, registers: [registry] }),
    duplicate: new Counter({
      name: 'ingest_duplicate_total',
      help: 'Deliveries recognised as duplicates, by source and where (stream window or dedup bucket)',
      labelNames: ['source', 'where'] as const, registers: [registry],
    }),
    rejected: new Counter({
      name: 'ingest_rejected_total',
      help: 'Requests refused, by source and reason (signature_mismatch, missing_header, timestamp_outside_tolerance, unknown_source, too_large, not_json, unauthorized, unavailable…)',
      labelNames: ['source', 'reason'] as const, registers: [registry],
    }),
    quarantined: new Counter({ name: 'ingest_quarantined_total', help: 'Authentic payloads failing their schema, kept in the DLQ', labelNames: ['source'] as const, registers: [registry] }),
    secretUsed: new Counter({ name: 'ingest_secret_used_total', help: 'Which secret of a rotation list verified a request (0 = first)', labelNames: ['source', 'index'] as const, registers: [registry] }),
    seconds: new Histogram({
      name: 'ingest_request_duration_seconds',
      help: 'Time from request to answer, by source and status',
      labelNames: ['source', 'status'] as const, buckets: LATENCY_BUCKETS_SEC, registers: [registry],
    }),
  };
  // counted on every request: tallies, added at scrape (a labelled inc() hashes its labels each time)
  return {
    ...m,
    count: {
      received: tallyBy(m.received),
      stored: tallyBy(m.stored),
      secretUsed: tallyBy(m.secretUsed),
    },
  };
}
export type IntakeMetrics = ReturnType<typeof createIntakeMetrics>;
