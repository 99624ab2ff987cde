import { CONTENT_TYPE } from './codec.js';
import type { Envelope } from './schema.js';

/**
 * Header names. Routing and tracing read these without decoding the body; the body stays
 * the source of truth.
 */
export const Headers = {
  MsgId: 'Nats-Msg-Id',
  ContentType: 'Content-Type',
  CorrelationId: 'Bus-Correlation-Id',
  CausationId: 'Bus-Causation-Id',
  EventType: 'Bus-Event-Type',
  Source: 'Bus-Source',
  EntityType: 'Bus-Entity-Type',
  EntityId: 'Bus-Entity-Id',
  EntityVersion: 'Bus-Entity-Version',
  SchemaVersion: 'Bus-Schema-Version',
} as const;
export type HeaderName = (typeof Headers)[keyof typeof Headers];

/** The headers a message carrying this envelope gets; `Nats-Msg-Id` is the event id. */
export function envelopeHeaders(env: Envelope): Record<HeaderName, string> {
  return {
    [Headers.MsgId]: env.id,
    [Headers.ContentType]: CONTENT_TYPE,
    [Headers.CorrelationId]: env.correlationId,
    [Headers.CausationId]: env.causationId ?? '',
    [Headers.EventType]: env.type,
    [Headers.Source]: env.source,
    [Headers.EntityType]: env.entity.type,
    [Headers.EntityId]: env.entity.id,
    [Headers.EntityVersion]: String(env.version),
    [Headers.SchemaVersion]: String(env.schemaVersion),
  };
}

/** What can be known about a message from its headers alone (for routing, logs, audit). */
export interface HeaderFacts {
  msgId?: string;
  correlationId?: string;
  causationId?: string;
  eventType?: string;
  source?: string;
  entityType?: string;
  entityId?: string;
  entityVersion?: number;
}

/** Reads the bus headers through a getter (NATS MsgHdrs.get, or a plain map lookup). */
export function readHeaderFacts(get: (name: string) => string | undefined): HeaderFacts {
  const value = (name: string) => get(name) || undefined;
  const version = Number(value(Headers.EntityVersion));
  return {
    msgId: value(Headers.MsgId),
    correlationId: value(Headers.CorrelationId),
    causationId: value(Headers.CausationId),
    eventType: value(Headers.EventType),
    source: value(Headers.Source),
    entityType: value(Headers.EntityType),
    entityId: value(Headers.EntityId),
    entityVersion: Number.isSafeInteger(version) ? version : undefined,
  };
}
