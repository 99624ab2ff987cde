import type { DeliveryCommand } from '@bus/connectors';
import type { ProjectedEntity } from '@bus/projection';
import { compareRecord, type Difference } from './differences.js';
import type { TargetReader } from './reads.js';
import type { SettledChecker } from './settled.js';

/** One expected target record and the projection entry it comes from. */
export interface Expected {
  cmd: DeliveryCommand;
  entry: ProjectedEntity;
}

/** What comparing one page of one target type found: settled differences, and how many records were in flight. */
export interface PageVerdict {
  differences: Array<Expected & { d: Difference }>;
  inFlight: number;
}

/** Runs `fn` over `xs`, `limit` at a time, keeping the order. */
async function mapLimit<T, R>(xs: T[], limit: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(xs.length);
  let next = 0;
  const worker = async () => {
    while (next < xs.length) {
      const i = next++;
      out[i] = await fn(xs[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, xs.length) }, worker));
  return out;
}

/**
 * One page of one target type against the target, under the settled rule (settled.ts): one
 * batched read for the page; then, for the few records that differ only, is anything of the
 * entity still on its way (upstream, DELIVERIES)? If so it is in flight:
 * neither missing nor stale, left for the next run. The quiet ones are read again (what the bus
 * delivered between the first read and the check shows now) and compared again. A target newer
 * than the projection is checked once more against the versions bucket: a version the bus
 * applied is the projection lagging behind deliver, in flight too.
 */
export async function comparePage(type: string, items: Expected[], reader: TargetReader, settled: SettledChecker): Promise<PageVerdict> {
  const first = await reader.lookupAll(type, items.map((i) => i.cmd.target.id));
  const differing = items.filter((i) => compareRecord(i.cmd, first.get(i.cmd.target.id)) !== undefined);
  if (differing.length === 0) return { differences: [], inFlight: 0 };
  const quiet = await mapLimit(differing, 16, (i) => settled.quiet(i.entry));
  const candidates = differing.filter((_, k) => quiet[k]);
  let inFlight = differing.length - candidates.length;
  if (candidates.length === 0) return { differences: [], inFlight };
  const again = await reader.lookupAll(type, candidates.map((i) => i.cmd.target.id));
  const still = candidates.flatMap((i) => {
    const d = compareRecord(i.cmd, again.get(i.cmd.target.id));
    return d ? [{ ...i, d }] : [];
  });
  const lagging = await mapLimit(still, 16, async ({ d, cmd }) =>
    d.kind === 'target-newer' && d.targetVersion !== undefined && (await settled.delivery(cmd.entity)).applied >= d.targetVersion);
  const differences = still.filter((_, k) => !lagging[k]);
  inFlight += still.length - differences.length;
  return { differences, inFlight };
}
