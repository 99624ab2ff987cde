import { type Bus, type Consumption, done, ensureConsumer } from '@bus/bus';
import { decodeEnvelope, type Envelope } from '@bus/envelope';
import { BusError } from '@bus/errors';
import type { Logger } from '@bus/observability';
import { workerConsumer } from '@bus/streams';
import { applyRecord, EntryCache } from './apply.js';
import { casWriter } from './cas.js';
import { createWriter, type Writer } from './writer.js';
import { type ActiveGeneration, ensureActive, readActive } from './generations.js';
import type { ProjectionMetrics } from './metrics.js';
import { type ApplyCounts, type ApplyOutcome, keyOfRecord, type ProjectedEntity, recordOf } from './record.js';

export interface ProjectorOptions {
  /** Required. A connected bus whose topology is applied. */
  bus: Bus;
  /** Required. */
  log: Logger;
  /** Optional: counts per outcome, conflicts, generation. */
  metrics?: ProjectionMetrics;
  /**
   * Events handled at once by this process. Default 256: those of one entity among them make one
   * KV write, and the writes go out together (each message is acknowledged once its write is).
   */
  concurrency?: number;
  /** KV writes in flight at once (each a different entity). Default 512. */
  maxWritesInFlight?: number;
}

/** The live projector's durable consumer on EVENTS, shared by every projector process. */
export const PROJECTION_DURABLE = 'projection';

/**
 * Coalesced reads: each caller gets the result of a read that *started after* it called, and
 * callers arriving together share one. The projector's pointer check costs about one read per
 * round trip, not one per event.
 */
export function freshReader<T>(read: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  let queued: Promise<T> | undefined;
  const start = (): Promise<T> => {
    const p = read();
    inFlight = p;
    const clear = () => {
      if (inFlight === p) inFlight = undefined;
    };
    p.then(clear, clear);
    return p;
  };
  return () => {
    if (!inFlight) return start();
    // the read in flight may have been sent before our caller's write: take the next one
    queued ??= inFlight.then(() => undefined, () => undefined).then(() => {
      queued = undefined;
      return start();
    });
    return queued;
  };
}

/** Pointer moves followed while applying one event before it is retried later (only back-to-back rebuilds move it twice). */
const MAX_HOPS = 4;

/**
 * The live projection: a durable consumer on EVENTS that applies each event to the active
 * generation's bucket (newer version wins; compare-and-set, so any number of processes may run).
 *
 * Following a rebuild's switch: after each write the projector reads the pointer — a read that
 * began after the write, from the control bucket's stream leader (readActive). If it moved, the
 * event is applied to the new generation too. If it had not moved, the event was handed out
 * before the switch, and the rebuild's final pass (up to a sequence read after the switch)
 * applies it. Either way the new generation has it; the whole argument is in switch.ts.
 */
export function createProjector(o: ProjectorOptions) {
  const counts: ApplyCounts = { applied: 0, stale: 0, duplicate: 0 };
  let active: ActiveGeneration | undefined;
  const readPointer = freshReader(async () => (await readActive(o.bus))?.value);

  // entries this process wrote or read in the active generation: most writes then need no read first
  // (see EntryCache). Bound to its generation: an entry of another bucket must never seed it, or a
  // write the new generation lacks could be taken for one it has (and skipped as a duplicate). The
  // writer folds the events handled together per entity and sends their writes together (writer.ts).
  type Current = { generation: number; entries: EntryCache; writer?: Writer };
  let current: Current = { generation: 0, entries: new EntryCache(50_000) };
  let writes = 0; // of writers of earlier generations
  const onConflict = () => o.metrics?.conflicts.inc();
  const onWrite = () => o.metrics?.writes.inc();
  const use = (a: ActiveGeneration) => {
    if (active && active.generation !== a.generation) {
      o.log.info({ from: active.generation, to: a.generation }, 'projection: now writing into the new generation');
    }
    if (current.generation !== a.generation) {
      writes += current.writer?.stats().writes ?? 0;
      current = { generation: a.generation, entries: new EntryCache(50_000) };
    }
    active = a;
    o.metrics?.generation.set(a.generation);
    return a;
  };

  async function applyTo(gen: ActiveGeneration, rec: ProjectedEntity, log: Logger | (() => Logger)): Promise<ApplyOutcome> {
    // taken before any await: a switch seen by another handler meanwhile must not hand this write the new generation's cache.
    // Another generation's write goes without a cache (it reads the entry first): correct, and rare.
    const mine = current.generation === gen.generation ? current : undefined;
    const kv = await o.bus.kv(gen.bucket);
    if (!mine) {
      return applyRecord(kv, keyOfRecord(rec), rec, { log, onConflict, onWrite: () => {
        writes++;
        onWrite();
      } });
    }
    mine.writer ??= createWriter(kv, { cache: mine.entries, maxInFlight: o.maxWritesInFlight, onConflict, onWrite, cas: casWriter(o.bus.nc, gen.bucket) });
    return mine.writer.submit(keyOfRecord(rec), rec, log);
  }

  /** Applies one event (stream sequence `seq`) to the projection; returns what it did. */
  async function apply(env: Envelope, seq: number, log: Logger | (() => Logger) = o.log): Promise<ApplyOutcome> {
    const rec = recordOf(env, seq);
    let outcome: ApplyOutcome;
    try {
      let gen = active ?? use(await ensureActive(o.bus, o.log));
      outcome = await applyTo(gen, rec, log);
      // a switch can happen between any read of the pointer and a write: check after the write
      for (let hops = 0; ; hops++) {
        const now = (await readPointer()) ?? (await ensureActive(o.bus, o.log));
        if (now.generation === gen.generation) break;
        if (hops === MAX_HOPS) throw new BusError('PROJECTION_POINTER_UNREADABLE', 'transient', `the projection pointer moved ${MAX_HOPS} times while one event was applied; the event is tried again`);
        gen = use(now);
        outcome = await applyTo(gen, rec, log);
      }
    } catch (err) {
      active = undefined; // look the pointer up again before the retry: the bucket may be gone
      if (err instanceof BusError) throw err;
      throw new BusError('PROJECTION_WRITE_FAILED', 'transient',
        `could not write ${env.source} ${env.entity.type} ${env.entity.id} v${env.version} to the projection (${(err as Error).message}); retried with backoff`, { cause: err });
    }
    counts[outcome]++;
    o.metrics?.events.inc({ outcome });
    return outcome;
  }

  return {
    apply,
    /** Outcomes in this process since it started. */
    counts: (): ApplyCounts => ({ ...counts }),
    /** KV writes this process made (fewer than events when events of one entity were handled together). */
    writes: () => writes + (current.writer?.stats().writes ?? 0),
    /** The generation this process writes into (undefined before the first event or start()). */
    generation: () => active?.generation,
    /** Ensures the active generation and the durable consumer, and starts consuming EVENTS. */
    async start(): Promise<Consumption> {
      use(await ensureActive(o.bus, o.log));
      const stream = o.bus.names.streams.events;
      // no filter subject: the whole stream (nats-server 2.9 refuses an empty one)
      await ensureConsumer(o.bus.jsm, workerConsumer({
        stream, durable: PROJECTION_DURABLE, description: 'entity projection: latest version and fields per source and entity',
      }));
      return o.bus.consume<Envelope>({
        stream, durable: PROJECTION_DURABLE, stage: 'projection', concurrency: o.concurrency ?? 256, decode: decodeEnvelope,
        handler: async (env, ctx) => {
          await apply(env, ctx.seq, () => ctx.log);
          return done();
        },
      });
    },
  };
}
export type Projector = ReturnType<typeof createProjector>;
