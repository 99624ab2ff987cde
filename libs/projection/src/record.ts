import type { Envelope } from '@bus/envelope';
import { kvToken } from '@bus/streams';

/** What the projection keeps per source and entity: the state the latest version left. */
export interface ProjectedEntity {
  source: string;
  entity: { type: string; id: string };
  /** The highest version seen for this entity from this source. */
  version: number;
  /** The event's `data` at that version: the fields the source owns. */
  fields: Record<string, unknown>;
  /** Id and type of the event that set this version. */
  eventId: string;
  eventType: string;
  /** The event's `occurredAt` (ISO-8601 UTC). */
  eventTime: string;
  /** EVENTS sequence of that event. */
  seq: number;
  /** When this entry was written (ISO-8601 UTC). The only field a rebuild does not reproduce. */
  updatedAt: string;
}

/** What applying one event or record did. */
export type ApplyOutcome = 'applied' | 'stale' | 'duplicate';

/** Counts per outcome (and events that could not be read, for a rebuild). */
export interface ApplyCounts {
  applied: number;
  stale: number;
  duplicate: number;
}

/** `<source>.<entityType>.<kvToken(entityId)>`: sources and entity types are subject tokens already. */
export function projectionKey(source: string, entityType: string, entityId: string): string {
  return `${source}.${entityType}.${kvToken(entityId)}`;
}

export const keyOfRecord = (r: Pick<ProjectedEntity, 'source' | 'entity'>) => projectionKey(r.source, r.entity.type, r.entity.id);

/** The entry an event would leave, were it the latest. */
export function recordOf(env: Envelope, seq: number, now = new Date()): ProjectedEntity {
  return {
    source: env.source, entity: { type: env.entity.type, id: env.entity.id }, version: env.version, fields: env.data,
    eventId: env.id, eventType: env.type, eventTime: env.occurredAt, seq, updatedAt: now.toISOString(),
  };
}

/**
 * Whether `candidate` replaces `current`. A higher version wins; a lower one is stale. On a
 * tie (the same event stored twice, or a source that sent two events with one version) the
 * first stored — the lower EVENTS sequence — wins. That makes the state a maximum over all
 * events, so it does not depend on the order they are applied in: live (concurrent, several
 * processes) and a replay end in the same entry.
 */
export function decide(current: Pick<ProjectedEntity, 'version' | 'seq'> | undefined, candidate: Pick<ProjectedEntity, 'version' | 'seq'>): { outcome: ApplyOutcome; replace: boolean } {
  if (!current || candidate.version > current.version) return { outcome: 'applied', replace: true };
  if (candidate.version < current.version) return { outcome: 'stale', replace: false };
  return { outcome: 'duplicate', replace: candidate.seq < current.seq };
}
