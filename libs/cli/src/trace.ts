import { type AuditRecord, type Bus, decodeAudit, readStream } from '@bus/bus';
import type { Command } from 'commander';
import { parseSince } from './dlq.js';
import { printTable, withBus } from './context.js';
import { emit } from './output.js';

/** Every audit record of one business action, in order (reads AUDIT from `sinceMs`). */
export async function traceOf(bus: Bus, correlationId: string, sinceMs = 0): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const m of readStream(bus.jsm, bus.names.streams.audit)) {
    if (m.header?.get('Bus-Correlation-Id') !== correlationId) continue; // the header, so bodies are decoded only for hits
    if (sinceMs && Date.parse(m.timestamp) < sinceMs) continue;
    out.push(decodeAudit(m.data));
  }
  return out.sort((a, b) => a.at.localeCompare(b.at));
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

export function registerTrace(program: Command): void {
  program
    .command('trace <correlationId>')
    .description('the whole life of one business action: ingest, transform, every delivery attempt, reconcile repairs and their delivery')
    .option('--since <when>', 'only records after this (2h, 3d, ISO time); default all of AUDIT')
    .option('--json', 'one JSON object; result: the audit records, in order')
    .action(async (correlationId: string, o: { since?: string; json?: boolean }) => withBus(async (bus) => {
      const records = await traceOf(bus, correlationId, o.since ? parseSince(o.since) : 0);
      if (o.json) return emit(records);
      if (records.length === 0) return console.log(`no audit records for ${correlationId} (AUDIT keeps 30 days)`);
      printTable(traceRows(records));
    }));
}
