import type { KV } from '@nats-io/kv';
import { type ApplyOptions, applyRecord, type EntryCache, type Ranked, rankOf, warnIfClash } from './apply.js';
import type { CasBatch, CasWrite } from './cas.js';
import { type ApplyOutcome, decide, keyOfRecord, type ProjectedEntity } from './record.js';

type Log = ApplyOptions['log'];
interface Waiter {
  rec: ProjectedEntity;
  /** What applying it on arrival, after the records folded before it, would have said ('applied': it was the newest so far). */
  onArrival: ApplyOutcome;
  resolve: (o: ApplyOutcome) => void;
  reject: (err: unknown) => void;
}
/** A write of a batch's chain: what it answers, and the entry it leaves. */
interface Chained {
  key: string;
  slot: Slot;
  outcome: ApplyOutcome;
  revision: number;
  written: ProjectedEntity;
}
const logOf = (log: Log) => (typeof log === 'function' ? log() : log);
/** One entity's candidates waiting for its next write: the one that wins among them (decide), and everyone to answer. */
interface Slot {
  best: ProjectedEntity;
  /** The newest record seen for the entity so far: this slot's, the write on the way, or what the writer remembers stored. */
  newest: Ranked;
  waiters: Waiter[];
  log: Log;
}

export interface WriterOptions {
  /** How writes are sent (casWriter: pipelined on one reply subscription). */
  cas: CasWrite;
  /** Remembers entries between writes (see EntryCache): most writes need no read. */
  cache: EntryCache;
  /** Writes in flight at once (each a different entity). Default 512. */
  maxInFlight?: number;
  onConflict?: () => void;
  /** Called on each write (attempt). */
  onWrite?: () => void;
  /**
   * Only for a bucket no other process writes (a rebuild's, before its switch): each flush's writes
   * go as one chain with one acknowledgement (casBatchWriter), decided against what the cache
   * remembers; a chain not acknowledged whole is written again key by key, reading first. Until
   * `perKey()`. Default: key by key.
   */
  batch?: CasBatch;
  /** Writes per chain at most (batch): a few chains in flight keep the server busy while the next is built. Default 512. */
  maxChain?: number;
}

/** A batch's chain broke this many times in a row: it is not going to work here (say, a server that refuses it); key by key from then on. */
const BATCH_FAILURES_TO_GIVE_UP = 3;

/**
 * Applies records to one bucket, coalesced per entity and pipelined:
 *
 * - Records of an entity that arrive while none of its writes is on the way (in practice: one
 *   pull batch, flushed together at the next setImmediate) or while one is, are folded into
 *   one candidate — the one decide() keeps — and written once, by applyRecord (compare-and-set,
 *   retried on a conflict). One write per entity at a time, so a busy entity never races itself.
 * - Writes of different entities go out together (one socket write for a batch), up to
 *   `maxInFlight` awaiting their acknowledgement.
 * - With `batch` (a bucket only this writer writes: a rebuild before its switch), a flush's
 *   writes are decided here against the cache — a key it neither remembers nor let go of is
 *   new — and sent as chains of up to `maxChain` with one acknowledgement each (casBatchWriter).
 *   A chain not acknowledged whole is redone key by key from a read: a write of it that was
 *   stored is answered as decided, the others go through applyRecord.
 * - `submit` resolves only once a write that holds the record, or one that beats it, is
 *   acknowledged by the server (or what is known to be stored already beats it): a caller that
 *   acknowledges its message then loses nothing if the process dies. A redelivered record
 *   re-applies idempotently (the state is a maximum).
 *
 * Folding changes no final state: the entry is the maximum over all records, in any order. A
 * folded-away record's outcome is what applying the records one at a time, in arrival order, would
 * have said: applied when it was the newest so far (and the winner was applied), else stale when
 * older, duplicate when of the same version (unless the winner itself was stale: then so is it).
 */
export function createWriter(kv: KV, o: WriterOptions) {
  const maxInFlight = o.maxInFlight ?? 512;
  const maxChain = o.maxChain ?? 512;
  const waiting = new Map<string, Slot>(); // candidates not yet sent, in arrival order
  const busy = new Map<string, ProjectedEntity>(); // entities with a write on the way, and its record
  let inFlight = 0;
  let scheduled = false;
  let batch = o.batch;
  let batchFailures = 0;
  const stats = { records: 0, writes: 0 };
  const onWrite = () => {
    stats.writes++;
    o.onWrite?.();
  };

  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  };

  const done = (key: string) => {
    busy.delete(key);
    inFlight--;
    if (waiting.size) schedule();
  };

  function flush() {
    scheduled = false;
    const chain: Chained[] = [];
    const updatedAt = new Date().toISOString();
    for (const [key, slot] of waiting) {
      if (inFlight >= maxInFlight) break;
      if (busy.has(key)) continue; // sent once its write is acknowledged
      waiting.delete(key);
      busy.set(key, slot.best);
      inFlight++;
      const known = batch ? o.cache.get(key) : undefined;
      // unknown, but maybe written and forgotten: only a read can say what is there
      if (!batch || (!known && o.cache.mayHaveLetGo(key))) {
        // runs synchronously up to the publish: every write of this flush leaves in one socket write
        write(key, slot).finally(() => done(key));
        continue;
      }
      const current = known?.current;
      const { outcome, replace } = decide(current, slot.best);
      if (current && outcome === 'duplicate') warnIfClash(slot.log, key, current, slot.best, replace);
      if (!replace) {
        answer(slot, outcome);
        done(key);
        continue;
      }
      chain.push({ key, slot, outcome, revision: known?.revision ?? 0, written: { ...slot.best, updatedAt } });
      if (chain.length === maxChain) void writeChain(batch, chain.splice(0));
    }
    if (chain.length) void writeChain(batch!, chain);
  }

  async function writeChain(send: CasBatch, chain: Chained[]): Promise<void> {
    for (let i = 0; i < chain.length; i++) onWrite();
    let revisions: number[] | undefined;
    try {
      revisions = await send(chain.map((c) => ({ key: c.key, data: JSON.stringify(c.written), revision: c.revision })));
    } catch {
      revisions = undefined;
    }
    if (revisions) {
      batchFailures = 0;
      chain.forEach((c, i) => {
        o.cache.set(c.key, { revision: revisions[i]!, current: rankOf(c.written) });
        answer(c.slot, c.outcome);
        done(c.key);
      });
      return;
    }
    // some of it may be stored, some not: each again by itself, compare-and-set after a read (what did get stored is kept)
    if (++batchFailures >= BATCH_FAILURES_TO_GIVE_UP && batch) {
      batch = undefined;
      logOf(chain[0]!.slot.log)?.warn({ failures: batchFailures }, 'projection: batched writes keep failing here; writing key by key from now on');
    }
    for (const c of chain) rewrite(c).finally(() => done(c.key));
  }

  /** A write of a broken chain: read what is stored; the write itself (stored before the break) is answered as decided, else written key by key. */
  async function rewrite(c: Chained): Promise<void> {
    try {
      const e = await kv.get(c.key);
      const stored = e?.operation === 'PUT' && e.value.length > 0 ? (e.json() as ProjectedEntity) : undefined;
      if (!e) o.cache.forget(c.key);
      else o.cache.set(c.key, { revision: e.revision, current: stored ? rankOf(stored) : undefined });
      if (stored?.seq === c.written.seq && stored.version === c.written.version) return answer(c.slot, c.outcome);
    } catch (err) {
      for (const w of c.slot.waiters) w.reject(err);
      return;
    }
    await write(c.key, c.slot);
  }

  async function write(key: string, slot: Slot): Promise<void> {
    let outcome: ApplyOutcome;
    try {
      outcome = await applyRecord(kv, key, slot.best, { cache: o.cache, cas: o.cas, log: slot.log, onConflict: o.onConflict, onWrite });
    } catch (err) {
      for (const w of slot.waiters) w.reject(err);
      return;
    }
    answer(slot, outcome);
  }

  /** Answers everyone folded into `slot`, its winner written (or not) with `outcome`. */
  function answer(slot: Slot, outcome: ApplyOutcome): void {
    for (const w of slot.waiters) {
      if (w.rec === slot.best) w.resolve(outcome);
      // the newest so far when it arrived: applied one at a time, it would have been written too (if the winner was)
      else if (w.onArrival === 'applied') w.resolve(outcome === 'applied' ? 'applied' : 'stale');
      else w.resolve(outcome === 'stale' ? 'stale' : w.onArrival);
    }
  }

  /** Folds `rec` into its entity's waiting candidate (see above); `resolve` gets its outcome once acknowledged. */
  function add(key: string, rec: ProjectedEntity, resolve: Waiter['resolve'], reject: Waiter['reject'], log?: Log): void {
    stats.records++;
    const slot = waiting.get(key);
    if (!slot) {
      // what it meets on arrival: the write on the way, else what this writer remembers stored (unknown: it is the newest)
      const sent: Ranked | undefined = busy.get(key);
      const stored = o.cache.get(key)?.current;
      const seen = sent === undefined || stored === undefined ? (sent ?? stored) : decide(sent, stored).replace ? stored : sent;
      const arrival = decide(seen, rec);
      waiting.set(key, { best: rec, newest: arrival.replace ? rec : seen!, waiters: [{ rec, onArrival: arrival.outcome, resolve, reject }], log });
      if (!busy.has(key)) schedule();
      return;
    }
    const arrival = decide(slot.newest, rec);
    if (arrival.replace) slot.newest = rec;
    const { outcome, replace } = decide(slot.best, rec);
    if (outcome === 'duplicate') warnIfClash(log ?? slot.log, key, slot.best, rec, replace);
    if (replace) {
      slot.best = rec;
      slot.log = log ?? slot.log;
    }
    slot.waiters.push({ rec, onArrival: arrival.outcome, resolve, reject });
  }

  return {
    /** Applies `rec` under `key` (see above); resolves with what applying it did once that is acknowledged. */
    submit(key: string, rec: ProjectedEntity, log?: Log): Promise<ApplyOutcome> {
      return new Promise<ApplyOutcome>((resolve, reject) => add(key, rec, resolve, reject, log));
    },
    /**
     * Applies each of `recs` under its key (keyOfRecord) as `submit` does; `onOutcome` hears each
     * one's once acknowledged. Resolves when all are, rejects with the first failure: one promise
     * for a pull batch instead of one per record (a rebuild's).
     */
    submitAll(recs: readonly ProjectedEntity[], onOutcome: (o: ApplyOutcome) => void, log?: Log): Promise<void> {
      return new Promise<void>((resolveAll, reject) => {
        let left = recs.length;
        if (left === 0) return resolveAll();
        const resolve = (outcome: ApplyOutcome) => {
          onOutcome(outcome);
          if (--left === 0) resolveAll();
        };
        for (const rec of recs) add(keyOfRecord(rec), rec, resolve, reject, log);
      });
    },
    /** Records submitted, and KV writes made for them (attempts lost to a compare-and-set included). */
    stats: () => ({ ...stats }),
    /** Writes key by key from now on (other processes may write the bucket too: a rebuild's switch). */
    perKey(): void {
      batch = undefined;
    },
  };
}
export type Writer = ReturnType<typeof createWriter>;
