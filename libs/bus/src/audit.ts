import { encode, decode, newEventId } from '@bus/envelope';
import { entityKey, type Names } from '@bus/streams';

/**
 * One step of one business action. `bus trace <correlationId>` reads these back in order.
 * Payloads are never audited: only ids, outcomes and reasons.
 *
 * This file is the one place that knows the audit record's schema and where it is stored
 * (subjects, headers, index): every writer goes through {@link auditMessages} (via
 * `bus.audit`), every reader through {@link decodeAudit} and the subjects below.
 */
export interface AuditRecord {
  stage: string;
  outcome: string;
  correlationId: string;
  at: string;
  eventId?: string;
  source?: string;
  connector?: string;
  entity?: { type: string; id: string };
  version?: number;
  attempt?: number;
  failureClass?: string;
  status?: number;
  code?: string;
  reason?: string;
  durationMs?: number;
  /** Who did it, for a person's action (console or CLI): `console:<token name>`, `cli`. */
  by?: string;
  /** Small, non-personal facts specific to the step. */
  details?: Record<string, unknown>;
}

/** Headers of an audit record: readers select by stage and outcome without decoding bodies. */
export const AuditHeaders = { Stage: 'Bus-Audit-Stage', Outcome: 'Bus-Audit-Outcome', CorrelationId: 'Bus-Correlation-Id' } as const;

export function encodeAudit(r: AuditRecord): Uint8Array {
  return encode(r);
}

export function decodeAudit(bytes: Uint8Array): AuditRecord {
  return decode(bytes) as AuditRecord;
}

/** A dedup id for an audit record: the same step written twice is stored once. */
export function auditMsgId(r: Omit<AuditRecord, 'at'>): string {
  // a reconcile repair re-delivers an event already delivered: its records are its run's, not the first delivery's
  const repair = (r.details?.repair as { runId?: string } | undefined)?.runId;
  return r.eventId
    ? `audit.${r.stage}.${r.outcome}.${r.connector ?? '-'}.${r.eventId}.${r.attempt ?? 0}${repair ? `.${repair}` : ''}`
    : `audit.${r.stage}.${r.outcome}.${newEventId()}`;
}

/** The body of an index entry (`audit.ix.…`). */
export interface AuditIndexEntry {
  /** The event id, or the entity as `type/id`: a bucket holds many keys' entries. */
  key: string;
  correlationId: string;
}

/** An index entry: which key points at which correlation. */
export function decodeAuditIndex(bytes: Uint8Array): AuditIndexEntry {
  return decode(bytes) as AuditIndexEntry;
}

/** One message to store for an audit write. */
export interface AuditMessage {
  subject: string;
  data: Uint8Array;
  msgId: string;
  headers: Record<string, string>;
}

/**
 * The messages one audit record is stored as: the record on its correlation id's bucket
 * `audit.<bucket>` (a trace is one literal-subject read, which nats-server answers from its
 * per-subject index without scanning the stream, then kept by the correlation header), and
 * index entries on `audit.ix.ev.<bucket>` / `audit.ix.en.<bucket>` whose body is the key and
 * the correlation id (msgpack `{ key, correlationId }`), so an event id or entity finds its
 * correlations the same way. Buckets, not one subject per id: nats-server holds every subject
 * of a stream in memory (see AUDIT_BUCKETS). An index entry's msgId is per (key, correlation):
 * the several records of one action within the stream's duplicate window store it once.
 */
export function auditMessages(names: Names, record: AuditRecord, msgId = auditMsgId(record)): AuditMessage[] {
  const correlation = record.correlationId || '-';
  const headers = { [AuditHeaders.CorrelationId]: correlation, [AuditHeaders.Stage]: record.stage, [AuditHeaders.Outcome]: record.outcome };
  const out: AuditMessage[] = [{ subject: names.subjects.audit(correlation), data: encodeAudit(record), msgId, headers }];
  if (correlation === '-') return out;
  const ix = { [AuditHeaders.CorrelationId]: correlation };
  // msgpack like a record (a reader decoding every AUDIT message sees an object with no stage, not an error)
  const entry = (subject: string, key: string, kind: string): AuditMessage =>
    ({ subject, data: encode({ key, correlationId: correlation } satisfies AuditIndexEntry), msgId: `audit.ix.${kind}.${key}.${correlation}`, headers: ix });
  if (record.eventId) out.push(entry(names.subjects.auditIndex.event(record.eventId), record.eventId, 'ev'));
  if (record.entity) out.push(entry(names.subjects.auditIndex.entity(record.entity), entityKey(record.entity), 'en'));
  return out;
}

/** What a trace is looked up by: `correlation`, `event` (an event id) or `entity` (`contact/c-1`). */
export type TraceKeyKind = 'correlation' | 'event' | 'entity';

/** `contact/c-1` → the entity; anything without one `/` between two parts is not an entity. */
export function parseEntityKey(key: string): { type: string; id: string } | undefined {
  const i = key.indexOf('/');
  return i > 0 && i < key.length - 1 ? { type: key.slice(0, i), id: key.slice(i + 1) } : undefined;
}
