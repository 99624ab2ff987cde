import { type Bus, PublishError } from '@bus/bus';
import { createEnvelope, type DomainEvent, type Envelope } from '@bus/envelope';

/** A domain event as the organisation's services send it; the version is the one the service assigns. */
export interface OutgoingEvent<D extends Record<string, unknown> = Record<string, unknown>> extends DomainEvent<D> {
  /** Stable id of this event; give one so a retried publish is stored once. Default: a new UUIDv7. */
  id?: string;
  /** Continue a business action; default: a new one starts here. */
  correlationId?: string;
  causationId?: string | null;
}

export interface PublishResult {
  status: 'stored' | 'duplicate';
  eventId: string;
  correlationId: string;
  seq: number;
}

/**
 * Wraps and stores one domain event, and audits it as `ingest stored` (the step `bus trace`
 * starts from, and the one that indexes the event id and entity for the later steps). Throws
 * EnvelopeError (business: fix the event) or PublishError (transient: retry with the same id;
 * permanent: fix the topology).
 */
export async function publishDomainEvent(bus: Bus, source: string, event: OutgoingEvent): Promise<PublishResult & { envelope: Envelope }> {
  const envelope = createEnvelope(event, {
    source, id: event.id, correlationId: event.correlationId, causationId: event.causationId ?? null,
  });
  const r = await bus.publishEnvelope(bus.names.subjects.event(source, envelope.type), envelope);
  if (!r.duplicate) {
    bus.audit({ stage: 'ingest', outcome: 'stored', correlationId: envelope.correlationId, eventId: envelope.id, source, entity: envelope.entity, version: envelope.version });
  }
  return { status: r.duplicate ? 'duplicate' : 'stored', eventId: envelope.id, correlationId: envelope.correlationId, seq: r.seq, envelope };
}

export interface BusClientOptions {
  bus: Bus;
  /** The publishing service's name: the events' `source`. */
  source: string;
  /** Tries per event for transient failures, with the same id each time. Default 3. */
  attempts?: number;
  /** First retry delay; doubles each time. Default 200 ms. */
  retryDelayMs?: number;
}

/** A typed publisher for services that run next to the bus and write straight to JetStream. */
export function createBusClient(o: BusClientOptions) {
  const attempts = o.attempts ?? 3;
  return {
    async publish<D extends Record<string, unknown>>(event: OutgoingEvent<D>): Promise<PublishResult> {
      // fix the id before the first try, so every retry dedups against it
      const withId = { ...event, id: event.id ?? createEnvelope(event, { source: o.source }).id };
      for (let attempt = 1; ; attempt++) {
        try {
          const { envelope: _e, ...result } = await publishDomainEvent(o.bus, o.source, withId);
          return result;
        } catch (err) {
          if (!(err instanceof PublishError) || !err.retryable || attempt >= attempts) throw err;
          await new Promise((r) => setTimeout(r, (o.retryDelayMs ?? 200) * 2 ** (attempt - 1)));
        }
      }
    },
  };
}
export type BusClient = ReturnType<typeof createBusClient>;
