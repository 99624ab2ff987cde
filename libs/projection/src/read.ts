import { BusError } from '@bus/errors';
import type { Bus } from '@bus/bus';
import { DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import { readActive } from './generations.js';
import { type ProjectedEntity, projectionKey } from './record.js';

/** Which entries to read; both optional (all entries). */
export interface ProjectionFilter {
  /** Only this source. */
  source?: string;
  /** Only this entity type. */
  entityType?: string;
}

const token = /^[A-Za-z0-9_-]+$/;

function subjectFor(bucket: string, f: ProjectionFilter): string {
  for (const [name, v] of Object.entries(f)) {
    if (v !== undefined && !token.test(v)) throw new BusError('PROJECTION_READ_INVALID', 'business', `readProjection: ${name} "${v}" must be one subject token (letters, digits, _ or -)`);
  }
  if (!f.source && !f.entityType) return `$KV.${bucket}.>`;
  return `$KV.${bucket}.${f.source ?? '*'}.${f.entityType ?? '*'}.*`;
}

const isDelete = (m: JsMsg) => {
  const op = m.headers?.get('KV-Operation');
  return op === 'DEL' || op === 'PURGE' || m.data.length === 0;
};

/** One batch of a generation's entries, each with its bucket stream sequence, and the batch's last sequence (a checkpoint). */
export interface ProjectionPage {
  entries: Array<{ entry: ProjectedEntity; seq: number }>;
  lastSeq: number;
}

/**
 * Streams one generation's entries in the bucket's storage order, `batch` at a time, through
 * an ordered consumer (from after `afterSeq`, for a caller resuming from a checkpoint): one
 * pass over the bucket, values included, memory bounded by the batch whatever the size.
 * Stops at the entries present when it started (later writes may or may not be seen). The
 * bucket keeps one value per key, so each entity comes once.
 */
export async function* readGenerationPages(bus: Bus, bucket: string, f: ProjectionFilter = {}, batch = 256, afterSeq = 0): AsyncGenerator<ProjectionPage> {
  const c = await bus.js.consumers.get(`KV_${bucket}`, {
    filter_subjects: subjectFor(bucket, f),
    ...(afterSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterSeq + 1 } : {}),
  });
  try {
    let pending = (await c.info(true)).num_pending;
    while (pending > 0) {
      const msgs = await c.fetch({ max_messages: Math.min(pending, batch), expires: 5_000 });
      const entries: ProjectionPage['entries'] = [];
      let lastSeq = 0;
      for await (const m of msgs) {
        pending = m.info.pending;
        lastSeq = m.seq;
        if (!isDelete(m)) entries.push({ entry: m.json<ProjectedEntity>(), seq: m.seq });
      }
      if (lastSeq === 0) pending = (await c.info()).num_pending; // an empty fetch (slow server): ask where we are
      else yield { entries, lastSeq };
    }
  } finally {
    await c.delete().catch(() => undefined); // it would go by itself after 5 minutes idle
  }
}

/** A generation's entries one at a time (see readGenerationPages). */
export async function* readGeneration(bus: Bus, bucket: string, f: ProjectionFilter = {}, batch = 256): AsyncGenerator<ProjectedEntity> {
  for await (const page of readGenerationPages(bus, bucket, f, batch)) for (const { entry } of page.entries) yield entry;
}

/** The active projection in pages from a bucket sequence on (reconcile's checkpointed pass); nothing when none exists yet. */
export async function* readProjectionPages(bus: Bus, o: ProjectionFilter & { afterSeq?: number; pageSize?: number } = {}): AsyncGenerator<ProjectionPage> {
  const active = await readActive(bus);
  if (!active) return;
  yield* readGenerationPages(bus, active.value.bucket, { source: o.source, entityType: o.entityType }, o.pageSize, o.afterSeq);
}

/**
 * Every entity in the active projection (optionally one source and/or entity type), one at a
 * time, in bounded memory: what reconcile pages through to compare with targets. Nothing
 * when no projection exists yet.
 */
export async function* readProjection(bus: Bus, f: ProjectionFilter = {}): AsyncGenerator<ProjectedEntity> {
  const active = await readActive(bus);
  if (!active) return;
  yield* readGeneration(bus, active.value.bucket, f);
}

/** One entity's entry in the active projection, or undefined when the bus has no event for it. */
export async function getEntity(bus: Bus, source: string, entityType: string, entityId: string): Promise<ProjectedEntity | undefined> {
  const active = await readActive(bus);
  if (!active) return undefined;
  const e = await (await bus.kv(active.value.bucket)).get(projectionKey(source, entityType, entityId));
  return e?.operation === 'PUT' && e.value.length > 0 ? (e.json() as ProjectedEntity) : undefined;
}
