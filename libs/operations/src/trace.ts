import { type AuditRecord, auditTrace, type Bus, legacyAuditOf, type TraceKeyKind, type TraceResult } from '@bus/bus';

export const TRACE_KINDS = ['correlation', 'event', 'entity'] as const;

/**
 * A trace by correlation id, event id or entity (`contact/c-1`) through the audit index
 * (libs/bus/src/audit-read.ts); with `legacy`, a correlation's records from before the index too.
 */
export async function trace(bus: Bus, key: string, o: { kind?: TraceKeyKind; sinceMs?: number; legacy?: boolean } = {}): Promise<TraceResult> {
  const found = await auditTrace(bus, key, { kind: o.kind, sinceMs: o.sinceMs });
  if (o.legacy && found.kind === 'correlation') {
    const old = await legacyAuditOf(bus, key, o.sinceMs);
    if (old.length) found.correlations = [{ correlationId: key, records: [...old, ...(found.correlations[0]?.records ?? [])] }];
  }
  return found;
}

/** Every audit record of one business action, in order, from `sinceMs`. */
export async function traceOf(bus: Bus, correlationId: string, sinceMs = 0): Promise<AuditRecord[]> {
  return (await trace(bus, correlationId, { kind: 'correlation', sinceMs })).correlations.flatMap((c) => c.records);
}

/** One trace step as the CLI's table and the console's page show it. */
export interface TraceStep {
  at: string;
  stage: string;
  outcome: string;
  connector: string;
  entity: string;
  attempt: number | string;
  status: number | string;
  detail: string;
  by?: string;
}

/**
 * One row per record. A reconcile repair shows as stage `reconcile`, outcome `repair`, with
 * its reason (kind, fields, run); deliver's records of a repair command say so in their detail
 * (`repair <kind>, run <runId>: …`), so the trace tells a repair's delivery from the event's own.
 */
export function traceSteps(records: AuditRecord[]): TraceStep[] {
  return records.map((r) => {
    const repair = r.stage !== 'reconcile' ? (r.details?.repair as { runId?: string; kind?: string } | undefined) : undefined;
    const why = r.reason ?? r.failureClass ?? '';
    const detail = repair ? `repair ${repair.kind ?? ''}, run ${repair.runId ?? '?'}${why ? `: ${why}` : ''}` : why;
    return {
      at: r.at, stage: r.stage, outcome: r.outcome, connector: r.connector ?? r.source ?? '-',
      entity: r.entity ? `${r.entity.type}/${r.entity.id}@${r.version ?? '?'}` : '-', attempt: r.attempt ?? '-',
      status: r.status ?? '-', detail: detail.slice(0, 100), ...(r.by ? { by: r.by } : {}),
    };
  });
}
