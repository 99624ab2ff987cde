import type { Bus } from '@bus/bus';
import type { DeliveryCommand, SchemaRegistry } from '@bus/connectors';
import { oauthFor, type ResolvedDelivery, TargetReadError, type TargetRecord } from '@bus/delivery';
import { encode } from '@bus/envelope';
import type { Logger } from '@bus/observability';
import { readProjectionPages } from '@bus/projection';
import { createRateLimiter, type RateLimiter } from '@bus/ratelimit';
import { compareRecord, type Difference, DIFFERENCE_KINDS, redact, SAFE_KINDS, unknownRecord } from './differences.js';
import { expectedCommands, repairCommand, targetKey } from './expected.js';
import type { ReconcileMetrics } from './metrics.js';
import { type Checkpoint, itemId, newRunId, type ReportItem, type ReportStore, reportStore, type RunReport } from './report.js';

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
  onProgress?: (r: RunReport) => void;
}

const emptyCounts = () => Object.fromEntries(DIFFERENCE_KINDS.map((k) => [k, 0])) as RunReport['counts'];

/**
 * One reconcile run of one connector: the projection (what the sources said) against the
 * target, page by page. Safe differences (missing, stale) are repaired by publishing repair
 * commands to DELIVERIES — so ordering, idempotency keys, rate limits and audit all apply —
 * the rest are flagged for a person. Every difference is a report item; the run's checkpoint
 * moves after each page, so a crashed run is resumed, not restarted.
 */
export async function runReconcile(o: ReconcileOptions): Promise<RunReport> {
  const { bus, delivery } = o;
  const connector = delivery.connector;
  const target = delivery.target;
  const store: ReportStore = reportStore(bus);
  const pageSize = o.pageSize ?? 500;
  const personal = new Set(o.personalFields ?? []);
  if (!target.lookupMany && !target.lookup) {
    throw new Error(`connector "${connector.name}" cannot be reconciled: its ${target.kind} target cannot look records up (add a lookup to its delivery settings)`);
  }
  const readRate = o.readRatePerSec ?? (delivery.settings.rateLimit ? delivery.settings.rateLimit.ratePerSec / 2 : undefined);
  const limiter: RateLimiter | undefined = readRate ? createRateLimiter({ ratePerSec: readRate, burst: Math.max(1, Math.ceil(readRate)) }) : undefined;
  const timeoutMs = delivery.policyFor('').attemptTimeoutMs;

  const report: RunReport = o.resume
    ? { ...o.resume, status: 'running', resumed: o.resume.resumed + 1, holder: o.holder ?? o.resume.holder }
    : { runId: o.runId ?? newRunId(), connector: connector.name, dryRun: o.dryRun ?? false, status: 'running', startedAt: new Date().toISOString(), holder: o.holder ?? 'cli',
        resumed: 0, checked: 0, listed: 0, counts: emptyCounts(), repaired: 0, flagged: 0, items: 0, checkpoint: { phase: 'projection', afterSeq: 0, types: [] } };
  const runId = report.runId;
  const dryRun = report.dryRun;
  const log = o.log.child({ correlationId: runId, connector: connector.name, runId });
  const checkpoint = (): Checkpoint => report.checkpoint ?? { phase: 'projection', afterSeq: 0, types: [] };
  await store.saveRun(report, !o.resume);
  log.info({ dryRun, resumed: report.resumed, checkpoint: report.checkpoint }, report.resumed ? 'reconcile resumed from its checkpoint' : 'reconcile started');

  // a target behind OAuth2 is read with the connector's own token (shared with deliver through KV)
  const tokens = await oauthFor(bus, delivery);
  let rejected: string | undefined;
  /** One paced read at the target; a transient failure (429, 5xx, timeout) is tried again a few times before the run fails. */
  const read = async <T>(fn: (o: { timeoutMs: number; headers: Record<string, string> }) => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      await limiter?.take(o.signal);
      const token = tokens && (rejected ? await tokens.renew(rejected) : await tokens.token());
      try {
        return await fn({ timeoutMs, headers: token ? { authorization: `Bearer ${token}` } : {} });
      } catch (err) {
        // a refused token is renewed once (another process may have renewed it already)
        if (err instanceof TargetReadError && err.status === 401 && token && rejected !== token) {
          rejected = token;
          continue;
        }
        if (!(err instanceof TargetReadError) || err.failureClass !== 'transient' || attempt >= 5) throw err;
        limiter?.penalize();
        log.warn({ err: err.message, attempt }, 'a read at the target failed; trying again');
        await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
      }
    }
  };
  const lookupAll = async (type: string, ids: string[]): Promise<Map<string, TargetRecord>> => {
    const found = target.lookupMany
      ? await read((c) => target.lookupMany!(type, ids, c))
      : (await Promise.all(ids.map((id) => read((c) => target.lookup!({ type, id }, c))))).filter((r): r is TargetRecord => r !== undefined);
    return new Map(found.map((r) => [r.key.id, r]));
  };

  async function record(d: Difference, entity: ReportItem['entity'], repair?: DeliveryCommand): Promise<void> {
    if (!SAFE_KINDS.has(d.kind) && (await store.settled(connector.name, d))) return; // a person already decided this one
    report.counts[d.kind]++;
    o.metrics?.differences.inc({ connector: connector.name, kind: d.kind });
    let decision: ReportItem['decision'] = 'flagged';
    if (SAFE_KINDS.has(d.kind) && repair) {
      decision = dryRun ? 'would-repair' : 'repaired';
      if (!dryRun) {
        const cmd = repairCommand(repair, runId, d.kind);
        await bus.publish(bus.names.subjects.delivery(connector.name, cmd.target.type), encode(cmd), { msgId: cmd.id, headers: { 'Bus-Correlation-Id': runId } });
        bus.audit({ stage: 'reconcile', outcome: 'repair-sent', correlationId: runId, connector: connector.name, eventId: cmd.event.id, entity: cmd.entity, version: cmd.version,
          reason: `${d.kind} at the target (${d.fields.map((f) => f.field).join(', ') || 'whole record'})` });
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

  // every target key the sources explain: what the target listing is checked against. It grows
  // with the entities (~100 B each: 10 MB per 100,000); a set of 64-bit key hashes would be 8 B
  const expectedKeys = new Set<string>();
  const seenTypes = new Set<string>(report.checkpoint?.types ?? []);
  try {
    // phase 1: each source entity's expected record against the target
    const start = checkpoint();
    const sources = new Set(connector.subscribes.map((s) => s.source));
    const onlySource = sources.size === 1 && !sources.has(undefined) ? [...sources][0] : undefined;
    for await (const page of readProjectionPages(bus, { afterSeq: 0, pageSize, source: onlySource })) {
      o.signal?.throwIfAborted();
      const byType = new Map<string, Array<{ cmd: DeliveryCommand; entity: ReportItem['entity'] }>>();
      for (const { entry, seq } of page.entries) {
        for (const cmd of expectedCommands(connector, entry, runId, o.schemas)) {
          expectedKeys.add(targetKey(cmd.target));
          seenTypes.add(cmd.target.type);
          // before the checkpoint: compared already by the run this one resumes; only its keys are needed
          if (start.phase === 'projection' && seq > start.afterSeq) {
            const list = byType.get(cmd.target.type) ?? [];
            list.push({ cmd, entity: { source: entry.source, ...entry.entity } });
            byType.set(cmd.target.type, list);
          }
        }
      }
      if (start.phase !== 'projection' || page.lastSeq <= start.afterSeq) continue;
      for (const [type, items] of byType) {
        const actual = await lookupAll(type, items.map((i) => i.cmd.target.id));
        for (const { cmd, entity } of items) {
          const d = compareRecord(cmd, actual.get(cmd.target.id));
          if (d) await record(d, entity, cmd);
        }
      }
      report.checked += page.entries.length;
      report.checkpoint = { phase: 'projection', afterSeq: page.lastSeq, types: [...seenTypes] };
      o.metrics?.checked.inc({ connector: connector.name }, page.entries.length);
      await store.saveRun(report);
      o.onProgress?.(report);
    }

    // phase 2: what the target holds that no source explains
    if (target.list) {
      const tables = 'tables' in delivery.settings ? Object.keys(delivery.settings.tables as object) : [];
      const cp = checkpoint();
      const types = cp.phase === 'target' ? cp.types : [...new Set([...seenTypes, ...tables])].sort();
      let after = cp.phase === 'target' ? cp.after : undefined;
      for (const [i, type] of types.entries()) {
        for (;;) {
          o.signal?.throwIfAborted();
          const page = await read((c) => target.list!(type, { after, limit: pageSize }, c));
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
      details: { checked: report.checked, listed: report.listed, ...report.counts, repaired: report.repaired, flagged: report.flagged } });
    log.info({ checked: report.checked, listed: report.listed, counts: report.counts, repaired: report.repaired, flagged: report.flagged }, 'reconcile done');
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
