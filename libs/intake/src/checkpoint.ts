import { BusError } from '@bus/errors';
import { isCasConflict } from '@bus/lease';
import type { KV } from '@nats-io/kv';

/** Where a source's listing stands, in `bus_reconcile` under {@link sourceCheckpointKey}. */
export interface SourceCheckpoint {
  /** Opaque to the bus: what the source's `changes.list` returned with its last stored page. */
  checkpoint: string;
  /** The poll run that stored that page. */
  runId: string;
  updatedAt: string;
}

/** `source.<name>.checkpoint` in the reconcile bucket. */
export const sourceCheckpointKey = (source: string) => `source.${source}.checkpoint`;
/** `source.<name>` in the leases bucket: one poller per source at a time. */
export const sourceLeaseKey = (source: string) => `source.${source}`;

/** The stored checkpoint (undefined before the first stored page) and the revision to compare-and-set from (0: none). */
export async function readCheckpoint(kv: KV, source: string): Promise<Partial<SourceCheckpoint> & { revision: number }> {
  const e = await kv.get(sourceCheckpointKey(source));
  if (!e || e.operation !== 'PUT' || e.length === 0) return { revision: e?.revision ?? 0 };
  return { ...(e.json() as SourceCheckpoint), revision: e.revision };
}

/**
 * Moves the checkpoint by compare-and-set from `revision`: if anything else moved it since
 * this run read it (a poller that lost its lease and did not notice), this run stops
 * instead of writing over it.
 */
export async function writeCheckpoint(kv: KV, source: string, value: SourceCheckpoint, revision: number): Promise<number> {
  const key = sourceCheckpointKey(source);
  try {
    return revision === 0 ? await kv.create(key, JSON.stringify(value)) : await kv.update(key, JSON.stringify(value), revision);
  } catch (err) {
    if (isCasConflict(err)) {
      throw new BusError('SOURCE_CHECKPOINT_MOVED', 'transient',
        `the ${source} checkpoint was moved by another poller during this run; this run stops, the next one starts from the stored checkpoint`, { cause: err });
    }
    throw err;
  }
}
