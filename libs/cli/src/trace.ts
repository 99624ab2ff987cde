import type { AuditRecord, TraceKeyKind } from '@bus/bus';
import { BusError } from '@bus/errors';
import { TRACE_KINDS as KINDS, trace, traceSteps } from '@bus/operations';
import type { Command } from 'commander';
import { parseSince } from './dlq.js';
import { printTable, withBus } from './context.js';
import { emit } from './output.js';

/** The table `bus trace` prints, one row per record (traceSteps, as the console shows them). */
export function traceRows(records: AuditRecord[]): Record<string, string | number>[] {
  return traceSteps(records).map(({ by: _by, ...row }) => row);
}

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
      const found = await trace(bus, key, { kind: o.kind as TraceKeyKind | undefined, sinceMs, legacy: o.legacy });
      if (o.json) return emit(found.correlations.flatMap((c) => c.records));
      if (found.correlations.length === 0) return console.log(`no audit records for ${key} (AUDIT keeps 30 days${o.legacy ? '' : '; --legacy reads records from before the audit index'})`);
      const several = found.correlations.length > 1 || found.kind !== 'correlation';
      for (const c of found.correlations) {
        if (several) console.log(`\ncorrelation ${c.correlationId}`);
        printTable(traceRows(c.records));
      }
    }));
}
