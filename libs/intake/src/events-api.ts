import { timingSafeEqual } from 'node:crypto';
import { PublishError } from '@bus/bus';
import { publishDomainEvent } from '@bus/client';
import { EnvelopeError } from '@bus/envelope';
import type { Logger } from '@bus/observability';
import type { Bus } from '@bus/bus';
import { z } from 'zod';
import { correlationIdOf } from './correlation.js';
import type { Answer, Headers } from './intake.js';
import type { IntakeMetrics } from './metrics.js';
import { problem } from './problem.js';

/** At most this many events per request: bounds memory and the time to answer. */
export const MAX_BATCH = 500;

const Batch = z.object({
  source: z.string().min(1),
  events: z.array(z.record(z.string(), z.unknown())).min(1).max(MAX_BATCH),
});

export interface EventsApiOptions {
  bus: Bus;
  /** Bearer token(s) accepted; several for rotation. */
  tokens: string[];
  log: Logger;
  metrics: IntakeMetrics;
}

function tokenMatches(given: string, tokens: string[]): boolean {
  const g = Buffer.from(given);
  let ok = false;
  for (const t of tokens) {
    const b = Buffer.from(t);
    // compare every token, in constant time each, so timing tells nothing
    if (b.length === g.length && timingSafeEqual(b, g)) ok = true;
  }
  return ok;
}

/**
 * POST /events: a batch of domain events from the organisation's services, with one
 * result per event. 200 when all are stored (or duplicates), 207 when some are not,
 * 503 + Retry-After when none could be stored because the bus is unavailable.
 */
export function createEventsApi(o: EventsApiOptions) {
  return {
    async receive(headers: Headers, body: Buffer): Promise<Answer> {
      const correlationId = correlationIdOf(headers);
      const base = { 'x-correlation-id': correlationId };
      const auth = String(headers.authorization ?? '');
      if (!auth.startsWith('Bearer ') || !tokenMatches(auth.slice(7), o.tokens)) {
        o.metrics.rejected.inc({ source: '(events-api)', reason: 'unauthorized' });
        return { status: 401, headers: { ...base, 'www-authenticate': 'Bearer' }, body: problem(401, 'unauthorized', 'Unauthorized', 'Send Authorization: Bearer <INGEST_API_TOKENS entry>.') };
      }
      let parsed: z.infer<typeof Batch>;
      try {
        parsed = Batch.parse(JSON.parse(body.toString('utf8')));
      } catch (err) {
        const detail = err instanceof z.ZodError ? err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') : 'body is not JSON';
        return { status: 400, headers: base, body: problem(400, 'bad-batch', 'Not a batch of events', `Expected {"source": "...", "events": [...]} with 1 to ${MAX_BATCH} events: ${detail}`) };
      }
      const results = await Promise.all(parsed.events.map(async (event, index) => {
        try {
          const r = await publishDomainEvent(o.bus, parsed.source, { correlationId, ...event } as never);
          if (r.status === 'stored') {
            o.metrics.stored.inc({ source: parsed.source });
            o.bus.audit({ stage: 'ingest', outcome: 'stored', correlationId: r.correlationId, eventId: r.eventId, source: parsed.source,
              entity: r.envelope.entity, version: r.envelope.version });
          } else {
            o.metrics.duplicate.inc({ source: parsed.source, where: 'stream' });
          }
          return { index, status: r.status, eventId: r.eventId, correlationId: r.correlationId };
        } catch (err) {
          if (err instanceof EnvelopeError) return { index, status: 'invalid' as const, issues: err.issues };
          if (err instanceof PublishError && err.retryable) return { index, status: 'unavailable' as const, retryable: true };
          o.log.error({ err, correlationId, index }, 'publish API: unexpected failure');
          return { index, status: 'failed' as const, detail: (err as Error).message };
        }
      }));
      const ok = results.filter((r) => r.status === 'stored' || r.status === 'duplicate').length;
      const unavailable = results.filter((r) => r.status === 'unavailable').length;
      if (unavailable === results.length) {
        return { status: 503, headers: { ...base, 'retry-after': '5' }, body: problem(503, 'store-unavailable', 'Event store unavailable', 'No event was stored; retry with the same ids.', { results }) };
      }
      return { status: ok === results.length ? 200 : 207, headers: base, body: { correlationId, results } };
    },
  };
}
export type EventsApi = ReturnType<typeof createEventsApi>;
