import { type Bus, latestPerSubject } from '@bus/bus';
import { describeError } from '@bus/errors';
import { acquireLease, isCasConflict } from '@bus/lease';
import type { Logger } from '@bus/observability';
import { fnv1a32 } from '@bus/streams';
import type { KV, KvEntry } from '@nats-io/kv';

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
 *
 * Most absent keys are new entities, whose partition holds nothing for them. So a reader need not fetch
 * the partition when it knows the partition was never written: `<connector>.=fold.marked` lists (a
 * bitmap) every partition a folder may have written, and a folder marks a partition there and then
 * waits FOLD_MARK_LEAD_MS before it writes it (so before it removes any key folded into it). A reader
 * that read the marks less than MARKS_TRUSTED_MS before it saw a key absent therefore sees every
 * partition that key can have been folded into: had the fold's mark come later, the key's removal
 * would have come later than the reader's look, by at least the lead (a proof on elapsed time in
 * each process — a paused process only sees older marks and reads the partition — never on clocks
 * across hosts). Deliver reads the marks a few times a second; an unmarked partition costs no read.
 */
export const FOLD_PARTITIONS = 16_384;
const FOLD_TOKEN = '=fold';
/** A folder writes a partition only this long after it was marked (or after it read the mark). */
export const FOLD_MARK_LEAD_MS = 1_500;
/** A reader trusts marks read less than this long ago (below the lead: timers may fire a little early). */
const MARKS_TRUSTED_MS = 1_000;
/** Marks older than this are read again in the background, so a busy reader always holds trusted ones. */
const MARKS_REFRESH_MS = 300;

/** The entity's part of its key (`<type>.<id>`), as it is named inside a partition. */
const entityPart = (connector: string, key: string) => key.slice(connector.length + 1);

/** The number of the partition that holds `key` (a `bus_versions` key of `connector`) once it is folded. */
const partitionOf = (connector: string, key: string) => fnv1a32(entityPart(connector, key)) % FOLD_PARTITIONS;

/** The partition value that holds `key` (a `bus_versions` key of `connector`) once it is folded. */
export function partitionKeyOf(connector: string, key: string): string {
  return `${connector}.${FOLD_TOKEN}.${partitionOf(connector, key)}`;
}

/** The key of `connector`'s marks: which partitions a folder may have written. */
export const marksKeyOf = (connector: string) => `${connector}.${FOLD_TOKEN}.marked`;

/** A marks value: `p`, the bitmap of marked partitions (FOLD_PARTITIONS bits, base64). */
interface MarksValue {
  p: string;
}

const isMarked = (bits: Uint8Array, partition: number) => ((bits[partition >> 3] ?? 0) & (1 << (partition & 7))) !== 0;

function marksOf(e: KvEntry | null): { bits: Uint8Array; revision: number } {
  if (e?.operation !== 'PUT' || e.length === 0) return { bits: new Uint8Array(FOLD_PARTITIONS / 8), revision: e?.revision ?? 0 };
  return { bits: new Uint8Array(Buffer.from((e.json() as MarksValue).p, 'base64')), revision: e.revision };
}

/** Adds partitions to the connector's marks (compare-and-set; marks are only ever added). */
async function markPartitions(kv: KV, connector: string, partitions: number[]): Promise<void> {
  for (let tries = 0; ; tries++) {
    const e = await kv.get(marksKeyOf(connector));
    const { bits } = marksOf(e);
    if (partitions.every((p) => isMarked(bits, p))) return;
    for (const p of partitions) bits[p >> 3]! |= 1 << (p & 7);
    const data = JSON.stringify({ p: Buffer.from(bits).toString('base64') } satisfies MarksValue);
    try {
      if (e) await kv.update(marksKeyOf(connector), data, e.revision);
      else await kv.create(marksKeyOf(connector), data);
      return;
    } catch (err) {
      if (!isCasConflict(err) || tries >= 20) throw err; // another folder marked meanwhile: add ours again
    }
  }
}

interface PartitionValue {
  e: Record<string, number>;
}

const MAX_CACHED_PARTITIONS = 256;

/**
 * Reads folded versions. A partition that is marked is fetched on every read (an entity folded a moment ago must be
 * seen: the bus binds buckets without direct get, so reads go to the stream's leader, never a lagging replica); the
 * parsed value is cached by revision, so a partition that did not change is not parsed again. One that is not marked
 * (per trusted marks) is not fetched: nothing was folded into it.
 */
export function foldedVersions(kv: KV, onGet: () => void = () => {}) {
  const parsed = new Map<string, { revision: number; value: PartitionValue }>();
  /** Per connector: the marks last read, and when that read was sent (monotonic ms). */
  const marks = new Map<string, { bits: Uint8Array; revision: number; sentAt: number }>();
  const reading = new Map<string, Promise<void>>();
  /** Reads the connector's marks; callers at once share one read. */
  function readMarks(connector: string): Promise<void> {
    let r = reading.get(connector);
    if (!r) {
      const sentAt = performance.now();
      onGet();
      r = kv.get(marksKeyOf(connector)).then((e) => {
        const last = marks.get(connector);
        const m = last && last.revision === (e?.revision ?? 0) ? last.bits : marksOf(e).bits; // unchanged: not decoded again
        if (!last || sentAt > last.sentAt) marks.set(connector, { bits: m, revision: e?.revision ?? 0, sentAt });
      }).finally(() => reading.delete(connector));
      reading.set(connector, r);
    }
    return r;
  }
  /** Whether the partition may hold something, per marks read less than MARKS_TRUSTED_MS ago (read now if there are none). */
  async function mayHold(connector: string, partition: number): Promise<boolean> {
    let m = marks.get(connector);
    if (!m || performance.now() - m.sentAt >= MARKS_TRUSTED_MS) {
      await readMarks(connector);
      m = marks.get(connector);
    } else if (performance.now() - m.sentAt >= MARKS_REFRESH_MS) {
      readMarks(connector).catch(() => undefined); // in the background: a failed read only means the next caller reads
    }
    // the age is measured now, after the caller saw the key absent: a late look only makes the marks older
    return !m || performance.now() - m.sentAt >= MARKS_TRUSTED_MS || isMarked(m.bits, partition);
  }
  return {
    /**
     * The applied version folded for `key` (a `bus_versions` key of `connector`); 0 when none is. Call it only after
     * seeing the key absent (or created): a partition is written before the keys folded into it are removed.
     */
    async applied(connector: string, key: string): Promise<number> {
      if (!(await mayHold(connector, partitionOf(connector, key)))) return 0;
      const pk = partitionKeyOf(connector, key);
      onGet();
      const e = await kv.get(pk);
      if (e?.operation !== 'PUT' || e.length === 0) return 0;
      let cached = parsed.get(pk);
      if (cached?.revision !== e.revision) {
        cached = { revision: e.revision, value: e.json() as PartitionValue };
        parsed.delete(pk);
        parsed.set(pk, cached);
        if (parsed.size > MAX_CACHED_PARTITIONS) parsed.delete(parsed.keys().next().value as string);
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
   * Partition values not written for this long are rewritten as they are (default 3 600 000 ms): nats-server 2.9
   * keeps every deleted message of a file block in memory until the whole block is gone, and one old, still-live
   * partition value would pin its block — and the memory of every key folded out of it — for ever.
   */
  refreshMs?: number;
  /** At most this many partition values rewritten per pass. Default 1 000. */
  maxRefresh?: number;
  /** Called between listing and folding (tests: a write that races the fold). */
  afterList?: (keys: string[]) => Promise<void>;
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
  const idle = await listIdle(o.bus, bucket, o.connector, now() - o.idleMs, now() - (o.refreshMs ?? 3_600_000), o.maxPerPass ?? 20_000, o.maxRefresh ?? 1_000);
  await o.afterList?.(idle.found.map((i) => i.key));
  const byPartition = new Map<string, Idle[]>();
  for (const i of idle.found) {
    const pk = partitionKeyOf(o.connector, i.key);
    const list = byPartition.get(pk);
    if (list) list.push(i);
    else byPartition.set(pk, [i]);
  }
  const result: FoldResult = { looked: idle.looked, folded: 0, kept: 0, partitions: byPartition.size, refreshed: 0 };
  // mark before writing, and write only the lead later: a reader that saw an older mark sees the key still there
  const written = [...byPartition.entries()].filter(([, entries]) => entries.some((i) => i.applied > 0)).map(([, entries]) => partitionOf(o.connector, entries[0]!.key));
  if (written.length) {
    await markPartitions(kv, o.connector, written);
    await new Promise((r) => setTimeout(r, FOLD_MARK_LEAD_MS));
  }
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
        if (await removeRevision(o.bus, bucket, i.key, i.revision)) result.folded++;
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
  if (result.folded > 0) o.log?.info({ connector: o.connector, ...result }, 'idle entities folded into partition values');
  return result;
}

/**
 * Removes the key's folded revision and nothing newer: a purge of its subject below revision + 1 (KV streams deny
 * deleting a message by sequence). KV keeps one revision per key, so if the key was written since, the folded
 * revision is gone already and the newer one stays (false).
 */
async function removeRevision(bus: Bus, bucket: string, key: string, revision: number): Promise<boolean> {
  const r = await bus.jsm.streams.purge(`KV_${bucket}`, { filter: `$KV.${bucket}.${key}`, seq: revision + 1 });
  return r.purged > 0;
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

/** The connector's entity keys that are idle since before `beforeMs` (last revision of each, one pass), and partition values to refresh. */
async function listIdle(bus: Bus, bucket: string, connector: string, beforeMs: number, refreshBeforeMs: number, max: number, maxRefresh: number):
  Promise<{ looked: number; found: Idle[]; stale: string[] }> {
  const prefix = `$KV.${bucket}.`;
  const partitions = `${prefix}${connector}.${FOLD_TOKEN}.`;
  const found: Idle[] = [];
  const stale: string[] = [];
  let looked = 0;
  for await (const m of latestPerSubject(bus.js, `KV_${bucket}`, `${prefix}${connector}.>`)) {
    const writtenMs = Number(m.info.timestampNanos) / 1e6;
    if (m.subject.startsWith(partitions)) {
      if (stale.length < maxRefresh && writtenMs < refreshBeforeMs) stale.push(m.subject.slice(prefix.length));
      continue;
    }
    looked++;
    const op = m.headers?.get('KV-Operation');
    if (op === 'DEL' || op === 'PURGE' || m.data.length === 0 || writtenMs > beforeMs) continue;
    const state = m.json<{ applied?: number; lease?: unknown; inDoubt?: unknown }>();
    // an attempt in flight or in doubt keeps its record: only a plain applied version is folded
    if (state.lease !== undefined || state.inDoubt !== undefined) continue;
    // applied 0 (an attempt that failed before anything landed) says nothing a missing key does not: removed, not merged
    const applied = typeof state.applied === 'number' && state.applied > 0 ? state.applied : 0;
    found.push({ key: m.subject.slice(prefix.length), revision: m.seq, applied });
    if (found.length >= max) break;
  }
  return { looked, found, stale };
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
  const pass = async () => {
    const lease = await acquireLease({ kv: await o.bus.kv(o.bus.names.kv.leases), key: `fold.${o.connector}`, ttlMs: Math.max(30_000, o.everyMs), log: o.log });
    if (!lease) return;
    try {
      o.onPass?.(await foldIdleVersions(o));
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
