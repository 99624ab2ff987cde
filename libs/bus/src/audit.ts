import { encode, decode, newEventId } from '@bus/envelope';
import { entityKey, type Names } from '@bus/streams';

/**
 * One step of one business action. `bus trace <correlationId>` reads these back in order.
 * Payloads are never audited: only ids, outcomes and reasons.
 *
 * This file is the one place that knows the audit record's schema and where it is stored
 * (subjects, headers, index): every writer goes through {@link auditMessages} (via
 * `bus.audit` and the process's audit writer, audit-writer.ts), every reader through
 * {@link decodeAuditRecords} (a message holds one record or a list) and the subjects below.
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
  /** The step's own id, when its writer gives one (`bus.audit(r, { msgId })`): two records with it are one step. */
  id?: string;
}

/**
 * Headers of an AUDIT message: readers select without decoding bodies. A message holds the
 * records of one correlation (one record, or several written in one flush): Stage and Outcome
 * list the distinct values of its records, comma-separated (`transform` or `transform,deliver`).
 */
export const AuditHeaders = { Stage: 'Bus-Audit-Stage', Outcome: 'Bus-Audit-Outcome', CorrelationId: 'Bus-Correlation-Id' } as const;

/**
 * How long a step written again counts as the same step: AUDIT's duplicate window (120 s in
 * streams/). Messages carry no Nats-Msg-Id (one message holds several records), so readers fold
 * a record whose {@link auditRecordKey} was already seen this close before, as the server did.
 */
export const AUDIT_FOLD_MS = 120_000;

export function encodeAudit(r: AuditRecord): Uint8Array {
  return encode(r);
}

/** One AUDIT message's body for records of one correlation: a record alone as before, several as a msgpack list. */
export function encodeAuditRecords(records: AuditRecord[]): Uint8Array {
  return records.length === 1 ? encode(records[0]) : encode(records);
}

/** The first record of a message (the single-record layout); prefer {@link decodeAuditRecords}, which reads both. */
export function decodeAudit(bytes: Uint8Array): AuditRecord {
  const v = decode(bytes) as AuditRecord | AuditRecord[];
  return Array.isArray(v) ? (v[0] as AuditRecord) : v;
}

/** The records of one AUDIT message, either layout (a record, or a list); an index entry has none. */
export function decodeAuditRecords(bytes: Uint8Array): AuditRecord[] {
  const v = decode(bytes) as unknown;
  const isRecord = (x: unknown): x is AuditRecord => typeof x === 'object' && x !== null && typeof (x as AuditRecord).stage === 'string';
  return Array.isArray(v) ? v.filter(isRecord) : isRecord(v) ? [v] : [];
}

/** Does this message's Stage/Outcome header hold `value`? (a list's headers join its records' values with `,`) */
export function auditHeaderHas(header: string | undefined, value: string): boolean {
  return !!header && (header === value || header.split(',').includes(value));
}

/** A step's id from its record (stage, outcome, connector, event, attempt, repair run); random without an event id. */
export function auditMsgId(r: Omit<AuditRecord, 'at'>): string {
  // a reconcile repair re-delivers an event already delivered: its records are its run's, not the first delivery's
  const repair = (r.details?.repair as { runId?: string } | undefined)?.runId;
  return r.eventId
    ? `audit.${r.stage}.${r.outcome}.${r.connector ?? '-'}.${r.eventId}.${r.attempt ?? 0}${repair ? `.${repair}` : ''}`
    : `audit.${r.stage}.${r.outcome}.${newEventId()}`;
}

/** Which step a record is, for folding a step written again: its own id, else one made of event, stage, connector, attempt; none without an event. */
export function auditRecordKey(r: AuditRecord): string | undefined {
  return r.id ?? (r.eventId ? auditMsgId(r) : undefined);
}

/**
 * A filter that keeps a record unless the same step ({@link auditRecordKey}) was kept less than
 * {@link AUDIT_FOLD_MS} before it: a redelivered message done again. Before coalescing, the
 * stream's duplicate window dropped these; a message of several records has no Nats-Msg-Id.
 */
export function auditFold(): (r: AuditRecord) => boolean {
  const kept = new Map<string, number>();
  return (r) => {
    const key = auditRecordKey(r);
    if (key === undefined) return true;
    const at = Date.parse(r.at);
    const first = kept.get(key);
    if (first !== undefined && Math.abs(at - first) < AUDIT_FOLD_MS) return false;
    kept.set(key, at);
    return true;
  };
}

/** Records in time order, each step once (see {@link auditFold}). */
export function foldAuditRecords(records: AuditRecord[]): AuditRecord[] {
  return [...records].sort((a, b) => a.at.localeCompare(b.at)).filter(auditFold());
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

/** One message to store for an audit write (no Nats-Msg-Id: readers fold repeats, see {@link foldAuditRecords}). */
export interface AuditMessage {
  subject: string;
  data: Uint8Array;
  headers: Record<string, string>;
}

/** An index entry to write: which key (event id or entity) leads to which correlation. */
export interface AuditIndexKey {
  kind: 'ev' | 'en';
  /** The event id, or the entity as `type/id`. */
  key: string;
  correlationId: string;
  entity?: { type: string; id: string };
}

/** The index keys of a record: its event id and entity under its correlation (none without a correlation). */
export function auditIndexKeys(record: AuditRecord): AuditIndexKey[] {
  const correlationId = record.correlationId || '-';
  if (correlationId === '-') return [];
  const out: AuditIndexKey[] = [];
  if (record.eventId) out.push({ kind: 'ev', key: record.eventId, correlationId });
  if (record.entity) out.push({ kind: 'en', key: entityKey(record.entity), correlationId, entity: record.entity });
  return out;
}

/**
 * The messages a flush of audit records is stored as: the records of each correlation as one
 * message on its bucket `audit.<bucket>` (a trace is one literal-subject read, which nats-server
 * answers from its per-subject index without scanning the stream, then kept by the correlation
 * header), and one index entry per key on `audit.ix.ev.<bucket>` / `audit.ix.en.<bucket>` whose
 * body is the key and the correlation id (msgpack `{ key, correlationId }`), so an event id or
 * entity finds its correlations the same way. Buckets, not one subject per id: nats-server holds
 * every subject of a stream in memory (see AUDIT_BUCKETS). Which keys to index is the caller's
 * (the writer leaves out what it or the event's `stored` record already wrote).
 */
export function auditMessages(names: Names, records: AuditRecord[], index: AuditIndexKey[] = records.flatMap(auditIndexKeys)): AuditMessage[] {
  const byCorrelation = new Map<string, AuditRecord[]>();
  for (const r of records) {
    const c = r.correlationId || '-';
    const list = byCorrelation.get(c);
    if (list) list.push(r);
    else byCorrelation.set(c, [r]);
  }
  const distinct = (xs: string[]) => [...new Set(xs)].join(',');
  const out: AuditMessage[] = [];
  for (const [correlation, list] of byCorrelation) {
    out.push({
      subject: names.subjects.audit(correlation), data: encodeAuditRecords(list),
      headers: { [AuditHeaders.CorrelationId]: correlation, [AuditHeaders.Stage]: distinct(list.map((r) => r.stage)), [AuditHeaders.Outcome]: distinct(list.map((r) => r.outcome)) },
    });
  }
  // msgpack like a record (a reader decoding every AUDIT message sees an object with no stage, not an error)
  for (const k of index) {
    const subject = k.kind === 'en' && k.entity ? names.subjects.auditIndex.entity(k.entity) : names.subjects.auditIndex.event(k.key);
    out.push({ subject, data: encode({ key: k.key, correlationId: k.correlationId } satisfies AuditIndexEntry), headers: { [AuditHeaders.CorrelationId]: k.correlationId } });
  }
  return out;
}

/** What a trace is looked up by: `correlation`, `event` (an event id) or `entity` (`contact/c-1`). */
export type TraceKeyKind = 'correlation' | 'event' | 'entity';

/** `contact/c-1` → the entity; anything without one `/` between two parts is not an entity. */
export function parseEntityKey(key: string): { type: string; id: string } | undefined {
  const i = key.indexOf('/');
  return i > 0 && i < key.length - 1 ? { type: key.slice(0, i), id: key.slice(i + 1) } : undefined;
}
