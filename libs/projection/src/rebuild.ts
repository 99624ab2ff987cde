import type { Bus } from '@bus/bus';
import { decodeEnvelope } from '@bus/envelope';
import { BusError } from '@bus/errors';
import { createLogger, type Logger } from '@bus/observability';
import { applyRecord, EntryCache } from './apply.js';
import { ensureActive, ensureBuckets, markReplaced, readActive, switchActive, writeCheckpoint } from './generations.js';
import { takeRebuildLease } from './lease.js';
import { createPool } from './pool.js';
import { type ApplyCounts, keyOfRecord, projectionKey, recordOf } from './record.js';
import { begin, eventsStreamExists, seed } from './rebuild-start.js';

export interface RebuildOptions {
  /** Required. A connected bus. */
  bus: Bus;
  /** Default: silent. */
  log?: Logger;
  /** First EVENTS sequence to replay. Default: the stream's first. Entries from events before it are copied from the active generation. */
  fromSeq?: number;
  /** Instead of fromSeq: replay events stored since this time (ms since epoch); the server finds the sequence. */
  sinceMs?: number;
  /** Abandon an unfinished rebuild (its bucket is deleted) and start a new one. Default false: it is resumed. */
  restart?: boolean;
  /** Called every `progressEveryMs` and when the phase changes. */
  onProgress?: (p: RebuildProgress) => void;
  /** Default 1 000 ms; also how often the checkpoint is saved. */
  progressEveryMs?: number;
  /** Aborting stops the rebuild at a checkpoint; a later call resumes there. */
  signal?: AbortSignal;
  /** Events applied at once. Default 64. */
  concurrency?: number;
  /**
   * Caught up = fewer than this many events left (a busy stream is never at exactly zero):
   * then the pointer switches and the final pass applies the rest. Default 256.
   */
  catchUpEvents?: number;
}

export interface RebuildProgress {
  phase: 'seeding' | 'replaying' | 'catching-up' | 'done' | 'interrupted';
  generation: number;
  /** Every event up to this sequence is applied. */
  seq: number;
  /** EVENTS' last sequence, as last seen. */
  lastSeq: number;
  /** Events read by this call. */
  events: number;
  eventsPerSec: number;
  counts: RebuildCounts;
}

/** Outcomes, plus entries copied from the active generation and events that could not be decoded (skipped, counted). */
export type RebuildCounts = ApplyCounts & { seeded: number; unreadable: number };

export interface RebuildResult {
  generation: number;
  /** The generation it replaced (switched only). */
  previous?: number;
  /** First sequence replayed by this generation, and where this call started (after a resume: the checkpoint + 1). */
  fromSeq: number;
  startedAtSeq: number;
  /** The checkpoint: every event up to here is applied. */
  lastSeq: number;
  resumed: boolean;
  switched: boolean;
  interrupted: boolean;
  events: number;
  counts: RebuildCounts;
  elapsedMs: number;
  /** Old generation buckets deleted when this rebuild started. */
  deletedGenerations: number[];
}

const silent = createLogger({ service: 'projection', level: 'silent' });

/**
 * Rebuilds the projection by replaying EVENTS into a fresh generation bucket, with the same
 * apply as the live projector, and makes it active once it has caught up with the stream;
 * then a final pass from the checkpoint applies what arrived meanwhile. Interrupt it with
 * `signal`: a later call resumes from the checkpoint kept in KV. One rebuild at a time.
 */
export async function rebuildProjection(o: RebuildOptions): Promise<RebuildResult> {
  const log = o.log ?? silent;
  await eventsStreamExists(o.bus);
  await ensureBuckets(o.bus);
  const lease = await takeRebuildLease(o.bus, log);
  try {
    return await run(o, log, lease.lost);
  } finally {
    await lease.release();
  }
}

async function run(o: RebuildOptions, log: Logger, leaseLost: AbortSignal): Promise<RebuildResult> {
  // lost (another process took over after this one stalled for 30 s): stop, and write nothing more
  const checkLease = () => {
    if (leaseLost.aborted) throw leaseLost.reason;
  };
  const started = performance.now();
  const active = await ensureActive(o.bus, log);
  const { ckpt, resumed, deleted } = await begin(o, log, active);
  const startedAtSeq = ckpt.lastSeq + 1;
  const kv = await o.bus.kv(ckpt.bucket);
  const counts: RebuildCounts = { applied: 0, stale: 0, duplicate: 0, seeded: 0, unreadable: 0 };
  const pool = createPool(ckpt.lastSeq, o.concurrency ?? 64);
  const cache = new EntryCache(); // this rebuild is its bucket's only writer until the switch: most writes need no read
  const aborted = () => o.signal?.aborted === true || leaseLost.aborted;
  let events = 0;
  let lastSeq = ckpt.lastSeq;
  let phase: RebuildProgress['phase'] = ckpt.seeded ? (ckpt.state === 'switched' ? 'catching-up' : 'replaying') : 'seeding';
  let previous = ckpt.state === 'switched' ? active.previous : undefined; // resumed after its switch

  let lastTick = 0;
  const progress = async (force = false) => {
    if (!force && performance.now() - lastTick < (o.progressEveryMs ?? 1_000)) return;
    lastTick = performance.now();
    checkLease();
    const seconds = (performance.now() - started) / 1000;
    if (phase !== 'seeding') {
      ckpt.lastSeq = pool.watermark;
      await writeCheckpoint(o.bus, ckpt);
    }
    o.onProgress?.({ phase, generation: ckpt.generation, seq: pool.watermark, lastSeq: Math.max(lastSeq, pool.watermark), events,
      eventsPerSec: seconds > 0 ? Math.round(events / seconds) : 0, counts: { ...counts } });
  };
  const finish = (extra: Partial<RebuildResult>): RebuildResult => ({
    generation: ckpt.generation, previous, fromSeq: ckpt.fromSeq, startedAtSeq, lastSeq: ckpt.lastSeq, resumed, switched: ckpt.state !== 'replaying',
    interrupted: false, events, counts, elapsedMs: Math.round(performance.now() - started), deletedGenerations: deleted, ...extra,
  });

  if (!ckpt.seeded) {
    await progress(true);
    const seeded = await seed(o.bus, active, ckpt, kv, log, aborted, cache);
    counts.seeded = seeded;
    checkLease();
    if (aborted()) return finish({ interrupted: true });
    ckpt.seeded = true;
    phase = 'replaying';
    await writeCheckpoint(o.bus, ckpt);
  }

  const consumer = await o.bus.js.consumers.get(o.bus.names.streams.events, { opt_start_seq: ckpt.lastSeq + 1 });
  const lastStored = async () => (await o.bus.jsm.streams.info(o.bus.names.streams.events)).state.last_seq;
  const catchUp = o.catchUpEvents ?? 256;
  try {
    let pending = (await consumer.info(true)).num_pending;
    let dispatched = ckpt.lastSeq;
    // before the switch: replay until fewer than catchUp events remain (a busy stream is never
    // at exactly zero); after it: up to the end of the stream as read after the switch
    let stopAt = ckpt.state === 'switched' ? await lastStored() : undefined;
    lastSeq = ckpt.lastSeq + pending;
    await progress(true);
    const more = () => (stopAt === undefined ? pending > catchUp : dispatched < stopAt && pending > 0);
    for (;;) {
      while (more() && !aborted()) {
        const room = stopAt === undefined ? pending : Math.min(pending, stopAt - dispatched);
        const msgs = await consumer.fetch({ max_messages: Math.min(room, 512), expires: 5_000 });
        let got = 0;
        for await (const m of msgs) {
          got++;
          events++;
          pending = m.info.pending;
          dispatched = m.seq;
          lastSeq = m.seq + pending;
          await pool.slot();
          let env: ReturnType<typeof decodeEnvelope>;
          try {
            env = decodeEnvelope(m.data);
          } catch (err) {
            counts.unreadable++;
            log.warn({ err, seq: m.seq }, 'event cannot be decoded; skipped by the rebuild (the live projector dead-letters it)');
            pool.skip(m.seq);
            continue;
          }
          const rec = recordOf(env, m.seq);
          pool.run(m.seq, projectionKey(env.source, env.entity.type, env.entity.id), async () => {
            counts[await applyRecord(kv, keyOfRecord(rec), rec, { log, cache })]++;
          });
          await progress();
          if (aborted() || (stopAt !== undefined && m.seq >= stopAt)) break;
        }
        if (got === 0) pending = (await consumer.info()).num_pending;
      }
      await pool.drain();
      ckpt.lastSeq = pool.watermark;
      checkLease();
      if (aborted()) {
        phase = 'interrupted';
        await progress(true);
        log.info({ generation: ckpt.generation, lastSeq: ckpt.lastSeq }, 'projection rebuild interrupted; run it again to resume');
        return finish({ interrupted: true });
      }
      if (ckpt.state !== 'replaying') break; // the final pass after the switch is done
      // caught up with EVENTS: make this generation the one everybody reads and the projector writes
      const current = await readActive(o.bus);
      if (current && current.value.generation !== ckpt.generation) {
        previous = current.value.generation;
        await switchActive(o.bus, { generation: ckpt.generation, bucket: ckpt.bucket, since: new Date().toISOString(), previous, by: 'rebuild' }, current.revision);
        await markReplaced(o.bus, current.value, ckpt.generation, log);
        log.info({ generation: ckpt.generation, previous, seq: ckpt.lastSeq }, 'projection switched to the rebuilt generation');
      }
      ckpt.state = 'switched';
      phase = 'catching-up';
      await writeCheckpoint(o.bus, ckpt);
      // read after the switch: whatever a projector wrote into the old generation without seeing it is stored up to here
      stopAt = await lastStored();
      await progress(true);
    }
  } catch (err) {
    await pool.drain().catch(() => undefined);
    ckpt.lastSeq = pool.watermark;
    if (!leaseLost.aborted) await writeCheckpoint(o.bus, ckpt).catch(() => undefined);
    throw err instanceof BusError ? err : new BusError('PROJECTION_REBUILD_FAILED', 'transient',
      `projection rebuild of generation ${ckpt.generation} stopped at sequence ${ckpt.lastSeq}: ${(err as Error).message}. Run it again to resume from there`, { cause: err });
  } finally {
    await consumer.delete().catch(() => undefined);
  }
  ckpt.state = 'done';
  phase = 'done';
  await progress(true);
  log.info({ generation: ckpt.generation, lastSeq: ckpt.lastSeq, events }, 'projection rebuild done');
  return finish({});
}
