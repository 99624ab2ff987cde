import type { Bus } from '@bus/bus';
import { BusError } from '@bus/errors';
import { acquireLease, type LeaseRecord } from '@bus/lease';
import type { Logger } from '@bus/observability';

const KEY = 'projection.rebuild';

/**
 * One rebuild at a time across every process (@bus/lease: a dead holder's lease is taken
 * over after 30 s). Refused at once, naming the holder, when another rebuild runs.
 */
export async function takeRebuildLease(bus: Bus, log: Logger) {
  const kv = await bus.kv(bus.names.kv.leases);
  const lease = await acquireLease({ kv, key: KEY, ttlMs: 30_000, log });
  if (lease) return lease;
  const e = await kv.get(KEY).catch(() => null);
  const held = e?.operation === 'PUT' ? (e.json() as Partial<LeaseRecord>) : undefined;
  throw new BusError('PROJECTION_REBUILD_BUSY', 'transient',
    `another projection rebuild is running (${held?.holder ? `${held.holder}, since ${held.acquiredAt}` : 'holder unknown'}). ` +
    'Wait for it to finish; if that process died, its lease frees itself within 30 s: run the command again then');
}
