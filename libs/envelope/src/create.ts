import { DateTime } from 'luxon';
import { parseEnvelope } from './codec.js';
import { newCorrelationId, newEventId } from './ids.js';
import type { EntityRef, Envelope } from './schema.js';

/** A domain event as a service or source states it, before it is wrapped. */
export interface DomainEvent<D extends Record<string, unknown> = Record<string, unknown>> {
  type: string;
  entity: EntityRef;
  /** The entity version the source assigns; monotonic per entity. */
  version: number;
  /** `stamp` when the version is a timestamp (a gap means nothing); default `sequence`. */
  versionKind?: 'sequence' | 'stamp';
  data: D;
  /** Default 1. */
  schemaVersion?: number;
  /** When it happened at the source; default now. */
  occurredAt?: Date | DateTime | string;
}

/** Where an event comes from and what caused it. */
export interface EnvelopeContext {
  source: string;
  /** Default: a new id (this event starts a business action). */
  correlationId?: string;
  /** Default null. */
  causationId?: string | null;
  /** Default: a new UUIDv7. Give the provider's delivery id so retries dedup. */
  id?: string;
}

function toIsoUtc(at: Date | DateTime | string | undefined): string {
  if (at === undefined) return new Date().toISOString();
  if (at instanceof Date) return Number.isNaN(at.getTime()) ? String(at) : at.toISOString();
  if (typeof at === 'string') {
    const dt = DateTime.fromISO(at, { setZone: true });
    return dt.isValid ? (dt.toUTC().toISO() ?? at) : at; // an invalid string is named by the schema
  }
  const dt = at instanceof Date ? DateTime.fromJSDate(at) : at;
  return dt.toUTC().toISO() ?? String(at);
}

/**
 * Wraps a domain event in a validated envelope. Throws EnvelopeError naming every bad
 * field; nothing half-valid leaves this function.
 */
export function createEnvelope<D extends Record<string, unknown>>(
  event: DomainEvent<D>,
  ctx: EnvelopeContext,
): Envelope<D> {
  return parseEnvelope({
    id: ctx.id ?? newEventId(),
    type: event.type,
    source: ctx.source,
    entity: event.entity,
    version: event.version,
    ...(event.versionKind !== undefined ? { versionKind: event.versionKind } : {}),
    occurredAt: toIsoUtc(event.occurredAt),
    correlationId: ctx.correlationId ?? newCorrelationId(),
    causationId: ctx.causationId ?? null,
    schemaVersion: event.schemaVersion ?? 1,
    data: event.data,
  }) as Envelope<D>;
}

/** Context for an event caused by `parent`: same correlation id, parent as its cause. */
export function causedBy(parent: Pick<Envelope, 'id' | 'correlationId'>, source: string): EnvelopeContext {
  return { source, correlationId: parent.correlationId, causationId: parent.id };
}
