import type { Bus } from '@bus/bus';
import { BusError } from '@bus/errors';
import type { ReportItem, RunAnswer, RunReport } from '@bus/reconcile';

// reconcile and the catalog pull in every target kind: loaded when a reconcile call is made, so
// the commands and pages that do not need them start fast
const reconcileLib = () => import('@bus/reconcile');

/** Asks a running reconcile service to start a run now (one per connector across all processes). */
export async function requestRun(bus: Bus, connector: string, dryRun: boolean): Promise<RunAnswer> {
  const answer = await bus.nc.request(bus.names.subjects.reconcileRun, JSON.stringify({ connector, dryRun }), { timeout: 10_000 }).catch((err: Error) => {
    throw new BusError('CLI_NO_RECONCILE', 'transient', `no reconcile service answered (${err.message}); is it running (npm start runs one)?`, { cause: err });
  });
  return answer.json<RunAnswer>();
}

/** Every run (newest first), of one connector when given. */
export async function reconcileRuns(bus: Bus, connector?: string): Promise<RunReport[]> {
  return (await reconcileLib()).reportStore(bus).runs(connector);
}

/** One run and every difference it found; undefined when there is no such run. */
export async function reconcileRun(bus: Bus, runId: string, limit = Number.POSITIVE_INFINITY): Promise<{ run: RunReport; items: ReportItem[] } | undefined> {
  const store = (await reconcileLib()).reportStore(bus);
  const run = await store.readRun(runId);
  if (!run) return undefined;
  const items: ReportItem[] = [];
  for await (const i of store.items(runId)) {
    items.push(i);
    if (items.length >= limit) break;
  }
  return { run, items };
}

/** The differences a run counted, as `missing 2, stale 1` (or `none`). */
export function differencesOf(r: RunReport): string {
  return Object.entries(r.counts).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
}

export const RESOLUTIONS = ['source', 'target', 'ignore'] as const;
export type Resolution = (typeof RESOLUTIONS)[number];

/** Settles a flagged difference (audited by resolveItem, with `by`) with the catalog the services run. */
export async function resolveDifference(bus: Bus, itemId: string, as: Resolution, by: string): Promise<ReportItem> {
  if (!(RESOLUTIONS as readonly string[]).includes(as)) throw new BusError('CLI_USAGE', 'business', `resolve as one of ${RESOLUTIONS.join(', ')}, not "${as}"`);
  const { connectors, schemas } = await (await import('@bus/catalog')).loadCatalog(); // the demo, or BUS_CATALOG's: the one the services run
  return (await reconcileLib()).resolveItem({ bus, connectors, schemas, itemId, as, by });
}
