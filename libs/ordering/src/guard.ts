import { randomUUID } from 'node:crypto';
import { kvToken } from '@bus/streams';
import type { KV } from '@nats-io/kv';

/** strict: versions contiguous (gaps waited for); latest: only newer than applied; none: no ordering. */
export type OrderingMode = 'strict' | 'latest' | 'none';

/** What the guard keeps per (connector, entity) in the versions bucket. */
interface EntityState {
  /** Highest version applied at the target; 0 = none yet. */
  applied: number;
  /** The one command in flight for this entity, if any. */
  lease?: { version: number; holder: string; untilMs: number };
}

export type Begin =
  | { kind: 'go'; token: Token }
  | { kind: 'skip'; reason: 'stale' | 'duplicate'; applied: number }
  | { kind: 'wait'; reason: 'gap' | 'busy'; applied: number; delayMs: number }
  | { kind: 'gap-expired'; applied: number; missing: number[] };

/** Proof of holding an entity's lease; commit or abort it. */
export interface Token {
  key: string;
  version: number;
  revision: number;
  applied: number;
}

export interface GuardOptions {
  kv: KV;
  connector: string;
  mode: OrderingMode;
  /** How long a strict gap is waited for, from the command's first attempt. Default 60 000 ms. */
  gapWaitMs?: number;
  /** How long an entity lease lives if its holder dies mid-delivery (the entity waits that long). Default 60 000 ms; longer than an attempt. */
  leaseMs?: number;
  /** How soon to look again at a busy entity or a gap. Default 250 ms. */
  recheckMs?: number;
  /** Identifies this process (lease holder). Default a random id. */
  holder?: string;
  now?: () => number;
}

function keyOf(connector: string, entity: { type: string; id: string }): string {
  return `${connector}.${entity.type}.${kvToken(entity.id)}`;
}

/**
 * Per-entity ordering that holds across any number of processes: a command may go only
 * while its process holds the entity's lease (a compare-and-set on the KV revision), so two
 * commands for one entity are never in flight together; other entities are not affected.
 */
export function createOrderingGuard(o: GuardOptions) {
  const holder = o.holder ?? randomUUID();
  const now = o.now ?? Date.now;
  const leaseMs = o.leaseMs ?? 60_000;
  const recheckMs = o.recheckMs ?? 250;

  async function read(key: string): Promise<{ state: EntityState; revision: number }> {
    const e = await o.kv.get(key);
    if (e?.operation !== 'PUT' || e.value.length === 0) return { state: { applied: 0 }, revision: e?.revision ?? 0 };
    return { state: e.json() as EntityState, revision: e.revision };
  }

  async function write(key: string, state: EntityState, revision: number): Promise<number | undefined> {
    try {
      const data = JSON.stringify(state);
      return revision === 0 ? await o.kv.create(key, data) : await o.kv.update(key, data, revision);
    } catch {
      return undefined; // someone else wrote first: the caller looks again
    }
  }

  return {
    holder,
    /**
     * May `version` of `entity` go now? `firstSeenMs` is when this command was first tried
     * (bounds how long a strict gap is waited for).
     */
    async begin(entity: { type: string; id: string }, version: number, firstSeenMs: number, opts: { repair?: boolean } = {}): Promise<Begin> {
      const key = keyOf(o.connector, entity);
      for (let tries = 0; tries < 5; tries++) {
        const { state, revision } = await read(key);
        const { applied } = state;
        // a repair re-applies the source's latest state: the same version again, or past a gap; never an older one
        if (opts.repair && version < applied) return { kind: 'skip', reason: 'stale', applied };
        if (o.mode !== 'none' && !opts.repair) {
          if (version === applied) return { kind: 'skip', reason: 'duplicate', applied };
          if (version < applied) return { kind: 'skip', reason: 'stale', applied };
          if (o.mode === 'strict' && version > applied + 1) {
            if (now() - firstSeenMs > (o.gapWaitMs ?? 60_000)) {
              return { kind: 'gap-expired', applied, missing: Array.from({ length: Math.min(version - applied - 1, 20) }, (_, i) => applied + 1 + i) };
            }
            return { kind: 'wait', reason: 'gap', applied, delayMs: recheckMs };
          }
        }
        // any live lease means busy, ours included: two copies of one command may be in this very process
        const lease = state.lease;
        if (lease && lease.untilMs > now()) return { kind: 'wait', reason: 'busy', applied, delayMs: recheckMs };
        const next = await write(key, { applied, lease: { version, holder, untilMs: now() + leaseMs } }, revision);
        if (next !== undefined) return { kind: 'go', token: { key, version, revision: next, applied } };
      }
      return { kind: 'wait', reason: 'busy', applied: 0, delayMs: recheckMs };
    },
    /** The target applied it: record the version and free the entity. */
    async commit(t: Token): Promise<void> {
      const applied = Math.max(t.applied, t.version);
      if ((await write(t.key, { applied }, t.revision)) !== undefined) return;
      // the lease expired and someone took it meanwhile: never lower what they recorded
      const { state, revision } = await read(t.key);
      await write(t.key, { ...state, applied: Math.max(state.applied, applied) }, revision);
    },
    /** It did not happen: free the entity, applied unchanged. */
    async abort(t: Token): Promise<void> {
      await write(t.key, { applied: t.applied }, t.revision);
    },
    keyOf: (entity: { type: string; id: string }) => keyOf(o.connector, entity),
  };
}
export type OrderingGuard = ReturnType<typeof createOrderingGuard>;
