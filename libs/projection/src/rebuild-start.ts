import type { Bus } from '@bus/bus';
import { BusError } from '@bus/errors';
import type { Logger } from '@bus/observability';
import {
  type ActiveGeneration, bucketExists, createGeneration, deleteGenerations, type RebuildCheckpoint, readCheckpoint, streamExists, writeCheckpoint,
} from './generations.js';
import { createPool } from './pool.js';
import { readGeneration } from './read.js';
import { keyOfRecord } from './record.js';
import { startSeqOf } from './start.js';
import type { Writer } from './writer.js';

/** How a rebuild starts: where in EVENTS, and whether an unfinished one is picked up. */
export interface BeginOptions {
  bus: Bus;
  fromSeq?: number;
  sinceMs?: number;
  restart?: boolean;
}

/** Starts a new generation (or picks up the unfinished one) and returns its checkpoint. */
export async function begin(o: BeginOptions, log: Logger, active: ActiveGeneration) {
  const found = await readCheckpoint(o.bus);
  const unfinished = found && found.state !== 'done' ? found : undefined;
  if (unfinished && !o.restart) {
    if (await bucketExists(o.bus, unfinished.bucket)) {
      if (o.fromSeq !== undefined || o.sinceMs !== undefined) {
        log.warn({ generation: unfinished.generation, lastSeq: unfinished.lastSeq }, 'resuming the unfinished rebuild; the given start is ignored (use restart to begin anew)');
      }
      return { ckpt: unfinished, resumed: true, deleted: [] as number[] };
    }
    log.warn({ generation: unfinished.generation }, 'the unfinished rebuild\'s bucket is gone; starting a new one');
  }
  const generation = Math.max(active.generation, found?.generation ?? 0) + 1;
  // the frozen previous generation and any abandoned one; the active one stays
  const deleted = await deleteGenerations(o.bus, [active.generation], log);
  const fromSeq = await startSeqOf(o.bus, { fromSeq: o.fromSeq, sinceMs: o.sinceMs });
  const bucket = await createGeneration(o.bus, generation);
  const now = new Date().toISOString();
  const ckpt: RebuildCheckpoint = { generation, bucket, fromSeq, lastSeq: fromSeq - 1, seeded: fromSeq <= 1, state: 'replaying', startedAt: now, updatedAt: now };
  await writeCheckpoint(o.bus, ckpt);
  log.info({ generation, fromSeq, deleted }, 'projection rebuild started');
  return { ckpt, resumed: false, deleted };
}

export async function eventsStreamExists(bus: Bus): Promise<void> {
  const stream = bus.names.streams.events;
  if (await streamExists(bus, stream)) return;
  throw new BusError('PROJECTION_NO_EVENTS', 'permanent',
    `there is no ${stream} stream on ${bus.config.NATS_URL} to replay${bus.config.BUS_PREFIX ? ` (BUS_PREFIX ${bus.config.BUS_PREFIX})` : ''}. ` +
    'Check NATS_URL and BUS_PREFIX; on a new bus run: bus streams apply');
}

/**
 * Copies entries the replay will not reproduce — from events before `fromSeq` (skipped, or
 * no longer in EVENTS) — from the active generation. Idempotent, so a resume simply copies again.
 */
export async function seed(bus: Bus, from: ActiveGeneration, ckpt: RebuildCheckpoint, log: Logger, aborted: () => boolean, writer: Writer): Promise<number> {
  if (from.generation === ckpt.generation || !(await bucketExists(bus, from.bucket))) return 0;
  const pool = createPool(0, 1_024);
  let n = 0;
  for await (const rec of readGeneration(bus, from.bucket)) {
    if (aborted()) break;
    if (rec.seq >= ckpt.fromSeq) continue;
    await pool.slot();
    pool.track(++n, writer.submit(keyOfRecord(rec), rec, log));
  }
  await pool.drain();
  return n;
}
