import type { Bus } from '@bus/bus';
import type { JsMsg } from '@nats-io/jetstream';
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
    if (v !== undefined && !token.test(v)) throw new Error(`readProjection: ${name} "${v}" must be one subject token (letters, digits, _ or -)`);
  }
  if (!f.source && !f.entityType) return `$KV.${bucket}.>`;
  return `$KV.${bucket}.${f.source ?? '*'}.${f.entityType ?? '*'}.*`;
}

const isDelete = (m: JsMsg) => {
  const op = m.headers?.get('KV-Operation');
  return op === 'DEL' || op === 'PURGE' || m.data.length === 0;
};

/**
 * Streams one generation's entries in the bucket's storage order, `batch` at a time, through
 * an ordered consumer: one pass over the bucket, values included, memory bounded by the batch
 * whatever the size. Stops at the entries present when it started (later writes may or may
 * not be seen). The bucket keeps one value per key, so each entity comes once.
 */
export async function* readGeneration(bus: Bus, bucket: string, f: ProjectionFilter = {}, batch = 256): AsyncGenerator<ProjectedEntity> {
  const c = await bus.js.consumers.get(`KV_${bucket}`, { filter_subjects: subjectFor(bucket, f) });
  try {
    let pending = (await c.info(true)).num_pending;
    while (pending > 0) {
      const msgs = await c.fetch({ max_messages: Math.min(pending, batch), expires: 5_000 });
      let got = 0;
      for await (const m of msgs) {
        got++;
        pending = m.info.pending;
        if (!isDelete(m)) yield m.json<ProjectedEntity>();
      }
      if (got === 0) pending = (await c.info()).num_pending; // an empty fetch (slow server): ask where we are
    }
  } finally {
    await c.delete().catch(() => undefined); // it would go by itself after 5 minutes idle
  }
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
