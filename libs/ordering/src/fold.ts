import { type Bus, endOfTurn, readRange } from '@bus/bus';
import { describeError } from '@bus/errors';
import { acquireLease, isCasConflict } from '@bus/lease';
import type { Logger } from '@bus/observability';
import { fnv1a32 } from '@bus/streams';
import { JetStreamApiError, type JsMsg } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { LRUCache } from 'lru-cache';

/** A delete by sequence of a message that is not (any more) in the stream: "sequence N not found", or "no message found". */
const isNoMessage = (err: unknown) => err instanceof JetStreamApiError && (err.code === 10043 || (err.code === 10057 && /no message found/i.test(err.message)));

/**
 * Idle entities' applied versions, folded into a fixed number of partition values per connector.
 *
 * nats-server keeps every subject of a stream in memory (~450 B per `bus_versions` key measured, for
 * ever), so one key per entity and connector costs gigabytes at millions of entities. An entity's key
 * is needed only while it is in use (a lease, a version in doubt, recent writes); once it has been
 * idle for a while the folder moves its applied version into `<connector>.=fold.<n>` — one JSON value
 * `{ e: { "<type>.<id>": applied } }` per partition — and removes the key. The guard reads the key
 * and, when there is none, the partition: an absent key always means "folded, or never applied",
 * because the folder writes the partition *before* it removes the key, and removes it only at the
 * revision it folded (a write since keeps the key, hot). A partition's version per entity only grows
 * (merged with max), so a slow or duplicate folder can never lower it.
 *
 * FOLD_PARTITIONS is fixed: readers and folders must agree on where an entity is. 16,384 partitions
 * hold 10 million entities at ~610 each (~15 KB per value, read once per cold entity's delivery).
 */
export const FOLD_PARTITIONS = 16_384;
const FOLD_TOKEN = '=fold';

/** The entity's part of its key (`<type>.<id>`), as it is named inside a partition. */
const entityPart = (connector: string, key: string) => key.slice(connector.length + 1);

/** The partition value that holds `key` (a `bus_versions` key of `connector`) once it is folded. */
export function partitionKeyOf(connector: string, key: string): string {
  return `${connector}.${FOLD_TOKEN}.${fnv1a32(entityPart(connector, key)) % FOLD_PARTITIONS}`;
}

interface PartitionValue {
  e: Record<string, number>;
}

const MAX_CACHED_PARTITIONS = 256;

/**
 * Reads folded versions. Every read fetches the partition (an entity folded a moment ago must be seen:
 * the bus binds buckets without direct get, so reads go to the stream's leader, never a lagging
 * replica); the parsed value is cached by revision, so a partition that did not change is not parsed again.
 */
export function foldedVersions(kv: KV, onGet: () => void = () => {}) {
  // lru-cache, not a Map evicting its first key (V8 walks the deleted slots at a Map's front on every such eviction)
  const parsed = new LRUCache<string, { revision: number; value: PartitionValue }>({ max: MAX_CACHED_PARTITIONS });
  return {
    /** The applied version folded for `key` (a `bus_versions` key of `connector`); 0 when none is. */
    async applied(connector: string, key: string): Promise<number> {
      const pk = partitionKeyOf(connector, key);
      onGet();
      await endOfTurn(); // one socket write with the turn's other requests (the guard's hot path)
      const e = await kv.get(pk);
      if (e?.operation !== 'PUT' || e.length === 0) return 0;
      let cached = parsed.get(pk);
      if (cached?.revision !== e.revision) {
        cached = { revision: e.revision, value: e.json() as PartitionValue };
        parsed.set(pk, cached);
      }
      return cached.value.e[entityPart(connector, key)] ?? 0;
    },
  };
}
export type FoldedVersions = ReturnType<typeof foldedVersions>;

/** An idle entity key found by a fold pass. */
interface Idle {
  key: string;
  /** The revision folded: the key is removed only up to it. */
  revision: number;
  applied: number;
}

export interface FoldOptions {
  bus: Bus;
  connector: string;
  /** Fold entities whose key was last written at least this long ago. */
  idleMs: number;
  /** At most this many keys folded per pass (memory bound); the next pass takes the rest. Default 20 000. */
  maxPerPass?: number;
  /** Partitions written at once. Default 16. */
  parallel?: number;
  now?: () => number;
  log?: Logger;
  /**
   * Partition values not written for this long are rewritten as they are (default 1 200 000 ms): nats-server 2.9
   * keeps a file block's bookkeeping of every key written into it (and of every one deleted) in memory until the
   * whole block is gone, and one old, still-live partition value pins its block. So the server's memory for
   * applied versions follows the keys written recently rather than history: in the scale bench's pipeline the live
   * heap grew ~950 B per event (2 connectors) with the hourly refresh; with this one (scaled) it is flat at ~45 MB
   * over 240,000 events on 20,000 orders (README, Capacity).
   */
  refreshMs?: number;
  /** At most this many partition values rewritten per pass. Default 2 000 (16,384 within 20 minutes at one pass a minute). */
  maxRefresh?: number;
  /** Called between listing and folding (tests: a write that races the fold). */
  afterList?: (keys: string[]) => Promise<void>;
  /**
   * Where this folder's passes resume reading (kept by startFolder between passes, moved on by each pass that
   * succeeds). Without it a pass reads every key of the connector from the stream's start.
   */
  cursor?: FoldCursor;
}

/**
 * Stream sequences of `bus_versions` where the next pass starts: `idle` for entity keys, `refresh` for partition
 * values. The bucket keeps one revision per key, so what is stored before a cursor was looked at already and was not
 * foldable then (a lease, a version in doubt); a key written since has a later sequence and is met again. So a pass
 * reads what was written since the last one, not every key: reading all of them each minute (last value per subject,
 * 60,000 keys at 1,000 deliveries/s) held deliveries up for 0.3–0.8 s once a minute (e2e bench, slowest 1 %).
 */
export interface FoldCursor {
  idle: number;
  refresh: number;
}

export interface FoldResult {
  /** Entity keys looked at (hot keys of the connector). */
  looked: number;
  /** Folded and removed. */
  folded: number;
  /** Written since they were listed: kept (they stay hot). */
  kept: number;
  /** Partition values written with folded entities. */
  partitions: number;
  /** Old partition values rewritten as they were (refreshMs). */
  refreshed: number;
  /** How folded keys were removed: by sequence (O(1)), or by purging their subject (a bucket made before deny_delete was lifted). */
  removal: 'sequence' | 'purge';
}

/**
 * One fold pass over a connector's entity keys: idle ones (no lease, nothing in doubt, not written for
 * `idleMs`) go into their partition values, then their keys are removed at the folded revision. Safe
 * to run in several processes at once (merges take the max, removals are conditional); one at a time
 * is cheaper — deliver runs it under a lease.
 */
export async function foldIdleVersions(o: FoldOptions): Promise<FoldResult> {
  const now = o.now ?? Date.now;
  const bucket = o.bus.names.kv.versions;
  const kv = await o.bus.kv(bucket);
  const cursor = o.cursor ?? { idle: 0, refresh: 0 };
  const idle = await listIdle(o.bus, bucket, o.connector, cursor, now() - o.idleMs, now() - (o.refreshMs ?? 1_200_000), o.maxPerPass ?? 20_000, o.maxRefresh ?? 2_000);
  await o.afterList?.(idle.found.map((i) => i.key));
  const byPartition = new Map<string, Idle[]>();
  for (const i of idle.found) {
    const pk = partitionKeyOf(o.connector, i.key);
    const list = byPartition.get(pk);
    if (list) list.push(i);
    else byPartition.set(pk, [i]);
  }
  const remove = await revisionRemover(o.bus, bucket, o.log);
  const result: FoldResult = { looked: idle.looked, folded: 0, kept: 0, partitions: byPartition.size, refreshed: 0, removal: remove.how };
  const queue = [...byPartition.entries()];
  const stale = idle.stale.filter((pk) => !byPartition.has(pk)); // a partition written now is fresh anyway
  const parallel = o.parallel ?? 16;
  const worker = async () => {
    for (let next = queue.pop(); next; next = queue.pop()) {
      const [pk, entries] = next;
      const applied = entries.filter((i) => i.applied > 0);
      if (applied.length) await mergeIntoPartition(kv, pk, o.connector, applied);
      // only now may the keys go: a reader that finds no key reads the partition, which already holds them
      for (const i of entries) {
        if (await remove(i.key, i.revision)) result.folded++;
        else result.kept++; // the folded revision is gone: the key was written since (and stays) or removed meanwhile
      }
    }
  };
  const refresher = async () => {
    for (let pk = stale.pop(); pk; pk = stale.pop()) {
      const e = await kv.get(pk);
      if (e?.operation !== 'PUT') continue;
      try {
        await kv.update(pk, e.value, e.revision);
        result.refreshed++;
      } catch (err) {
        if (!isCasConflict(err)) throw err; // a folder wrote it meanwhile: fresh
      }
    }
  };
  await Promise.all([...Array.from({ length: Math.min(parallel, queue.length) }, worker), ...Array.from({ length: Math.min(4, stale.length) }, refresher)]);
  // only a pass that got through moves on: a failed one is read again by the next
  cursor.idle = idle.next.idle;
  cursor.refresh = idle.next.refresh;
  if (result.folded > 0) o.log?.info({ connector: o.connector, ...result }, 'idle entities folded into partition values');
  return result;
}

let purgeWarned = false;

/**
 * Removes a key's folded revision and nothing newer. KV keeps one revision per key, so if the key was written since,
 * the folded revision is gone already and the newer one stays (false). By sequence where the bucket allows it
 * (`deny_delete` false, as applyTopology makes bus_versions): O(1) per key. Else (a bucket made before) a purge of the
 * key's subject below revision + 1, which nats-server 2.9 answers by looking through the stream's blocks — 0.6 ms per
 * key at 20,000 keys, over 100 ms at 50,000 — so the fold may fall behind the entities going idle: said once, loudly.
 */
async function revisionRemover(bus: Bus, bucket: string, log: Logger | undefined):
  Promise<{ how: FoldResult['removal']; (key: string, revision: number): Promise<boolean> }> {
  const stream = `KV_${bucket}`;
  const bySequence = (await bus.jsm.streams.info(stream)).config.deny_delete === false;
  if (bySequence) {
    return Object.assign(async (_key: string, revision: number) => {
      try {
        return await bus.jsm.streams.deleteMessage(stream, revision, false);
      } catch (err) {
        if (isNoMessage(err)) return false;
        throw err;
      }
    }, { how: 'sequence' as const });
  }
  if (!purgeWarned) {
    purgeWarned = true;
    log?.warn({ bucket, stream }, `${bucket} was made before its messages could be deleted by sequence (deny_delete): the fold removes folded keys ` +
      'by purging their subjects, which slows down as the bucket grows (over 100 ms per key at 50,000 keys on nats-server 2.9). ' +
      'Recreate the bucket to fold fast: see docs/ordering.md "Applied versions at scale"');
  }
  return Object.assign(async (key: string, revision: number) => {
    const r = await bus.jsm.streams.purge(stream, { filter: `$KV.${bucket}.${key}`, seq: revision + 1 });
    return r.purged > 0;
  }, { how: 'purge' as const });
}

/** Adds entities to a partition value (compare-and-set, the higher version wins). */
async function mergeIntoPartition(kv: KV, pk: string, connector: string, entries: Idle[]): Promise<void> {
  for (let tries = 0; ; tries++) {
    const e = await kv.get(pk);
    const value: PartitionValue = e?.operation === 'PUT' && e.length > 0 ? (e.json() as PartitionValue) : { e: {} };
    for (const i of entries) {
      const part = entityPart(connector, i.key);
      value.e[part] = Math.max(value.e[part] ?? 0, i.applied);
    }
    try {
      const data = JSON.stringify(value);
      if (e) await kv.update(pk, data, e.revision);
      else await kv.create(pk, data);
      return;
    } catch (err) {
      if (!isCasConflict(err) || tries >= 20) throw err; // another folder wrote the partition: merge again
    }
  }
}

/**
 * The connector's entity keys idle since before `beforeMs` and its partition values written before `refreshBeforeMs`,
 * read from the cursor's positions on (the values written since the last pass), and where the next pass starts.
 */
async function listIdle(bus: Bus, bucket: string, connector: string, cursor: FoldCursor, beforeMs: number, refreshBeforeMs: number, max: number, maxRefresh: number):
  Promise<{ looked: number; found: Idle[]; stale: string[]; next: FoldCursor }> {
  const stream = `KV_${bucket}`;
  const prefix = `$KV.${bucket}.`;
  const ours = `${prefix}${connector}.`;
  const partitions = `${ours}${FOLD_TOKEN}.`;
  const found: Idle[] = [];
  let looked = 0;
  const idleAt = { seq: cursor.idle };
  for await (const m of writtenBefore(bus, stream, idleAt, beforeMs)) {
    if (!m.subject.startsWith(ours) || m.subject.startsWith(partitions)) continue;
    looked++;
    const op = m.headers?.get('KV-Operation');
    if (op === 'DEL' || op === 'PURGE' || m.data.length === 0) continue;
    const state = m.json<{ applied?: number; lease?: unknown; inDoubt?: unknown }>();
    // an attempt in flight or in doubt keeps its record: only a plain applied version is folded
    if (state.lease !== undefined || state.inDoubt !== undefined) continue;
    // applied 0 (an attempt that failed before anything landed) says nothing a missing key does not: removed, not merged
    const applied = typeof state.applied === 'number' && state.applied > 0 ? state.applied : 0;
    found.push({ key: m.subject.slice(prefix.length), revision: m.seq, applied });
    if (found.length >= max) break;
  }
  const stale: string[] = [];
  const refreshAt = { seq: cursor.refresh };
  if (maxRefresh > 0) {
    for await (const m of writtenBefore(bus, stream, refreshAt, refreshBeforeMs)) {
      if (!m.subject.startsWith(partitions)) continue;
      stale.push(m.subject.slice(prefix.length));
      if (stale.length >= maxRefresh) break;
    }
  }
  return { looked, found, stale, next: { idle: idleAt.seq, refresh: refreshAt.seq } };
}

/**
 * The values of `stream` from `at.seq` on that were written before `beforeMs` (whole milliseconds, as `now()`: one stored
 * in the millisecond a pass began counts as before it), in order; `at.seq` follows, ending where the next read starts —
 * at the first value written later (it and every later one are too recent), or after the last one read. Unfiltered:
 * nats-server 2.9 counts a filtered consumer's pending messages at its creation by going through the stream's blocks
 * under the stream's lock (0.1–0.3 s at 100,000 keys, every delivery's lease write waiting); unfiltered, a subtraction.
 */
async function* writtenBefore(bus: Bus, stream: string, at: { seq: number }, beforeMs: number): AsyncGenerator<JsMsg> {
  for await (const m of readRange(bus.js, bus.jsm, stream, { fromSeq: at.seq })) {
    if (Math.floor(Number(m.info.timestampNanos) / 1e6) > beforeMs) {
      at.seq = m.seq;
      return;
    }
    at.seq = m.seq + 1;
    yield m;
  }
}

export interface FolderOptions extends Omit<FoldOptions, 'afterList'> {
  /** How often a pass runs. */
  everyMs: number;
  /** After each pass this process ran (metrics). */
  onPass?: (r: FoldResult) => void;
}

/**
 * Runs fold passes every `everyMs` while the process lives, one process per connector at a time (a
 * lease `fold.<connector>` in `bus_leases`; the others skip the pass). A failed pass is logged and
 * tried again at the next one: folding is housekeeping, never on a delivery's path.
 */
export function startFolder(o: FolderOptions): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const cursor: FoldCursor = { idle: 0, refresh: 0 }; // the first pass reads every key; the later ones what was written since
  const pass = async () => {
    const lease = await acquireLease({ kv: await o.bus.kv(o.bus.names.kv.leases), key: `fold.${o.connector}`, ttlMs: Math.max(30_000, o.everyMs), log: o.log });
    if (!lease) return;
    try {
      o.onPass?.(await foldIdleVersions({ ...o, cursor }));
    } finally {
      await lease.release();
    }
  };
  const timer = setInterval(() => {
    running ??= pass()
      .catch((err: unknown) => o.log?.warn({ connector: o.connector, err: describeError(err) }, 'fold pass failed; the next pass tries again'))
      .finally(() => { running = undefined; });
  }, o.everyMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
