import { encode, decode, newEventId } from '@bus/envelope';

/**
 * One step of one business action. `bus trace <correlationId>` reads these back in order.
 * Payloads are never audited: only ids, outcomes and reasons.
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
  /** Small, non-personal facts specific to the step. */
  details?: Record<string, unknown>;
}

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
