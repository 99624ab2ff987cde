import type { KV } from '@nats-io/kv';
import { type ApplyOptions, applyRecord, type EntryCache, type Ranked, warnIfClash } from './apply.js';
import type { CasWrite } from './cas.js';
import { type ApplyOutcome, decide, type ProjectedEntity } from './record.js';

type Log = ApplyOptions['log'];
interface Waiter {
  rec: ProjectedEntity;
  /** What applying it on arrival, after the records folded before it, would have said ('applied': it was the newest so far). */
  onArrival: ApplyOutcome;
  resolve: (o: ApplyOutcome) => void;
  reject: (err: unknown) => void;
}
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
}

/**
 * Applies records to one bucket, coalesced per entity and pipelined:
 *
 * - Records of an entity that arrive while none of its writes is on the way (in practice: one
 *   pull batch, flushed together at the next setImmediate) or while one is, are folded into
 *   one candidate — the one decide() keeps — and written once, by applyRecord (compare-and-set,
 *   retried on a conflict). One write per entity at a time, so a busy entity never races itself.
 * - Writes of different entities go out together (one socket write for a batch), up to
 *   `maxInFlight` awaiting their acknowledgement.
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
  const waiting = new Map<string, Slot>(); // candidates not yet sent, in arrival order
  const busy = new Map<string, ProjectedEntity>(); // entities with a write on the way, and its record
  let inFlight = 0;
  let scheduled = false;
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

  function flush() {
    scheduled = false;
    for (const [key, slot] of waiting) {
      if (inFlight >= maxInFlight) break;
      if (busy.has(key)) continue; // sent once its write is acknowledged
      waiting.delete(key);
      busy.set(key, slot.best);
      inFlight++;
      // runs synchronously up to the publish: every write of this flush leaves in one socket write
      write(key, slot).finally(() => {
        busy.delete(key);
        inFlight--;
        if (waiting.size) schedule();
      });
    }
  }

  async function write(key: string, slot: Slot): Promise<void> {
    let outcome: ApplyOutcome;
    try {
      outcome = await applyRecord(kv, key, slot.best, { cache: o.cache, cas: o.cas, log: slot.log, onConflict: o.onConflict, onWrite });
    } catch (err) {
      for (const w of slot.waiters) w.reject(err);
      return;
    }
    for (const w of slot.waiters) {
      if (w.rec === slot.best) w.resolve(outcome);
      // the newest so far when it arrived: applied one at a time, it would have been written too (if the winner was)
      else if (w.onArrival === 'applied') w.resolve(outcome === 'applied' ? 'applied' : 'stale');
      else w.resolve(outcome === 'stale' ? 'stale' : w.onArrival);
    }
  }

  return {
    /** Applies `rec` under `key` (see above); resolves with what applying it did once that is acknowledged. */
    submit(key: string, rec: ProjectedEntity, log?: Log): Promise<ApplyOutcome> {
      stats.records++;
      return new Promise<ApplyOutcome>((resolve, reject) => {
        const slot = waiting.get(key);
        if (!slot) {
          // what it meets on arrival: the write on the way, else what this writer remembers stored (unknown: it is the newest)
          const known = [busy.get(key), o.cache.get(key)?.current].filter((r): r is Ranked => r !== undefined);
          const seen = known.reduce<Ranked | undefined>((a, r) => (a === undefined || decide(a, r).replace ? r : a), undefined);
          const arrival = decide(seen, rec);
          waiting.set(key, { best: rec, newest: arrival.replace ? rec : seen!, waiters: [{ rec, onArrival: arrival.outcome, resolve, reject }], log });
          if (!busy.has(key)) schedule();
          return;
        }
        const arrival = decide(slot.newest, rec);
        if (arrival.replace) slot.newest = rec;
        const { outcome, replace } = decide(slot.best, rec);
        const waiter = { rec, onArrival: arrival.outcome, resolve, reject };
        if (outcome === 'duplicate') warnIfClash(log ?? slot.log, key, slot.best, rec, replace);
        if (replace) {
          slot.best = rec;
          slot.log = log ?? slot.log;
        }
        slot.waiters.push(waiter);
      });
    },
    /** Records submitted, and KV writes made for them (attempts lost to a compare-and-set included). */
    stats: () => ({ ...stats }),
  };
}
export type Writer = ReturnType<typeof createWriter>;
