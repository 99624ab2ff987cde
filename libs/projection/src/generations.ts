import { applyTopology, type Bus } from '@bus/bus';
import { BusError } from '@bus/errors';
import type { Logger } from '@bus/observability';
import { projectionBucket, topology } from '@bus/streams';
import { JetStreamApiError } from '@nats-io/jetstream';
import { type KV, type KvEntry, Kvm } from '@nats-io/kv';
import { isCasConflict } from '@bus/lease';

/**
 * The pointer every reader and the live projector follow (key `active` of the control
 * bucket). Switched only by a rebuild that has caught up with EVENTS.
 */
export interface ActiveGeneration {
  generation: number;
  bucket: string;
  /** When this generation became active (ISO-8601 UTC). */
  since: string;
  /** The generation it replaced; its bucket is deleted once the rebuild is done, or kept, frozen, until the next rebuild starts (keepPrevious). */
  previous?: number;
  by: 'projector' | 'rebuild';
}

/** A rebuild's progress (key `rebuild` of the control bucket): what a second call resumes from. */
export interface RebuildCheckpoint {
  generation: number;
  bucket: string;
  /** First EVENTS sequence replayed; entries from events before it are copied from the generation that was active. */
  fromSeq: number;
  /** Every event up to here is applied to `bucket`. */
  lastSeq: number;
  /** The copy of entries older than fromSeq is complete. */
  seeded: boolean;
  /** replaying → switched (pointer moved, final catch-up pass running) → done. */
  state: 'replaying' | 'switched' | 'done';
  startedAt: string;
  updatedAt: string;
}

export const ACTIVE_KEY = 'active';
export const REBUILD_KEY = 'rebuild';

/**
 * The control bucket, bound so that every read goes to its stream's leader (STREAM.MSG.GET), never
 * a direct get. The buckets allow direct gets (topology), which on R3 any replica may answer, one
 * that is behind included; the pointer decides where events are written, so a pointer read begun
 * after a switch was acknowledged must see it (switch.ts). Said here, not left to the client's
 * default for bound buckets.
 */
const controls = new WeakMap<Bus, Promise<KV>>();
function control(bus: Bus): Promise<KV> {
  let c = controls.get(bus);
  if (!c) {
    c = new Kvm(bus.js).open(bus.names.kv.projection, { allow_direct: false });
    c.catch(() => controls.delete(bus));
    controls.set(bus, c);
  }
  return c;
}

/**
 * Creates the control and leases buckets when missing (the CLI may run before any service
 * applied the topology). Only when missing: an existing bucket is left as it is, never
 * "corrected" from this process's configuration.
 */
export async function ensureBuckets(bus: Bus): Promise<void> {
  const wanted = [bus.names.kv.projection, bus.names.kv.leases];
  const defs = topology({ prefix: bus.config.BUS_PREFIX, replicas: bus.config.BUS_REPLICAS }).kv.filter((b) => wanted.includes(b.bucket));
  const missing = [];
  for (const d of defs) if (!(await bucketExists(bus, d.bucket))) missing.push(d);
  if (missing.length) await applyTopology(bus.jsm, { streams: [], consumers: [], kv: missing });
}

const notFound = (err: unknown) => err instanceof JetStreamApiError && err.code === 10059; // stream not found

async function readJson<T>(bus: Bus, key: string): Promise<{ value: T; revision: number } | undefined> {
  let e: KvEntry | null;
  try {
    e = await (await control(bus)).get(key);
  } catch (err) {
    if (notFound(err)) return undefined; // no control bucket: nothing was ever projected on this bus
    throw err;
  }
  if (e?.operation !== 'PUT' || e.value.length === 0) return undefined;
  return { value: e.json() as T, revision: e.revision };
}

/** The active generation as the control bucket's leader has it (see control), or undefined when no projector has run yet. */
export async function readActive(bus: Bus): Promise<{ value: ActiveGeneration; revision: number } | undefined> {
  return readJson<ActiveGeneration>(bus, ACTIVE_KEY);
}

export async function readCheckpoint(bus: Bus): Promise<RebuildCheckpoint | undefined> {
  return (await readJson<RebuildCheckpoint>(bus, REBUILD_KEY))?.value;
}

export async function writeCheckpoint(bus: Bus, c: RebuildCheckpoint): Promise<void> {
  await (await control(bus)).put(REBUILD_KEY, JSON.stringify({ ...c, updatedAt: new Date().toISOString() }));
}

export async function streamExists(bus: Bus, stream: string): Promise<boolean> {
  try {
    await bus.jsm.streams.info(stream);
    return true;
  } catch (err) {
    if (notFound(err)) return false;
    throw err;
  }
}

export const bucketExists = (bus: Bus, bucket: string) => streamExists(bus, `KV_${bucket}`);

/**
 * How long a generation bucket remembers message ids. Only a rebuild's batched writes carry them
 * (cas.ts: a chain needs each message's predecessor id, not a window), so the server's memory of
 * them is kept to about a second of writes instead of a KV bucket's 2 minutes (~100 B each).
 */
const DUPLICATE_WINDOW_NS = 1_000_000_000;

/** Creates generation `generation`'s bucket (idempotent) and returns its name. */
export async function createGeneration(bus: Bus, generation: number): Promise<string> {
  const def = projectionBucket({ prefix: bus.config.BUS_PREFIX, replicas: bus.config.BUS_REPLICAS }, generation);
  await applyTopology(bus.jsm, { streams: [], consumers: [], kv: [def] });
  const { config } = await bus.jsm.streams.info(`KV_${def.bucket}`);
  if (config.duplicate_window > DUPLICATE_WINDOW_NS) await bus.jsm.streams.update(config.name, { ...config, duplicate_window: DUPLICATE_WINDOW_NS });
  return def.bucket;
}

/**
 * The active generation; on a bus that never had one, generation 1 is created and made
 * active (compare-and-set, so processes starting together agree on it).
 */
export async function ensureActive(bus: Bus, log: Logger): Promise<ActiveGeneration> {
  await ensureBuckets(bus);
  for (let tries = 0; tries < 5; tries++) {
    const found = await readActive(bus);
    if (found) {
      if (!(await bucketExists(bus, found.value.bucket))) {
        await createGeneration(bus, found.value.generation);
        log.error({ generation: found.value.generation, bucket: found.value.bucket },
          'the active projection bucket was missing and is recreated empty; run: bus rebuild projection');
      }
      return found.value;
    }
    const bucket = await createGeneration(bus, 1);
    const first: ActiveGeneration = { generation: 1, bucket, since: new Date().toISOString(), by: 'projector' };
    try {
      await (await control(bus)).create(ACTIVE_KEY, JSON.stringify(first));
      log.info({ generation: 1, bucket }, 'projection: first generation created');
      return first;
    } catch (err) {
      if (!isCasConflict(err)) throw err; // another process made it first: read theirs
    }
  }
  throw new BusError('PROJECTION_POINTER_UNREADABLE', 'transient',
    `the projection pointer (${bus.names.kv.projection}/${ACTIVE_KEY}) kept changing while it was read; try again`);
}

/**
 * Makes `next` the active generation if the pointer is still at `expectedRevision`. A
 * different revision means another rebuild switched meanwhile: nothing is changed.
 */
export async function switchActive(bus: Bus, next: ActiveGeneration, expectedRevision: number): Promise<number> {
  try {
    return await (await control(bus)).update(ACTIVE_KEY, JSON.stringify(next), expectedRevision);
  } catch (err) {
    if (!isCasConflict(err)) throw err;
    throw new BusError('PROJECTION_SWITCH_CONFLICT', 'transient',
      `the projection pointer moved while generation ${next.generation} was being built (another rebuild switched it?). ` +
      `Generation ${next.generation} was not made active; run 'bus rebuild projection --restart' to build a fresh one`, { cause: err });
  }
}

/**
 * Puts a note on a replaced generation's bucket (its stream description): not updated any
 * more, and removed when the next rebuild starts. Best effort: a note that fails changes nothing.
 */
export async function markReplaced(bus: Bus, old: ActiveGeneration, by: number, log: Logger): Promise<void> {
  try {
    const info = await bus.jsm.streams.info(`KV_${old.bucket}`);
    await bus.jsm.streams.update(info.config.name, {
      ...info.config,
      description: `REPLACED projection generation ${old.generation}: generation ${by} is active since ${new Date().toISOString()}. ` +
        'Frozen (nothing writes here any more); deleted when the rebuild is done, or when the next one starts if kept for a rollback.',
    });
  } catch (err) {
    log.warn({ err, bucket: old.bucket }, 'could not note on the replaced projection bucket that it is replaced; it is deleted by the next rebuild all the same');
  }
}

/**
 * Deletes projection generation buckets other than `keep`: the frozen previous generation,
 * and an abandoned unfinished rebuild. Found by name, so a bucket left by a crash goes too.
 */
export async function deleteGenerations(bus: Bus, keep: number[], log: Logger): Promise<number[]> {
  const pattern = /_(\d+)$/;
  const deleted: number[] = [];
  for await (const name of bus.jsm.streams.names()) {
    const m = pattern.exec(name);
    const generation = m ? Number(m[1]) : undefined;
    // by exact name: a prefix-less bus must never match a prefixed one's buckets
    if (generation === undefined || name !== `KV_${bus.names.projectionBucket(generation)}` || keep.includes(generation)) continue;
    await bus.jsm.streams.delete(name);
    deleted.push(generation);
    log.info({ generation, stream: name }, 'projection: old generation deleted');
  }
  return deleted;
}
