import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { entityKey, type Names } from '@bus/streams';
import { type AuditRecord, AuditHeaders, auditFold, auditHeaderHas, decodeAudit, decodeAuditIndex, decodeAuditRecords, foldAuditRecords, parseEntityKey, type TraceKeyKind } from './audit.js';
import { firstSeqSince, readRange } from './read.js';

interface AuditReader {
  js: JetStreamClient;
  jsm: JetStreamManager;
  names: Names;
}

/** Most correlations an event id or entity expands to (the newest ones): a trace page, not an export. */
export const TRACE_MAX_CORRELATIONS = 50;

/**
 * Every record on one literal subject, in stream order, from `sinceMs` (`firstSeqSince`, so a
 * recent window costs no read of older records). The server finds a literal subject's
 * messages from its per-subject index: the cost follows the records found, not the stream.
 */
async function readSubject(bus: AuditReader, subject: string, sinceMs = 0): Promise<{ seq: number; data: Uint8Array; header?: { get(k: string): string } }[]> {
  const stream = bus.names.streams.audit;
  let fromSeq: number | undefined;
  if (sinceMs) {
    fromSeq = await firstSeqSince(bus.jsm, stream, sinceMs, subject);
    if (fromSeq === undefined) return [];
  } else {
    // nothing on this subject: one cheap lookup instead of a consumer (STREAM.MSG.GET takes next_by_subj since
    // nats-server 2.9; the client's type lists it only for direct gets)
    const first = await bus.jsm.streams.getMessage(stream, { next_by_subj: subject, seq: 1 } as never).catch(() => null);
    if (!first) return [];
    fromSeq = first.seq;
  }
  const out: { seq: number; data: Uint8Array; header?: { get(k: string): string } }[] = [];
  for await (const m of readRange(bus.js, bus.jsm, stream, { fromSeq, filterSubject: subject })) {
    out.push({ seq: m.seq, data: m.data, header: m.headers });
  }
  return out;
}

/** Every audit record of one business action, in time order (a message holds one record or a flush's list of them). */
export async function auditOfCorrelation(bus: AuditReader, correlationId: string, sinceMs = 0): Promise<AuditRecord[]> {
  const found = await readSubject(bus, bus.names.subjects.audit(correlationId), sinceMs);
  // a bucket holds many actions: keep this one's records (by header, without decoding the others)
  return foldAuditRecords(found.filter((m) => (m.header?.get(AuditHeaders.CorrelationId) ?? correlationId) === correlationId)
    .flatMap((m) => decodeAuditRecords(m.data)).filter((r) => (r.correlationId || '-') === correlationId));
}

/** The correlation ids an event id or entity appears under, newest last, at most {@link TRACE_MAX_CORRELATIONS}. */
export async function correlationsOf(bus: AuditReader, kind: Exclude<TraceKeyKind, 'correlation'>, key: string, sinceMs = 0): Promise<string[]> {
  let subject: string;
  let wanted = key;
  if (kind === 'event') subject = bus.names.subjects.auditIndex.event(key);
  else {
    const entity = parseEntityKey(key);
    if (!entity) return [];
    subject = bus.names.subjects.auditIndex.entity(entity);
    wanted = entityKey(entity);
  }
  // a bucket holds many keys' entries: keep this key's
  const ids = (await readSubject(bus, subject, sinceMs)).map((m) => decodeAuditIndex(m.data)).filter((e) => e.key === wanted).map((e) => e.correlationId);
  return [...new Set(ids)].slice(-TRACE_MAX_CORRELATIONS);
}

/** What a trace lookup found: which kind of key it was, the correlations, and their records. */
export interface TraceResult {
  key: string;
  kind: TraceKeyKind;
  correlations: { correlationId: string; records: AuditRecord[] }[];
}

/**
 * A trace by correlation id, event id or entity (`contact/c-1`). With `kind` unset: a key
 * with a `/` is an entity; otherwise a correlation id, and when none has records, an event id.
 * Event and entity keys expand through the audit index to their correlations (each read
 * whole, so the trace shows every step of each action, also those without the key).
 */
export async function auditTrace(bus: AuditReader, key: string, o: { kind?: TraceKeyKind; sinceMs?: number } = {}): Promise<TraceResult> {
  const sinceMs = o.sinceMs ?? 0;
  const kind = o.kind ?? (parseEntityKey(key) ? 'entity' : 'correlation');
  if (kind === 'correlation') {
    const records = await auditOfCorrelation(bus, key, sinceMs);
    if (records.length || o.kind) return { key, kind, correlations: records.length ? [{ correlationId: key, records }] : [] };
    return auditTrace(bus, key, { kind: 'event', sinceMs });
  }
  const ids = await correlationsOf(bus, kind, key, sinceMs);
  const correlations = await Promise.all(ids.map(async (correlationId) => ({ correlationId, records: await auditOfCorrelation(bus, correlationId, sinceMs) })));
  return { key, kind, correlations: correlations.filter((c) => c.records.length) };
}

/**
 * Records in the layout before the audit index (`audit.<stage>.<outcome>`) for one correlation:
 * a scan of those subjects, filtered by header. Only `bus trace --legacy` reads it; AUDIT's
 * 30-day max age retires the old layout by itself.
 */
export async function legacyAuditOf(bus: AuditReader, correlationId: string, sinceMs = 0): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const m of readRange(bus.js, bus.jsm, bus.names.streams.audit, { filterSubject: bus.names.subjects.auditLegacy, ...(sinceMs ? { sinceMs } : {}) })) {
    if (m.headers?.get(AuditHeaders.CorrelationId) === correlationId) out.push(decodeAudit(m.data));
  }
  return out.sort((a, b) => a.at.localeCompare(b.at));
}

/**
 * Audit records (of one stage and outcome, when given), any correlation, in stored order: a full
 * read of AUDIT filtered by header, skipping index entries, a step written again within the fold
 * window shown once (as a trace does) — for tests and fault reports, never for a trace.
 */
export async function* auditRecordsOf(bus: AuditReader, stage?: string, outcome?: string): AsyncGenerator<AuditRecord> {
  const keep = auditFold();
  for await (const m of readRange(bus.js, bus.jsm, bus.names.streams.audit)) {
    const stages = m.headers?.get(AuditHeaders.Stage);
    if (!stages || (stage && !auditHeaderHas(stages, stage))) continue;
    if (outcome && !auditHeaderHas(m.headers?.get(AuditHeaders.Outcome), outcome)) continue;
    for (const r of decodeAuditRecords(m.data)) {
      if ((stage && r.stage !== stage) || (outcome && r.outcome !== outcome)) continue;
      if (keep(r)) yield r;
    }
  }
}
