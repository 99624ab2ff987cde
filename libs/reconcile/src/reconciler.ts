import { hostname } from 'node:os';
import type { Bus } from '@bus/bus';
import type { SchemaRegistry } from '@bus/connectors';
import type { ResolvedDelivery } from '@bus/delivery';
import { acquireLease } from '@bus/lease';
import type { Logger } from '@bus/observability';
import type { ReconcileMetrics } from './metrics.js';
import { newRunId, reportStore } from './report.js';
import { runReconcile } from './run.js';

export interface ReconcilerOptions {
  bus: Bus;
  /** The connectors to reconcile (those whose target can look records up). */
  deliveries: ResolvedDelivery[];
  log: Logger;
  metrics?: ReconcileMetrics;
  /** The event schemas transform validates with (see runReconcile). */
  schemas?: SchemaRegistry;
  /** Seconds between scheduled runs of each connector; 0 = only on request. */
  everySec: number;
  /** How long a dead holder's lease keeps others out. Default 30 000 ms. */
  leaseTtlMs?: number;
  pageSize?: number;
  personalFields?: string[];
  readRatePerSec?: number;
  holder?: string;
}

export type RunRequest = { connector: string; dryRun?: boolean };
export type RunAnswer = { runId: string; resumed: boolean } | { error: string };

/** A failure's stable code for logs and the metric's label: the BusError code, a NATS error's code, or its class name. */
function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' || typeof code === 'number') return String(code);
  return err instanceof Error ? err.name : 'UNKNOWN';
}

/**
 * Runs reconcile for each connector on a schedule and on request (`bus reconcile run`),
 * one run per connector across every process: a KV lease, renewed while the run goes,
 * that frees itself if the holder dies. A run found unfinished (its holder died) is
 * resumed from its checkpoint rather than started again.
 *
 * A failure never leaves this function as a rejection nobody handles: this process also hosts
 * the live projector. Whether a run cannot start (NATS or the lease unavailable) or fails on
 * the way, it is logged at error with its run id and code and counted in
 * reconcile_runs_failed_total{connector,code}; a scheduled run is simply tried at the next tick.
 */
export function createReconciler(o: ReconcilerOptions) {
  const holder = o.holder ?? `${hostname()}:${process.pid}`;
  const stopping = new AbortController();
  const active = new Map<string, Promise<unknown>>();
  const timers: NodeJS.Timeout[] = [];
  const store = reportStore(o.bus);

  const failed = (err: unknown, connector: string, runId: string, msg: string) => {
    const code = codeOf(err);
    o.metrics?.runsFailed.inc({ connector, code });
    o.log.error({ err, connector, runId, code }, msg);
  };

  /**
   * Starts a run (`runId` unless an unfinished one is resumed) and answers at once; the run goes
   * on in the background and handles its own failure. Rejects only when it could not start (NATS or
   * the lease store unavailable); the caller handles that.
   */
  async function start(req: RunRequest, fresh: string): Promise<RunAnswer> {
    const delivery = o.deliveries.find((d) => d.connector.name === req.connector);
    if (!delivery) return { error: `no connector "${req.connector}" to reconcile here (known: ${o.deliveries.map((d) => d.connector.name).join(', ') || 'none'})` };
    if (active.has(req.connector)) return { error: `${req.connector} is being reconciled by this process already` };
    const lease = await acquireLease({ kv: await o.bus.kv(o.bus.names.kv.leases), key: `reconcile.${req.connector}`, holder, ttlMs: o.leaseTtlMs ?? 30_000, log: o.log });
    if (!lease) return { error: `${req.connector} is being reconciled by another process; see bus reconcile report` };
    // a failed read must not keep the lease for its ttl: the next tick would find the connector busy
    const last = await store.lastRun(req.connector).catch(async (err: unknown) => {
      await lease.release();
      throw err;
    });
    // the last run never finished and nobody holds it: its holder died mid-run; go on with it (a dry one only as dry)
    const resume = last?.status === 'running' && last.dryRun === (req.dryRun ?? false) ? last : undefined;
    const runId = resume?.runId ?? fresh;
    const signal = AbortSignal.any([lease.lost, stopping.signal]);
    const run = runReconcile({ bus: o.bus, delivery, log: o.log, metrics: o.metrics, schemas: o.schemas, dryRun: req.dryRun, runId, resume, holder, signal,
      pageSize: o.pageSize, personalFields: o.personalFields, readRatePerSec: o.readRatePerSec })
      .catch((err: unknown) => failed(err, req.connector, runId, 'reconcile run failed; the next scheduled run or request tries again'))
      .finally(async () => {
        active.delete(req.connector);
        // release never throws (its contract); guarded all the same: a rejection here would have no handler
        await lease.release().catch((err: unknown) => o.log.warn({ err, connector: req.connector, runId }, 'reconcile lease not released; it expires by itself'));
      });
    active.set(req.connector, run);
    return { runId, resumed: resume !== undefined };
  }

  /** Starts a run of `req.connector` (see start); a start that fails is logged and counted, and rethrown. */
  async function runNow(req: RunRequest): Promise<RunAnswer> {
    const runId = newRunId();
    try {
      return await start(req, runId);
    } catch (err) {
      failed(err, req.connector, runId, 'reconcile run could not start; the next scheduled run or request tries again');
      throw err;
    }
  }

  // one scheduled attempt per connector at a time: while NATS is away each start waits for its
  // request timeout, and ticks must not pile up behind it
  const ticking = new Map<string, Promise<void>>();
  const tick = (connector: string) => {
    if (ticking.has(connector)) return;
    const t = runNow({ connector })
      .then((a) => {
        if ('error' in a) o.log.debug({ connector }, a.error); // busy elsewhere, or here: not a failure
      }, () => undefined) // logged and counted by runNow; the next tick tries again
      .finally(() => ticking.delete(connector));
    ticking.set(connector, t);
  };

  return {
    runNow,
    /** Answers run requests and starts the schedule. */
    async start(): Promise<{ stop(): Promise<void> }> {
      const sub = o.bus.nc.subscribe(o.bus.names.subjects.reconcileRun, {
        queue: 'reconcile',
        callback: (err, msg) => {
          if (err) return;
          let req: RunRequest;
          try {
            req = msg.json<RunRequest>();
          } catch {
            msg.respond(JSON.stringify({ error: 'the request must be JSON: {"connector": "...", "dryRun": false}' }));
            return;
          }
          runNow(req).then((a) => msg.respond(JSON.stringify(a)), (e: Error) => msg.respond(JSON.stringify({ error: e.message })));
        },
      });
      if (o.everySec > 0) {
        for (const d of o.deliveries) {
          // first run soon after start (an unfinished one is resumed), then on the schedule
          timers.push(setTimeout(() => tick(d.connector.name), 1_000).unref(), setInterval(() => tick(d.connector.name), o.everySec * 1_000).unref());
        }
      }
      return {
        async stop() {
          for (const t of timers) clearTimeout(t);
          sub.unsubscribe();
          stopping.abort();
          await Promise.allSettled([...ticking.values(), ...active.values()]);
        },
      };
    },
  };
}
export type Reconciler = ReturnType<typeof createReconciler>;
