import type { Bus } from '@bus/bus';
import { newCorrelationId } from '@bus/envelope';
import { BusError, describeError } from '@bus/errors';
import { acquireLease, type Lease } from '@bus/lease';
import type { Logger } from '@bus/observability';
import type { Registry } from 'prom-client';
import { readCheckpoint, sourceLeaseKey, writeCheckpoint } from './checkpoint.js';
import type { Intake } from './intake.js';
import { type PollMetrics, pollMetricsFor } from './poll-metrics.js';
import type { AnySource, ChangesPage, SourceChanges } from './source.js';
import { createSourceClient } from './source-api.js';

/** Options for {@link pollSourceChanges}. */
export interface PollSourceOptions {
  /** Required. Its `bus_leases` and `bus_reconcile` buckets hold the lease and the checkpoint. */
  bus: Bus;
  /** Required. An intake that knows the source (`webhooks: false` is enough: nothing is verified). */
  intake: Intake;
  /** Required. The source (its name, or its definition) with `changes`. */
  source: string | AnySource;
  /** Required. What `changes.list` reads its API key and base URL from. */
  env: NodeJS.ProcessEnv;
  log: Logger;
  /** Stops the run between items and pages (shutdown); the checkpoint stays at the last stored page. */
  signal?: AbortSignal;
  /** List and check dedup only: nothing stored, no checkpoint moved, no lease, no audit, no metrics. Default false. */
  dryRun?: boolean;
  /** Passed to `changes.list` as `ctx.fetch`. Default the global fetch. */
  fetchFn?: typeof fetch;
  /** Where the `source_poll_*` metrics go (registered once per registry). Default none. */
  registry?: Registry;
  /** The lease `source.<name>`'s ttl: another poller takes over this long after this one died. Default 30 000 ms. */
  leaseTtlMs?: number;
  /** Lease holder name. Default `<hostname>:<pid>:<random>`. */
  holder?: string;
  /** Pages in one run at most; the next run goes on from the checkpoint. Default 1000. */
  maxPages?: number;
  /** Time for one `changes.list` call. Default 30 000 ms. */
  pageTimeoutMs?: number;
  /** Correlation id of the run's audit record and log lines. Default a new id. */
  runId?: string;
}

/** completed: up to `more: false` (or maxPages); busy: another poller holds the lease; skipped: `requiredEnv` unset; failed/aborted: stopped, checkpoint after the last stored page. */
export type PollOutcome = 'completed' | 'busy' | 'skipped' | 'failed' | 'aborted';

export interface PollResult {
  runId: string;
  source: string;
  outcome: PollOutcome;
  dryRun: boolean;
  /** Items the listing returned. */
  listed: number;
  /** Stored as new events (dry run: would be stored). */
  stored: number;
  /** Already in the bus: the webhook did arrive (or an earlier poll stored it). */
  duplicates: number;
  /** Failing the source's schema: kept in the DLQ (dry run: would be). */
  quarantined: number;
  /** Pages fully handled. */
  pages: number;
  /** The checkpoint at the start; undefined on the first run. */
  from?: string;
  /** The checkpoint now stored (dry run: the one it would have reached). */
  checkpoint?: string;
  /** True when maxPages stopped the run before the listing said `more: false`. */
  more: boolean;
  /** Why it was busy, skipped, failed or aborted. */
  reason?: string;
  startedAt: string;
  finishedAt: string;
}

function sourceOf(intake: Intake, source: string | AnySource): AnySource & { changes: SourceChanges } {
  const name = typeof source === 'string' ? source : source.name;
  const known = intake.sources.get(name);
  if (!known) throw new BusError('SOURCE_UNKNOWN', 'permanent', `no source is named "${name}" in this intake. Known: ${[...intake.sources.keys()].join(', ')}`);
  if (!known.changes) throw new BusError('SOURCE_NO_CHANGES', 'permanent', `source "${name}" declares no changes listing; only sources with changes can be polled`);
  return known as AnySource & { changes: SourceChanges };
}

function checkPage(name: string, page: unknown, previous: string | undefined): ChangesPage {
  const p = page as ChangesPage;
  const problems: string[] = [];
  if (!Array.isArray(p?.items)) problems.push('items must be an array');
  if (typeof p?.checkpoint !== 'string') problems.push('checkpoint must be a string');
  if (typeof p?.more !== 'boolean') problems.push('more must be a boolean');
  if (!problems.length && p.more && p.checkpoint === previous) problems.push(`more is true but the checkpoint did not move from "${previous}": the listing would loop`);
  if (problems.length) throw new BusError('SOURCE_CHANGES_INVALID', 'permanent', `source "${name}": changes.list returned a bad page: ${problems.join('; ')}. Fix the source's changes.list`);
  return p;
}

/**
 * Finds what a source sent that the bus never stored: takes the lease `source.<name>`,
 * pages through `changes.list` from the checkpoint in `bus_reconcile`
 * (`source.<name>.checkpoint`), puts each item through `intake.receiveListed` (the ingest
 * pipeline, same event ids, so anything already stored is a duplicate), and moves the
 * checkpoint only after a whole page is stored. Never throws for a failed run: the result
 * says what happened (`outcome`, `reason`); throws only for a caller's mistake (unknown source, no `changes`).
 */
export async function pollSourceChanges(o: PollSourceOptions): Promise<PollResult> {
  const source = sourceOf(o.intake, o.source);
  const runId = o.runId ?? newCorrelationId();
  const dryRun = o.dryRun === true;
  const log = o.log.child({ source: source.name, runId, ...(dryRun ? { dryRun } : {}) });
  const metrics = dryRun || !o.registry ? undefined : pollMetricsFor(o.registry);
  const r: PollResult = {
    runId, source: source.name, outcome: 'completed', dryRun, listed: 0, stored: 0, duplicates: 0, quarantined: 0, pages: 0, more: false,
    startedAt: new Date().toISOString(), finishedAt: '',
  };
  const finish = (outcome: PollOutcome, reason?: string): PollResult => {
    Object.assign(r, { outcome, finishedAt: new Date().toISOString() }, reason ? { reason } : {});
    metrics?.runs.inc({ source: source.name, outcome });
    if (outcome === 'completed') metrics?.lastSuccess.set({ source: source.name }, Date.now() / 1000);
    return r;
  };

  const missing = (source.changes.requiredEnv ?? []).filter((v) => !o.env[v]?.trim());
  if (missing.length) {
    log.info({ missing }, `source changes not polled: set ${missing.join(', ')} to list ${source.name}'s changes`);
    return finish('skipped', `${missing.join(', ')} unset`);
  }

  let lease: Lease | undefined;
  if (!dryRun) {
    try {
      lease = await acquireLease({ kv: await o.bus.kv(o.bus.names.kv.leases), key: sourceLeaseKey(source.name), ttlMs: o.leaseTtlMs ?? 30_000, holder: o.holder, data: { runId }, log });
    } catch (err) {
      log.warn({ err: describeError(err) }, 'source poll not started: the lease could not be read');
      return finish('failed', (err as Error).message);
    }
    if (!lease) {
      log.debug('source poll skipped: another poller holds the lease');
      return finish('busy', `another poller holds the lease ${sourceLeaseKey(source.name)}`);
    }
  }
  const signal = AbortSignal.any([o.signal, lease?.lost].filter((s): s is AbortSignal => s !== undefined));
  try {
    await run();
    return finish('completed');
  } catch (err) {
    const aborted = signal.aborted;
    const reason = aborted ? ((signal.reason as Error)?.message ?? String(signal.reason)) : (err as Error).message;
    log[aborted ? 'info' : 'warn']({ err: describeError(err), pages: r.pages, checkpoint: r.checkpoint }, aborted
      ? 'source poll stopped; the checkpoint is after the last stored page'
      : 'source poll failed; the checkpoint is after the last stored page and the next run resumes there');
    return finish(aborted ? 'aborted' : 'failed', reason);
  } finally {
    await lease?.release();
    if (!dryRun) {
      const { runId: _, source: __, ...counts } = r;
      o.bus.audit({
        stage: 'reconcile', outcome: r.outcome === 'completed' ? 'source-polled' : `source-poll-${r.outcome}`,
        correlationId: runId, source: source.name, ...(r.reason ? { reason: r.reason } : {}), details: { ...counts, token: lease?.token },
      });
    }
  }

  async function run(): Promise<void> {
    const kv = await o.bus.kv(o.bus.names.kv.reconcile);
    const saved = await readCheckpoint(kv, source.name);
    let revision = saved.revision;
    r.from = r.checkpoint = saved.checkpoint;
    const limit = source.changes.pageSize ?? 100;
    // the source's one client: the listing goes at the same pace, with the same auth and failure classes, as refetch
    const client = source.api ? createSourceClient(source.name, source.api, o.env, o.fetchFn ?? fetch) : undefined;
    for (let page = 0; page < (o.maxPages ?? 1000); page++) {
      signal.throwIfAborted();
      const got = checkPage(source.name, await source.changes.list(r.checkpoint, {
        env: o.env, fetch: o.fetchFn ?? fetch, signal: AbortSignal.any([signal, AbortSignal.timeout(o.pageTimeoutMs ?? 30_000)]), limit, ...(client ? { client } : {}),
      }), r.checkpoint);
      const counts = { stored: 0, duplicates: 0, quarantined: 0 };
      for (const item of got.items) {
        signal.throwIfAborted();
        const answer = await o.intake.receiveListed(source.name, item, { dryRun, runId });
        const status = answer.body.status;
        if (status === 'stored' || status === 'would-store') counts.stored++;
        else if (status === 'duplicate') counts.duplicates++;
        else if (status === 'quarantined' || status === 'would-quarantine') counts.quarantined++;
        else {
          throw new BusError('SOURCE_POLL_NOT_STORED', answer.status === 503 ? 'transient' : 'permanent',
            `a listed ${source.name} item was not stored (${answer.status} ${String(answer.body.title ?? answer.body.status ?? '')}); the page is retried on the next run`);
        }
      }
      // the whole page is stored: only now may the checkpoint pass it (a crash before this re-lists the page; dedup absorbs it)
      if (!dryRun) {
        if (lease && !lease.held()) throw new BusError('LEASE_LOST', 'transient', `lost the lease ${lease.key} before the checkpoint could move`);
        revision = await writeCheckpoint(kv, source.name, { checkpoint: got.checkpoint, runId, updatedAt: new Date().toISOString() }, revision);
      }
      r.checkpoint = got.checkpoint;
      r.pages++;
      r.listed += got.items.length;
      r.stored += counts.stored;
      r.duplicates += counts.duplicates;
      r.quarantined += counts.quarantined;
      record(metrics, source.name, got.items.length, counts);
      log.info({ page: r.pages, items: got.items.length, ...counts, checkpoint: got.checkpoint, more: got.more },
        dryRun ? 'source page listed (dry run: nothing stored)' : 'source page stored; checkpoint moved');
      if (!got.more) return;
    }
    r.more = true;
  }
}

function record(m: PollMetrics | undefined, source: string, listed: number, c: { stored: number; duplicates: number; quarantined: number }): void {
  if (!m) return;
  m.pages.inc({ source });
  m.items.inc({ source, result: 'listed' }, listed);
  m.items.inc({ source, result: 'stored' }, c.stored);
  m.items.inc({ source, result: 'duplicate' }, c.duplicates);
  m.items.inc({ source, result: 'quarantined' }, c.quarantined);
}
