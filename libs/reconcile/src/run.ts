import { BusError } from '@bus/errors';
import type { Bus } from '@bus/bus';
import type { DeliveryCommand, SchemaRegistry } from '@bus/connectors';
import type { ResolvedDelivery } from '@bus/delivery';
import type { Logger } from '@bus/observability';
import { type ProjectedEntity, readProjectionPages } from '@bus/projection';
import { comparePage, type Expected } from './compare.js';
import { type Difference, DIFFERENCE_KINDS, redact, SAFE_KINDS, unknownRecord } from './differences.js';
import { expectedCommands, targetKey } from './expected.js';
import { KeyHashes } from './keys.js';
import type { ReconcileMetrics } from './metrics.js';
import { prefetched } from './prefetch.js';
import { originalCorrelationId, publishRepair, repairCommand } from './repair.js';
import { type Checkpoint, itemId, newRunId, type ReportItem, type ReportStore, reportStore, type RunReport } from './report.js';
import { targetReader } from './reads.js';
import { settledChecker } from './settled.js';

export interface ReconcileOptions {
  bus: Bus;
  /** The connector and its target (resolveDelivery): what is compared and where repairs go. */
  delivery: ResolvedDelivery;
  log: Logger;
  metrics?: ReconcileMetrics;
  /** The event schemas transform validates with: invalid data is never expected at a target. */
  schemas?: SchemaRegistry;
  /** Compare and report only: nothing is repaired, published or settled. */
  dryRun?: boolean;
  /** Entities compared per page (one batched read at the target per type). Default 500. */
  pageSize?: number;
  /** Fields whose values reports show only as a short hash (personal data). */
  personalFields?: string[];
  /** The new run's id (default a fresh one): a caller that answers before the run ends knows it. */
  runId?: string;
  /** Go on with this unfinished run from its checkpoint instead of starting a new one. */
  resume?: RunReport;
  /** Who runs it: shows in the report. */
  holder?: string;
  /** Stops the run at the next page (shutdown, or the lease was lost); it stays resumable. */
  signal?: AbortSignal;
  /**
   * Target reads per second. Default: half the connector's own rate limit, so live
   * deliveries keep the other half; unlimited when the connector has none.
   */
  readRatePerSec?: number;
  /**
   * The settled rule's fallback (settled.ts), only where transform's consumer for the connector
   * does not exist: a projection entry younger than this is taken as still on its way. Default
   * 60 000 ms; 0 when nothing runs upstream (a test, a bench).
   */
  settleMs?: number;
  onProgress?: (r: RunReport) => void;
}

const emptyCounts = () => Object.fromEntries(DIFFERENCE_KINDS.map((k) => [k, 0])) as RunReport['counts'];

/**
 * One reconcile run of one connector: the projection (what the sources said) against the
 * target, page by page. An entity with work still on its way (settled.ts) is counted in flight
 * and left for the next run. Safe differences (missing, stale) are repaired by publishing
 * ordinary commands to DELIVERIES under the original event's correlation id — so ordering,
 * idempotency keys, rate limits and audit all apply — the rest are flagged for a person. Every
 * difference is a report item; the run's checkpoint moves after each page, so a crashed run is
 * resumed, not restarted.
 */
export async function runReconcile(o: ReconcileOptions): Promise<RunReport> {
  const { bus, delivery } = o;
  const connector = delivery.connector;
  const target = delivery.target;
  const store: ReportStore = reportStore(bus);
  const pageSize = o.pageSize ?? 500;
  const personal = new Set(o.personalFields ?? []);
  if (!target.lookupMany && !target.lookup) {
    throw new BusError('RECONCILE_NO_LOOKUP', 'permanent', `connector "${connector.name}" cannot be reconciled: its ${target.kind} target cannot look records up (add a lookup to its delivery settings)`);
  }
  const report: RunReport = o.resume
    ? { ...o.resume, status: 'running', resumed: o.resume.resumed + 1, holder: o.holder ?? o.resume.holder, inFlight: o.resume.inFlight ?? 0 }
    : { runId: o.runId ?? newRunId(), connector: connector.name, dryRun: o.dryRun ?? false, status: 'running', startedAt: new Date().toISOString(), holder: o.holder ?? 'cli',
        resumed: 0, checked: 0, listed: 0, counts: emptyCounts(), inFlight: 0, repaired: 0, flagged: 0, items: 0, checkpoint: { phase: 'projection', afterSeq: 0, types: [] } };
  const runId = report.runId;
  const dryRun = report.dryRun;
  const log = o.log.child({ correlationId: runId, connector: connector.name, runId });
  const checkpoint = (): Checkpoint => report.checkpoint ?? { phase: 'projection', afterSeq: 0, types: [] };
  await store.saveRun(report, !o.resume);
  log.info({ dryRun, resumed: report.resumed, checkpoint: report.checkpoint }, report.resumed ? 'reconcile resumed from its checkpoint' : 'reconcile started');

  const reader = await targetReader({ bus, delivery, log, readRatePerSec: o.readRatePerSec, signal: o.signal });
  const settled = settledChecker({ bus, connector: connector.name, mode: delivery.settings.ordering, settleMs: o.settleMs ?? 60_000 });

  async function record(d: Difference, entity: ReportItem['entity'], repair?: { cmd: DeliveryCommand; entry: ProjectedEntity }): Promise<void> {
    if (!SAFE_KINDS.has(d.kind) && (await store.settled(connector.name, d))) return; // a person already decided this one
    report.counts[d.kind]++;
    o.metrics?.differences.inc({ connector: connector.name, kind: d.kind });
    let decision: ReportItem['decision'] = 'flagged';
    if (SAFE_KINDS.has(d.kind) && repair) {
      decision = dryRun ? 'would-repair' : 'repaired';
      if (!dryRun) {
        const { cmd, entry } = repair;
        // the original event's correlation id (from EVENTS, by the entry's sequence): bus trace shows the repair with the event's own story
        const correlationId = (await originalCorrelationId(bus, { eventId: entry.eventId, seq: entry.seq })) ?? runId;
        const fields = d.sourceDeleted ? 'deleted at the source' : d.fields.map((f) => f.field).join(', ') || 'whole record';
        await publishRepair(bus, repairCommand(cmd, { runId, kind: d.kind, correlationId }), { reason: `${d.kind} at the target (${fields}); reconcile run ${runId}` });
        report.repaired++;
        o.metrics?.repairs.inc({ connector: connector.name, kind: d.kind });
      }
    } else {
      report.flagged++;
      o.metrics?.flagged.inc({ connector: connector.name, kind: d.kind });
    }
    report.items++;
    await store.saveItem({ ...redact(d, personal), id: itemId(runId, d.target), runId, connector: connector.name, entity, decision });
  }

  // every target key the sources explain: what the target listing is checked against (8 B a key)
  const expectedKeys = new KeyHashes();
  const seenTypes = new Set<string>(report.checkpoint?.types ?? []);
  try {
    // phase 1: each source entity's expected record against the target; the next page is read meanwhile
    const start = checkpoint();
    const sources = new Set(connector.subscribes.map((s) => s.source));
    const onlySource = sources.size === 1 && !sources.has(undefined) ? [...sources][0] : undefined;
    for await (const page of prefetched(readProjectionPages(bus, { afterSeq: 0, pageSize, source: onlySource }))) {
      o.signal?.throwIfAborted();
      const byType = new Map<string, Expected[]>();
      for (const { entry, seq } of page.entries) {
        for (const cmd of expectedCommands(connector, entry, runId, o.schemas)) {
          expectedKeys.add(targetKey(cmd.target));
          seenTypes.add(cmd.target.type);
          // before the checkpoint: compared already by the run this one resumes; only its keys are needed
          if (start.phase === 'projection' && seq > start.afterSeq) {
            const list = byType.get(cmd.target.type) ?? [];
            list.push({ cmd, entry });
            byType.set(cmd.target.type, list);
          }
        }
      }
      if (start.phase !== 'projection' || page.lastSeq <= start.afterSeq) continue;
      for (const [type, items] of byType) {
        const verdict = await comparePage(type, items, reader, settled);
        report.inFlight = (report.inFlight ?? 0) + verdict.inFlight;
        if (verdict.inFlight) o.metrics?.inFlight.inc({ connector: connector.name }, verdict.inFlight);
        for (const { d, cmd, entry } of verdict.differences) await record(d, { source: entry.source, ...entry.entity }, { cmd, entry });
      }
      report.checked += page.entries.length;
      report.checkpoint = { phase: 'projection', afterSeq: page.lastSeq, types: [...seenTypes] };
      o.metrics?.checked.inc({ connector: connector.name }, page.entries.length);
      await store.saveRun(report);
      o.onProgress?.(report);
    }

    // phase 2: what the target holds that no source explains
    if (reader.list) {
      const tables = 'tables' in delivery.settings ? Object.keys(delivery.settings.tables as object) : [];
      const cp = checkpoint();
      const types = cp.phase === 'target' ? cp.types : [...new Set([...seenTypes, ...tables])].sort();
      let after = cp.phase === 'target' ? cp.after : undefined;
      for (const [i, type] of types.entries()) {
        for (;;) {
          o.signal?.throwIfAborted();
          const page = await reader.list(type, { after, limit: pageSize });
          for (const r of page.records) if (!expectedKeys.has(targetKey(r.key))) await record(unknownRecord(r), undefined);
          report.listed += page.records.length;
          after = page.next;
          report.checkpoint = after === undefined ? { phase: 'target', afterSeq: 0, types: types.slice(i + 1) } : { phase: 'target', afterSeq: 0, types: types.slice(i), after };
          await store.saveRun(report);
          o.onProgress?.(report);
          if (after === undefined) break;
        }
      }
    }
    // the final counts come from the items: a page done twice (resumed after a crash) counts once
    Object.assign(report, { counts: emptyCounts(), repaired: 0, flagged: 0, items: 0 });
    for await (const i of store.items(runId)) {
      report.counts[i.kind]++;
      report.items++;
      if (i.decision === 'flagged') report.flagged++;
      else if (i.decision === 'repaired') report.repaired++;
    }
    report.status = 'done';
    report.endedAt = new Date().toISOString();
    report.checkpoint = undefined;
    await store.saveRun(report);
    if (!dryRun) o.metrics?.lastSuccess.set({ connector: connector.name }, Math.floor(Date.now() / 1000));
    bus.audit({ stage: 'reconcile', outcome: dryRun ? 'dry-run-done' : 'run-done', correlationId: runId, connector: connector.name,
      details: { checked: report.checked, listed: report.listed, ...report.counts, inFlight: report.inFlight, repaired: report.repaired, flagged: report.flagged } });
    log.info({ checked: report.checked, listed: report.listed, counts: report.counts, inFlight: report.inFlight, repaired: report.repaired, flagged: report.flagged }, 'reconcile done');
    return report;
  } catch (err) {
    if (o.signal?.aborted) {
      log.warn({ checkpoint: report.checkpoint }, 'reconcile stopped; it resumes from its checkpoint');
      return report; // still `running`: the next holder resumes it
    }
    report.status = 'failed';
    report.error = (err as Error).message;
    report.endedAt = new Date().toISOString();
    await store.saveRun(report).catch(() => undefined);
    log.error({ err }, 'reconcile failed; the next run starts again');
    throw err;
  }
}
