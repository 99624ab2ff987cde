import { type AuditRecord, auditTrace, type Bus, legacyAuditOf, type TraceKeyKind } from '@bus/bus';
import { BusError } from '@bus/errors';
import type { Command } from 'commander';
import { parseSince } from './dlq.js';
import { printTable, withBus } from './context.js';
import { emit } from './output.js';

/**
 * Every audit record of one business action, in order, from `sinceMs` — through the audit
 * index (one literal-subject read, libs/bus/src/audit-read.ts), so it answers as fast on a
 * year of AUDIT as on an hour.
 */
export async function traceOf(bus: Bus, correlationId: string, sinceMs = 0): Promise<AuditRecord[]> {
  const found = await auditTrace(bus, correlationId, { kind: 'correlation', sinceMs });
  return found.correlations.flatMap((c) => c.records);
}

/**
 * The table `bus trace` prints, one row per record. A reconcile repair shows as stage
 * `reconcile`, outcome `repair`, with its reason (kind, fields, run); deliver's records of a
 * repair command say so in their detail (`repair <kind>, run <runId>: …`), so the trace tells a
 * repair's delivery from the event's own.
 */
export function traceRows(records: AuditRecord[]): Record<string, string | number>[] {
  return records.map((r) => {
    const repair = r.stage !== 'reconcile' ? (r.details?.repair as { runId?: string; kind?: string } | undefined) : undefined;
    const why = r.reason ?? r.failureClass ?? '';
    const detail = repair ? `repair ${repair.kind ?? ''}, run ${repair.runId ?? '?'}${why ? `: ${why}` : ''}` : why;
    return {
      at: r.at, stage: r.stage, outcome: r.outcome, connector: r.connector ?? r.source ?? '-',
      entity: r.entity ? `${r.entity.type}/${r.entity.id}@${r.version ?? '?'}` : '-', attempt: r.attempt ?? '-',
      status: r.status ?? '-', detail: detail.slice(0, 100),
    };
  });
}

const KINDS = ['correlation', 'event', 'entity'] as const;

export function registerTrace(program: Command): void {
  program
    .command('trace <key>')
    .description('the whole life of one business action: ingest, transform, every delivery attempt, reconcile repairs and their delivery. ' +
      'The key is a correlation id, an event id or an entity (contact/c-1: every action on it)')
    .option('--kind <kind>', `what the key is: ${KINDS.join(', ')} (default: entity when it has a /, else correlation, then event)`)
    .option('--since <when>', 'only records after this (2h, 3d, ISO time); default all of AUDIT')
    .option('--legacy', 'also scan records written before the audit index (audit.<stage>.<outcome>; slow on a big AUDIT)')
    .option('--json', 'one JSON object; result: the audit records, in order (each has its correlationId)')
    .action(async (key: string, o: { kind?: string; since?: string; legacy?: boolean; json?: boolean }) => withBus(async (bus) => {
      if (o.kind && !(KINDS as readonly string[]).includes(o.kind)) throw new BusError('CLI_USAGE', 'business', `--kind "${o.kind}": say ${KINDS.join(', ')}`);
      const sinceMs = o.since ? parseSince(o.since) : 0;
      const found = await auditTrace(bus, key, { kind: o.kind as TraceKeyKind | undefined, sinceMs });
      if (o.legacy && found.kind === 'correlation') {
        const old = await legacyAuditOf(bus, key, sinceMs);
        if (old.length) found.correlations = [{ correlationId: key, records: [...old, ...(found.correlations[0]?.records ?? [])] }];
      }
      if (o.json) return emit(found.correlations.flatMap((c) => c.records));
      if (found.correlations.length === 0) return console.log(`no audit records for ${key} (AUDIT keeps 30 days${o.legacy ? '' : '; --legacy reads records from before the audit index'})`);
      const several = found.correlations.length > 1 || found.kind !== 'correlation';
      for (const c of found.correlations) {
        if (several) console.log(`\ncorrelation ${c.correlationId}`);
        printTable(traceRows(c.records));
      }
    }));
}
