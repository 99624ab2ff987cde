import { BusError } from '@bus/errors';
import type { Logger } from '@bus/observability';
import { isCasConflict } from '@bus/lease';
import { hash53 } from '@bus/streams';
import type { KV } from '@nats-io/kv';
import { LRUCache } from 'lru-cache';
import type { CasWrite } from './cas.js';
import { type ApplyOutcome, decide, type ProjectedEntity } from './record.js';

/** What a writer last knew of an entry: enough to decide, and its revision for the next compare-and-set. */
type Known = { revision: number; current?: Ranked };
export type Ranked = Pick<ProjectedEntity, 'version' | 'seq' | 'eventId'>;
export const rankOf = (r: ProjectedEntity): Ranked => ({ version: r.version, seq: r.seq, eventId: r.eventId }); // small: the cache holds no fields

/**
 * A bounded memory of entries this writer wrote or read (least recently used go first). Entries
 * only ever move up (decide), so a remembered entry is a lower bound of the real one: a
 * candidate it beats is stale for sure, and a write with a revision that moved on fails
 * the compare-and-set and is retried with a fresh read. A rebuild, the main writer of its
 * bucket, so saves the read before each write.
 *
 * It also knows which keys it let go of (evicted or forgotten; a Bloom filter of 512 KiB, a
 * few % false positives at a million keys): a key it neither remembers nor let go of was never
 * written by this writer — in a bucket only it writes, a new key.
 */
export class EntryCache {
  // lru-cache, not a Map evicting its first key: V8 skips over a Map's deleted slots at its front on every such eviction
  readonly #known: LRUCache<string, Known>;
  readonly #letGo = new Uint32Array(1 << 17); // 2^22 bits
  #anyLetGo = false;
  #newShare = 1; // of unknown keys lately: how many were new
  constructor(readonly maxEntries = 100_000) {
    this.#known = new LRUCache<string, Known>({ max: maxEntries, disposeAfter: (_v, key, reason) => reason === 'evict' && this.#markLetGo(key) });
  }
  get(key: string): Known | undefined {
    return this.#known.get(key);
  }
  set(key: string, k: Known): void {
    this.#known.set(key, k);
  }
  forget(key: string): void {
    this.#known.delete(key);
    this.#markLetGo(key);
  }
  /** Whether `key` may have been remembered once and let go of since (false: it never was). */
  mayHaveLetGo(key: string): boolean {
    if (!this.#anyLetGo) return false;
    for (const bit of bitsOf(key)) if (((this.#letGo[bit >>> 5] ?? 0) & (1 << (bit & 31))) === 0) return false;
    return true;
  }
  /**
   * Whether keys it never had have mostly been new lately (see learnNew): then such a key is tried
   * as new (create, no read) — a fresh bucket; not a restarted process's live one, where the guess
   * would cost a refused write and a read on most keys.
   */
  get unknownMostlyNew(): boolean {
    return this.#newShare >= 0.5;
  }
  /** What a key it never had turned out to be, by its guess or its read (the last ~16 weigh most). */
  learnNew(wasNew: boolean): void {
    this.#newShare += ((wasNew ? 1 : 0) - this.#newShare) / 16;
  }
  #markLetGo(key: string): void {
    for (const bit of bitsOf(key)) this.#letGo[bit >>> 5] = (this.#letGo[bit >>> 5] ?? 0) | (1 << (bit & 31));
    this.#anyLetGo = true;
  }
}

/** Three bit positions of a key in a 2^22-bit filter, from one 53-bit hash (two 22-bit halves and their sum). */
function bitsOf(key: string): [number, number, number] {
  const h = hash53(key);
  const span = 1 << 22;
  const lo = h % span;
  const hi = Math.floor(h / span) % span;
  return [lo, hi, (lo + hi) % span];
}

export interface ApplyOptions {
  /** Remember entries between calls (see EntryCache); a key it does not know is tried as new (create, read only on conflict) while such keys have mostly been new (EntryCache.unknownMostlyNew), else read first. */
  cache?: EntryCache;
  /** Compare-and-set attempts before giving up (a transient error: the event is retried later). Default 20. */
  maxTries?: number;
  /** Called on each lost compare-and-set (another writer changed the entry first). */
  onConflict?: () => void;
  /** How to write (compare-and-set; revision 0: the key must be new). Default kv.update / kv.create. */
  cas?: CasWrite;
  /** Called before each write (a compare-and-set that may lose): what coalescing saves is seen in these. */
  onWrite?: () => void;
  /** A logger, or how to get one (a message's child logger costs something to build: only when there is something to say). */
  log?: Logger | (() => Logger);
}

/** Two different events claiming one version of an entity: said once per meeting (the source's versioning is wrong). */
export function warnIfClash(log: ApplyOptions['log'], key: string, current: Ranked, candidate: Ranked, replace: boolean): void {
  if (current.eventId === candidate.eventId) return; // the same event stored or delivered twice: nothing to say
  (typeof log === 'function' ? log() : log)?.warn({ key, version: candidate.version, kept: replace ? candidate.eventId : current.eventId, other: replace ? current.eventId : candidate.eventId },
    'two events claim the same version of one entity; the first stored is kept (fix the source\'s versioning)');
}

/**
 * Writes `candidate` into `kv` under `key` if it wins over what is there (see decide), by
 * compare-and-set on the entry's revision: any number of writers — live projector processes,
 * a rebuild's final pass — may apply at once and the entry still ends as the maximum.
 * The one function both the live projector and a rebuild apply with.
 */
export async function applyRecord(kv: KV, key: string, candidate: ProjectedEntity, o: ApplyOptions = {}): Promise<ApplyOutcome> {
  const maxTries = o.maxTries ?? 20;
  let known = o.cache?.get(key);
  // with a cache, a key it never had is tried as new while such keys have mostly been new (no read for a fresh
  // bucket), and its first answer says whether they still are; one it let go of exists, most likely: read first
  let learning = o.cache !== undefined && known === undefined && !o.cache.mayHaveLetGo(key);
  let read = !o.cache || (known === undefined && !(learning && o.cache.unknownMostlyNew));
  for (let tries = 0; tries < maxTries; tries++) {
    if (read) {
      const e = await kv.get(key);
      if (learning) o.cache?.learnNew(!e);
      learning = false;
      const live = e?.operation === 'PUT' && e.value.length > 0;
      // a deleted entry keeps its revision: the next write must update() it, not create()
      known = e ? { revision: e.revision, current: live ? rankOf(e.json() as ProjectedEntity) : undefined } : undefined;
    }
    const current = known?.current;
    const { outcome, replace } = decide(current, candidate);
    if (current && outcome === 'duplicate') warnIfClash(o.log, key, current, candidate, replace);
    if (!replace) {
      if (known) o.cache?.set(key, known);
      return outcome;
    }
    const written = { ...candidate, updatedAt: new Date().toISOString() };
    const data = JSON.stringify(written);
    o.onWrite?.();
    try {
      const revision = o.cas ? await o.cas(key, data, known?.revision ?? 0) : known ? await kv.update(key, data, known.revision) : await kv.create(key, data);
      if (learning) o.cache?.learnNew(true);
      o.cache?.set(key, { revision, current: rankOf(written) });
      return outcome;
    } catch (err) {
      if (!isCasConflict(err)) throw err;
      if (learning) o.cache?.learnNew(false);
      learning = false;
      o.cache?.forget(key);
      read = true;
      if (tries > 0 || !o.cache) o.onConflict?.(); // a cache's first guess being wrong is not a conflict with another writer
    }
  }
  throw new BusError('PROJECTION_CONFLICT', 'transient',
    `projection entry ${key} kept changing under ${maxTries} compare-and-set attempts; the event is retried later. ` +
    'If this repeats, look for a process writing the projection bucket in a loop');
}
