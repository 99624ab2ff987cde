import { randomBytes } from 'node:crypto';
import type { Bus } from '@bus/bus';
import { kvToken } from '@bus/streams';
import type { KV } from '@nats-io/kv';
import type { Difference, DifferenceKind } from './differences.js';

export type Decision = 'repaired' | 'would-repair' | 'flagged';
export type Resolution = 'source' | 'target' | 'ignore';

/** One difference in a run's report, with what was decided about it. */
export interface ReportItem extends Difference {
  id: string;
  runId: string;
  connector: string;
  /** The source entity the expected record comes from (absent for unknown-to-source). */
  entity?: { source: string; type: string; id: string };
  decision: Decision;
  resolution?: { as: Resolution; by: string; at: string };
}

export type RunStatus = 'running' | 'done' | 'failed';

/** Where a run is, so another process can go on from there after a crash. */
export interface Checkpoint {
  phase: 'projection' | 'target';
  /** Projection phase: the projection bucket's stream sequence reached. */
  afterSeq: number;
  /** Target phase: the target types still to list, the first one from `after`. */
  types: string[];
  after?: string;
}

export interface RunReport {
  runId: string;
  connector: string;
  dryRun: boolean;
  status: RunStatus;
  startedAt: string;
  endedAt?: string;
  /** Who is running it (process), and how many times it was resumed. */
  holder: string;
  resumed: number;
  /** Source entities compared, target records listed. */
  checked: number;
  listed: number;
  counts: Record<DifferenceKind, number>;
  /**
   * Target records not judged because the bus still had work on its way for their entity
   * (settled rule): neither missing nor stale, left for the next run. Absent in runs from
   * before the rule.
   */
  inFlight?: number;
  repaired: number;
  flagged: number;
  /** Report items written so far. */
  items: number;
  checkpoint?: Checkpoint;
  error?: string;
}

export const newRunId = () => `r${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
/** A report item's id: `<runId>.<target type>.<target id>` as KV tokens, readable on the command line. */
export const itemId = (runId: string, t: { type: string; id: string }) => `${runId}.${kvToken(t.type)}.${kvToken(t.id)}`;

/**
 * Reports in the `bus_reconcile` bucket: `run.<runId>` (summary and checkpoint),
 * `item.<runId>.<type>.<id>` (each difference), `last.<connector>` (the newest run), and
 * `settled.<connector>.<target>` (what a person decided, so the same flag is not raised again).
 */
export function reportStore(bus: Bus) {
  let kv: Promise<KV> | undefined;
  const bucket = () => (kv ??= bus.kv(bus.names.kv.reconcile));
  const getJson = async <T>(key: string): Promise<T | undefined> => {
    const e = await (await bucket()).get(key);
    return e?.operation === 'PUT' && e.value.length ? (e.json() as T) : undefined;
  };
  const settledKey = (connector: string, t: { type: string; id: string }) => `settled.${connector}.${kvToken(`${t.type}/${t.id}`)}`;
  return {
    /** `first`: also make it the connector's newest run (once per run, not per page). */
    async saveRun(r: RunReport, first = false): Promise<void> {
      await (await bucket()).put(`run.${r.runId}`, JSON.stringify(r));
      if (first) await (await bucket()).put(`last.${r.connector}`, JSON.stringify(r.runId));
    },
    readRun: (runId: string) => getJson<RunReport>(`run.${runId}`),
    async lastRun(connector: string): Promise<RunReport | undefined> {
      const runId = await getJson<string>(`last.${connector}`);
      return runId ? getJson<RunReport>(`run.${runId}`) : undefined;
    },
    /** Keyed by run and record: a page done again after a crash rewrites its items, never adds them twice. */
    async saveItem(item: ReportItem): Promise<void> {
      await (await bucket()).put(`item.${item.id}`, JSON.stringify(item));
    },
    /** A run's items, by target type and id. */
    async *items(runId: string): AsyncGenerator<ReportItem> {
      const keys: string[] = [];
      for await (const k of await (await bucket()).keys(`item.${runId}.>`)) keys.push(k);
      for (const k of keys.sort()) {
        const item = await getJson<ReportItem>(k);
        if (item) yield item;
      }
    },
    async item(itemId: string): Promise<{ item: ReportItem; key: string } | undefined> {
      if (!/^r[a-z0-9]+\.[-_=a-zA-Z0-9]+\.[-_=a-zA-Z0-9]+$/.test(itemId)) return undefined;
      const key = `item.${itemId}`;
      const item = await getJson<ReportItem>(key);
      return item && { item, key };
    },
    async saveResolvedItem(key: string, item: ReportItem): Promise<void> {
      await (await bucket()).put(key, JSON.stringify(item));
      await (await bucket()).put(settledKey(item.connector, item.target), JSON.stringify({ as: item.resolution?.as, sourceVersion: item.sourceVersion, targetVersion: item.targetVersion }));
    },
    /** Whether a person already settled this difference, for these versions: then it is not flagged again. */
    async settled(connector: string, d: Difference): Promise<boolean> {
      const s = await getJson<{ as: Resolution; sourceVersion?: number; targetVersion?: number }>(settledKey(connector, d.target));
      return s !== undefined && s.as !== 'source' && s.sourceVersion === d.sourceVersion && s.targetVersion === d.targetVersion;
    },
    async runs(connector?: string): Promise<RunReport[]> {
      const out: RunReport[] = [];
      for await (const k of await (await bucket()).keys('run.*')) {
        const r = await getJson<RunReport>(k);
        if (r && (!connector || r.connector === connector)) out.push(r);
      }
      return out.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
    },
  };
}
export type ReportStore = ReturnType<typeof reportStore>;
