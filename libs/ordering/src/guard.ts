import { randomUUID } from 'node:crypto';
import { endOfTurn } from '@bus/bus';
import { isCasConflict } from '@bus/lease';
import { kvToken } from '@bus/streams';
import type { KV } from '@nats-io/kv';
import { LRUCache } from 'lru-cache';
import { foldedVersions } from './fold.js';

/** strict: every version, in order; latest: only newer than applied; none: no ordering. */
export type OrderingMode = 'strict' | 'latest' | 'none';

/**
 * sequence: 1, 2, 3, … per entity — a missing version can be seen and is waited for (strict).
 * stamp: a timestamp or other increasing number — a gap means nothing, so strict holds a short
 * reorder window and then applies in increasing order, never older over newer.
 */
export type VersionKind = 'sequence' | 'stamp';

/** What the guard keeps per (connector, entity) in the versions bucket: one small JSON value. */
interface EntityState {
  /** Highest version applied at the target; 0 = none yet. */
  applied: number;
  /**
   * The one attempt in flight for this entity. Written before the call, so it doubles as the
   * attempt record: a lease that ran out without commit or abort is an attempt whose process died
   * mid-call, and its version is in doubt (it may have landed).
   */
  lease?: { version: number; holder: string; untilMs: number };
  /**
   * The highest version whose last attempt may have landed (timed out, or its process died): this version and
   * every older one are looked up before they are sent, so an older version never goes over it.
   */
  inDoubt?: number;
}

/** What a lookup at the target found: the version it holds (0 = absent). */
export interface LookupResult {
  found: number;
}

/** The command as the guard sees it. */
export interface GuardedCommand {
  entity: { type: string; id: string };
  version: number;
  /** Default sequence. */
  versionKind?: VersionKind;
  /** When the command was stored: a stamp's reorder window counts from here. */
  storedAtMs: number;
  /** Set by reconcile: re-applies the source's state even where this version is recorded as applied. */
  repair?: boolean;
}

export type Begin =
  /**
   * Go: the lease is held. `inDoubt`: an earlier attempt of this version or a newer one may have landed — look the
   * record up before sending (and pass what was found to commit or abort).
   */
  | { kind: 'go'; token: Token; inDoubt: boolean }
  | { kind: 'skip'; reason: 'stale' | 'duplicate'; applied: number }
  /**
   * Not yet: `gap` a missing version is neither pending nor in flight (the gap clock runs);
   * `pending` an older version is still pending or in flight (the clock does not run);
   * `reorder` a stamp waits out the reorder window; `busy` another attempt holds the entity.
   */
  | { kind: 'wait'; reason: 'gap' | 'pending' | 'reorder' | 'busy'; applied: number; delayMs: number }
  | { kind: 'gap-expired'; applied: number; missing: number[]; waitedMs: number };

/** Proof of holding an entity's lease; renew it during the call, then commit or abort it. */
export interface Token {
  key: string;
  version: number;
  /** KV revision of our last write: every later write is a compare-and-set on it (the fence). */
  revision: number;
  applied: number;
  /** Carried over: an older version still in doubt. */
  inDoubt?: number;
  /** When the lease runs out unless renewed (ms since epoch). A call must end before it. */
  untilMs: number;
}

export interface GuardOptions {
  kv: KV;
  connector: string;
  mode: OrderingMode;
  /** How long a strict gap is waited for once nothing older is pending anywhere. Default 60 000 ms. */
  gapWaitMs?: number;
  /** How long a stamp-versioned command is held, from when it was stored, for older ones to arrive. Default 2 000 ms. */
  reorderWindowMs?: number;
  /** How long a lease lives unless renewed. Default 60 000 ms; renew it at least every third of it. */
  leaseMs?: number;
  /** A lease that ran out is taken over only this much later (clock skew between hosts). Default 1 000 ms. */
  takeoverGraceMs?: number;
  /** How soon to look again at a busy entity or a gap. Default 250 ms. */
  recheckMs?: number;
  /** Identifies this process (lease holder). Default a random id. */
  holder?: string;
  now?: () => number;
  /**
   * Versions of this entity's commands pending or in flight for this connector (`pendingVersions`).
   * Without it a gap is only timed, not checked.
   */
  pending?: (entity: { type: string; id: string }, stopAt?: (version: number) => boolean) => Promise<number[]>;
  /**
   * The stage before (transform): `mark()` now, and `passed(mark)` once everything stored upstream
   * before the mark has been handed on. The gap clock starts only then: a missing version still
   * queued upstream is not missing.
   */
  upstream?: { mark(): Promise<number>; passed(mark: number): Promise<boolean> };
  /** Counts KV round trips (the bench reports them per delivery). */
  onKvOp?: (op: 'get' | 'create' | 'update') => void;
}

/** An earlier doubt survives unless a lookup showed the doubted version is not at the target. */

/** The entity's key in the versions bucket (read it only through appliedVersion: its layout may change). */
export function keyOf(connector: string, entity: { type: string; id: string }): string {
  return `${connector}.${entity.type}.${kvToken(entity.id)}`;
}


/** Gap clocks older than this without a look are restarted: a pause, an outage or a move to another process happened meanwhile. */
const CLOCK_STALE_MS = 5_000;
const MAX_CACHED = 10_000;

/**
 * Per-entity ordering across any number of processes. A command goes only while its process
 * holds the entity's lease: a compare-and-set on the KV revision, written before the call (the
 * attempt record), renewed during it, and checked again (the fence) when the outcome is
 * recorded — so two attempts for one entity are never in flight together, a lease lost
 * mid-call records nothing, and a successor knows an unfinished attempt may have landed.
 */
export function createOrderingGuard(o: GuardOptions) {
  const holder = o.holder ?? randomUUID();
  const now = o.now ?? Date.now;
  const leaseMs = o.leaseMs ?? 60_000;
  const recheckMs = o.recheckMs ?? 250;
  const graceMs = o.takeoverGraceMs ?? 1_000;
  const gapWaitMs = o.gapWaitMs ?? 60_000;
  const reorderWindowMs = o.reorderWindowMs ?? 2_000;
  const count = o.onKvOp ?? (() => {});
  /** An entity without a key may have been idle and folded into its partition (fold.ts): its applied version is there. */
  const folded = foldedVersions(o.kv, () => count('get'));
  /** Entities whose attempt runs in this process now: our own lease on any other is a leftover. */
  const active = new Set<string>();
  /** Last state we wrote per key, with its revision: the next version of the entity skips the read when nobody wrote since. */
  const cache = new LRUCache<string, { state: EntityState; revision: number }>({ max: MAX_CACHED });
  /** Gap clocks per `key@version`, in memory: restarting one only makes the wait longer, never shorter. */
  const clocks = new Map<string, { lastMs: number; mark?: number; sinceMs?: number }>();

  function remember(key: string, state: EntityState, revision: number) {
    cache.set(key, { state, revision });
  }

  async function read(key: string): Promise<{ state: EntityState; revision: number }> {
    count('get');
    await endOfTurn(); // with every other handler's KV request of this turn: one socket write
    const e = await o.kv.get(key);
    if (e?.operation !== 'PUT' || e.value.length === 0) return { state: { applied: await folded.applied(o.connector, key) }, revision: e?.revision ?? 0 };
    const state = e.json() as EntityState;
    // applied 0 may be a key created (begin's fast path) before its partition was looked at, by a process that stopped
    // there: the folded version counts too (it is never above the entity's real one: applied only grows)
    if (state.applied === 0) state.applied = await folded.applied(o.connector, key);
    return { state, revision: e.revision };
  }

  /** Compare-and-set; undefined when someone else wrote first. Any other error is thrown (and classified by the caller). */
  async function write(key: string, state: EntityState, revision: number): Promise<number | undefined> {
    const data = JSON.stringify(state);
    try {
      count(revision === 0 ? 'create' : 'update');
      await endOfTurn();
      const next = revision === 0 ? await o.kv.create(key, data) : await o.kv.update(key, data, revision);
      remember(key, state, next);
      return next;
    } catch (err) {
      cache.delete(key);
      if (isCasConflict(err)) return undefined; // someone else wrote the key since we read it; anything else is a real error
      throw err;
    }
  }

  /** Versions of this entity below `version` (and above `applied`) still pending or in flight. */
  async function olderPending(cmd: GuardedCommand, applied: number): Promise<boolean> {
    if (!o.pending) return false;
    const older = (v: number) => v > applied && v < cmd.version;
    return (await o.pending(cmd.entity, older)).some(older);
  }

  /** Strict, sequence, a gap: wait while the missing versions may still come; dead-letter after gapWaitMs of real absence. */
  async function gap(key: string, cmd: GuardedCommand, applied: number): Promise<Begin> {
    const clockKey = `${key}@${cmd.version}`;
    if (await olderPending(cmd, applied)) {
      clocks.delete(clockKey);
      return { kind: 'wait', reason: 'pending', applied, delayMs: recheckMs };
    }
    const t = now();
    let clock = clocks.get(clockKey);
    if (!clock || t - clock.lastMs > CLOCK_STALE_MS) {
      clock = { lastMs: t, mark: await o.upstream?.mark() };
      clocks.set(clockKey, clock);
    }
    clock.lastMs = t;
    if (clock.sinceMs === undefined) {
      if (clock.mark !== undefined && !(await o.upstream?.passed(clock.mark))) return { kind: 'wait', reason: 'pending', applied, delayMs: recheckMs };
      clock.sinceMs = t;
    }
    const waitedMs = t - clock.sinceMs;
    if (waitedMs < gapWaitMs) return { kind: 'wait', reason: 'gap', applied, delayMs: recheckMs };
    clocks.delete(clockKey);
    const missing = Array.from({ length: Math.min(cmd.version - applied - 1, 20) }, (_, i) => applied + 1 + i);
    return { kind: 'gap-expired', applied, missing, waitedMs };
  }

  /**
   * What the recorded state says about this command before any lease: skip, wait, or undefined (may go).
   * `quick`: from a cached state, only the answers that need no further reads ('slow' otherwise).
   */
  async function decide(key: string, cmd: GuardedCommand, state: EntityState, quick = false): Promise<Begin | undefined | 'slow'> {
    const { applied } = state;
    if (o.mode === 'none') return undefined;
    if (cmd.version < applied || (cmd.version === applied && !cmd.repair)) {
      return { kind: 'skip', reason: cmd.version === applied ? 'duplicate' : 'stale', applied };
    }
    if (state.inDoubt !== undefined && state.inDoubt > cmd.version) {
      // a newer version may have landed: never send an older one while the newer is still on its way (it resolves the doubt)
      if (quick) return 'slow';
      if (o.pending && (await o.pending(cmd.entity, (v) => v === state.inDoubt)).includes(state.inDoubt)) {
        return { kind: 'wait', reason: 'pending', applied, delayMs: recheckMs };
      }
    }
    if (o.mode !== 'strict' || cmd.version === applied + 1 || cmd.version === applied) return undefined;
    if (quick) return 'slow';
    // strict, and versions between applied and this one are not applied
    if (cmd.repair || cmd.versionKind === 'stamp') {
      // a repair or a stamp never jumps over an older version that is still on its way; otherwise it goes
      if (await olderPending(cmd, applied)) return { kind: 'wait', reason: 'pending', applied, delayMs: recheckMs };
      const heldMs = cmd.storedAtMs + reorderWindowMs - now();
      if (!cmd.repair && heldMs > 0) return { kind: 'wait', reason: 'reorder', applied, delayMs: Math.max(recheckMs, heldMs) };
      return undefined;
    }
    return gap(key, cmd, applied);
  }

  async function tryTake(key: string, cmd: GuardedCommand, state: EntityState, revision: number): Promise<Begin | 'conflict'> {
    const lease = state.lease;
    const ours = lease?.holder === holder && !active.has(key); // our own leftover: its attempt has ended here
    if (lease && !ours && lease.untilMs + graceMs > now()) return { kind: 'wait', reason: 'busy', applied: state.applied, delayMs: recheckMs };
    if (active.has(key)) return { kind: 'wait', reason: 'busy', applied: state.applied, delayMs: recheckMs }; // two copies of one command in this process
    // a lease that ran out (or our own leftover) is an attempt that never finished: its version is in doubt
    const inDoubt = Math.max(lease?.version ?? 0, state.inDoubt ?? 0) || undefined;
    const untilMs = now() + leaseMs;
    // marked before the write: once the server has it, another handler here may read our lease before this
    // write's answer arrives, and must see it as in use, not as a leftover of an attempt that ended
    active.add(key);
    let next: number | undefined;
    try {
      next = await write(key, { applied: state.applied, lease: { version: cmd.version, holder, untilMs }, ...(inDoubt ? { inDoubt } : {}) }, revision);
    } finally {
      if (next === undefined) active.delete(key);
    }
    if (next === undefined) return 'conflict';
    return { kind: 'go', inDoubt: inDoubt !== undefined && inDoubt >= cmd.version, token: { key, version: cmd.version, revision: next, applied: state.applied, inDoubt, untilMs } };
  }

  /** Frees the entity in this process without writing (the lease runs out by itself; its attempt stays in doubt). */
  function release(t: Token): void {
    active.delete(t.key);
  }

  /** Writes the entity's state after the attempt, fenced by the token's revision; false when the lease was lost. */
  async function finish(t: Token, state: EntityState): Promise<boolean> {
    try {
      return (await write(t.key, state, t.revision)) !== undefined;
    } finally {
      active.delete(t.key);
    }
  }

  return {
    holder,
    /** May this command go now? On `go` the entity's lease (and the attempt record) is written. */
    async begin(cmd: GuardedCommand): Promise<Begin> {
      const key = keyOf(o.connector, cmd.entity);
      const cached = cache.get(key);
      // fast path: the state we last wrote, when nobody wrote since (the compare-and-set proves it); the
      // first version of an entity is usually new (create, which fails if the key exists) — unless it was
      // applied and folded since, which its partition says. Skips need no proof: applied only grows.
      if (cached || cmd.version === 1) {
        const { state, revision } = cached ?? { state: { applied: 0 }, revision: 0 };
        const d = await decide(key, cmd, state, true);
        if (d !== undefined && d !== 'slow' && d.kind === 'skip') return d;
        if (d === undefined) {
          const r = await tryTake(key, cmd, state, revision);
          if (r !== 'conflict' && r.kind === 'go') {
            if (cached) return r;
            // created, so the key was absent: the entity is new, or it was folded — asked only now, after the create,
            // as a fold writes the partition before it removes the key (and an unmarked partition costs no read)
            let applied: number;
            try {
              applied = await folded.applied(o.connector, key);
            } catch (err) {
              release(r.token); // our lease record stays until it runs out; whoever reads it counts the partition (read)
              throw err;
            }
            if (applied === 0) return r;
            // folded: its version goes back into the key, and the key decides below like any other
            await finish(r.token, { applied });
          }
        }
      }
      for (let tries = 0; tries < 5; tries++) {
        const { state, revision } = await read(key);
        const d = await decide(key, cmd, state);
        if (d && d !== 'slow') return d;
        const r = await tryTake(key, cmd, state, revision);
        if (r !== 'conflict') return r;
      }
      return { kind: 'wait', reason: 'busy', applied: 0, delayMs: recheckMs };
    },
    /**
     * Extends the lease (call it every third of leaseMs during the call). False when it was lost:
     * the call must end before `token.untilMs`, and nothing may be recorded.
     */
    async renew(t: Token): Promise<boolean> {
      const untilMs = now() + leaseMs;
      const next = await write(t.key, { applied: t.applied, lease: { version: t.version, holder, untilMs }, ...(t.inDoubt ? { inDoubt: t.inDoubt } : {}) }, t.revision);
      if (next === undefined) return false;
      t.revision = next;
      t.untilMs = untilMs;
      return true;
    },
    /**
     * The target holds this version (or, per `lookup`, a newer one that was in doubt): record it and free the entity.
     * False when the lease was lost meanwhile (nothing recorded).
     */
    async commit(t: Token, lookup?: LookupResult): Promise<boolean> {
      // what the lookup found is at the target: applied at least that far (it covers a doubted version that had landed)
      const applied = Math.max(t.applied, t.version, lookup?.found ?? 0);
      return finish(t, { applied, ...(lookup === undefined && (t.inDoubt ?? 0) > applied ? { inDoubt: t.inDoubt } : {}) });
    },
    /**
     * It did not land (`inDoubt: false`, e.g. a 503 or a lookup that found nothing), or it may have
     * (`inDoubt: true`, a timeout): free the entity, applied unchanged. False when the lease was lost.
     */
    async abort(t: Token, opts: { inDoubt: boolean; lookup?: LookupResult } = { inDoubt: false }): Promise<boolean> {
      // a lookup that answered resolves an earlier doubt (a 503 alone does not), and what it found is at the target:
      // applied at least that far, or an older version could later go over it (latest mode)
      const applied = Math.max(t.applied, opts.lookup?.found ?? 0);
      const earlier = opts.lookup === undefined ? (t.inDoubt ?? 0) : 0;
      const inDoubt = Math.max(opts.inDoubt ? t.version : 0, earlier);
      return finish(t, { applied, ...(inDoubt > applied ? { inDoubt } : {}) });
    },
    /** Frees the entity in this process without writing (the lease runs out by itself; its attempt stays in doubt). */
    release,
    keyOf: (entity: { type: string; id: string }) => keyOf(o.connector, entity),
    /** The recorded state of one entity (reconcile's settled rule, the CLI). */
    async state(entity: { type: string; id: string }): Promise<{ applied: number; inFlight?: number; inDoubt?: number }> {
      const { state } = await read(keyOf(o.connector, entity));
      const live = state.lease && state.lease.untilMs + graceMs > now() ? state.lease.version : undefined;
      return { applied: state.applied, ...(live ? { inFlight: live } : {}), ...(state.inDoubt ? { inDoubt: state.inDoubt } : {}) };
    },
  };
}
export type OrderingGuard = ReturnType<typeof createOrderingGuard>;
