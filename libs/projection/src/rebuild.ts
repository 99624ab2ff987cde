import { decodeEnvelope } from '@bus/envelope';
import { BusError } from '@bus/errors';
import { createLogger, type Logger } from '@bus/observability';
import { EntryCache } from './apply.js';
import { deleteGenerations, ensureActive, ensureBuckets, writeCheckpoint } from './generations.js';
import { takeRebuildLease } from './lease.js';
import { createPool } from './pool.js';
import { type ApplyOutcome, type ProjectedEntity, recordOf } from './record.js';
import type { RebuildCounts, RebuildOptions, RebuildProgress, RebuildResult } from './rebuild-options.js';
import { begin, eventsStreamExists, seed } from './rebuild-start.js';
import { endOfFinalPass, switchToRebuilt } from './switch.js';
import { createWriter } from './writer.js';
import { casBatchWriter, casWriter } from './cas.js';

const silent = createLogger({ service: 'projection', level: 'silent' });
/** Events asked for per pull at most: the writer folds an entity's events in one pull into one write. */
const BATCH = 512;
/** Pull batches dispatched ahead of the checkpoint at most. */
const POOL_WINDOW = 4;

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
  // a few pull batches ahead of the checkpoint: writes in flight are bounded by the writer
  const pool = createPool(ckpt.lastSeq, POOL_WINDOW);
  const cache = new EntryCache(); // this rebuild is its bucket's only writer until the switch: most writes need no read
  const maxInFlight = o.concurrency ?? 512;
  // before the switch nothing else writes this bucket (the lease fences a second rebuild): writes go in chains with one
  // acknowledgement each (cas.ts), as many in flight as pull batches may be (the pool's window), each a pull batch's size
  const batched = ckpt.state === 'replaying';
  const writer = createWriter(kv, {
    cache, cas: casWriter(o.bus.nc, ckpt.bucket), maxInFlight: batched ? POOL_WINDOW * maxInFlight : maxInFlight,
    batch: batched ? casBatchWriter(o.bus.nc, ckpt.bucket) : undefined, maxChain: maxInFlight,
  });
  // no more asked for at once than can be written at once: the checkpoint (and progress) stays close behind the reads
  const batch = Math.min(BATCH, maxInFlight);
  const count = (outcome: ApplyOutcome) => void counts[outcome]++;
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
    interrupted: false, events, writes: writer.stats().writes, counts, elapsedMs: Math.round(performance.now() - started), deletedGenerations: deleted,
    keptPrevious: o.keepPrevious === true && previous !== undefined, ...extra,
  });

  if (!ckpt.seeded) {
    await progress(true);
    const seeded = await seed(o.bus, active, ckpt, log, aborted, writer);
    counts.seeded = seeded;
    checkLease();
    if (aborted()) return finish({ interrupted: true });
    ckpt.seeded = true;
    phase = 'replaying';
    await writeCheckpoint(o.bus, ckpt);
  }

  const consumer = await o.bus.js.consumers.get(o.bus.names.streams.events, { opt_start_seq: ckpt.lastSeq + 1 });
  const catchUp = o.catchUpEvents ?? 256;
  try {
    // before the switch: replay until at most catchUp events remain (a busy stream is never at
    // exactly zero); after it: until every sequence up to `stopAt` is dispatched (see switch.ts)
    let stopAt = ckpt.state === 'switched' ? await endOfFinalPass(o.bus) : undefined;
    let pending = (await consumer.info()).num_pending; // read after stopAt: it counts at least up to there
    let dispatched = ckpt.lastSeq;
    lastSeq = ckpt.lastSeq + pending;
    await progress(true);
    await o.onStep?.(ckpt.state === 'switched' ? 'final-pass' : 'replay');
    // after the switch `pending > 0` only stops a pass whose last sequences no longer exist (deleted)
    const more = () => (stopAt === undefined ? pending > catchUp : dispatched < stopAt && pending > 0);
    for (;;) {
      while (more() && !aborted()) {
        const room = stopAt === undefined ? pending : Math.min(pending, stopAt - dispatched);
        await pool.slot();
        const msgs = await consumer.fetch({ max_messages: Math.min(room, batch), expires: 5_000 });
        // a pull batch goes to the writer whole: one write per entity, all sent together (writer.ts)
        const recs: ProjectedEntity[] = [];
        const now = new Date(); // updatedAt is set when written: not worth a Date per event here
        let got = 0;
        for await (const m of msgs) {
          got++;
          events++;
          pending = m.info.pending;
          dispatched = m.seq;
          lastSeq = m.seq + pending;
          let env: ReturnType<typeof decodeEnvelope> | undefined;
          try {
            env = decodeEnvelope(m.data);
          } catch (err) {
            counts.unreadable++;
            log.warn({ err, seq: m.seq }, 'event cannot be decoded; skipped by the rebuild (the live projector dead-letters it)');
          }
          if (env) {
            recs.push(recordOf(env, m.seq, now));
          }
          if (aborted() || (stopAt !== undefined && m.seq >= stopAt)) break;
        }
        if (got > 0) pool.track(dispatched, writer.submitAll(recs, count, log));
        await progress();
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
      await o.onStep?.('caught-up');
      writer.perKey(); // live projectors write here once the pointer moves
      previous = (await switchToRebuilt(o.bus, ckpt, log, () => o.onStep?.('switching'))) ?? previous;
      ckpt.state = 'switched';
      phase = 'catching-up';
      await writeCheckpoint(o.bus, ckpt);
      await o.onStep?.('switched');
      // read after the switch: every event a projector may have put into the old generation only is at or below it
      stopAt = await endOfFinalPass(o.bus);
      // the count of the last fetch is from before the switch (often 0): ask again, or the final pass may not run at all
      pending = (await consumer.info()).num_pending;
      await progress(true);
      await o.onStep?.('final-pass');
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
  if (!o.keepPrevious) {
    // the new generation is active and holds every event: the old one's keys only cost server memory now. A projector
    // still writing into it gets an error, reads the pointer again and retries into the active one (projector.ts)
    deleted.push(...(await deleteGenerations(o.bus, [ckpt.generation], log).catch((err) => {
      log.warn({ err }, 'projection: could not delete the replaced generation; the next rebuild deletes it');
      return [] as number[];
    })));
  }
  return finish({});
}
