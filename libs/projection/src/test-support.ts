import { type Bus, connectBus, loadBusConfig } from '@bus/bus';
import { createEnvelope, type Envelope } from '@bus/envelope';
import { createLogger } from '@bus/observability';
import { topology } from '@bus/streams';
import { uniquePrefix, waitFor } from '@bus/testkit';
import { PROJECTION_DURABLE } from './projector.js';
import { readGeneration } from './read.js';
import { type ProjectedEntity, projectionKey } from './record.js';

/** Test-only helpers (not exported by the package). */
export const silent = createLogger({ service: 'projection-test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** A bus on its own prefix with the topology applied. */
export async function busOn(url: string, prefix = uniquePrefix(), name = 'projection-test'): Promise<Bus> {
  const bus = await connectBus({ config: loadBusConfig({ NATS_URL: url, BUS_PREFIX: prefix }), name, log: silent });
  await bus.applyTopology(topology({ prefix }));
  return bus;
}

/** Deletes every stream and bucket of the bus's prefix (keeps one shared server light across many runs). */
export async function dropAll(bus: Bus): Promise<void> {
  const p = bus.config.BUS_PREFIX;
  for await (const name of bus.jsm.streams.names()) {
    if (name.startsWith(`${p.toUpperCase()}_`) || name.startsWith(`KV_${p.toLowerCase()}_`)) await bus.jsm.streams.delete(name);
  }
}

export interface TestEvent {
  source: string;
  type: string;
  id: string;
  version: number;
  data: Record<string, unknown>;
  eventId?: string;
}

export function envelope(e: TestEvent): Envelope {
  return createEnvelope({ type: `${e.type}.updated`, entity: { type: e.type, id: e.id }, version: e.version, data: e.data },
    { source: e.source, ...(e.eventId ? { id: e.eventId } : {}) });
}

/** Publishes `env` with its own id as Nats-Msg-Id, or `msgId` (a different one stores it twice); returns the sequence, or undefined when the stream deduplicated it. */
export async function publish(bus: Bus, env: Envelope, msgId?: string): Promise<number | undefined> {
  const p = await bus.publishEnvelope(bus.names.subjects.event(env.source, env.type), env, { msgId });
  return p.duplicate ? undefined : p.seq;
}

/** Entries of a bucket without `updatedAt` (the one field a rebuild does not reproduce), by key. */
export async function entriesOf(bus: Bus, bucket: string): Promise<Record<string, Omit<ProjectedEntity, 'updatedAt'>>> {
  const out: Record<string, Omit<ProjectedEntity, 'updatedAt'>> = {};
  for await (const { updatedAt: _, ...rest } of readGeneration(bus, bucket)) out[projectionKey(rest.source, rest.entity.type, rest.entity.id)] = rest;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** What the projection must hold for these stored events, written independently of decide(): per entity the highest version, on a tie the first stored. */
export function expected(stored: { env: Envelope; seq: number }[]): Record<string, Omit<ProjectedEntity, 'updatedAt'>> {
  const out = new Map<string, ProjectedEntity>();
  for (const { env, seq } of stored) {
    const key = projectionKey(env.source, env.entity.type, env.entity.id);
    const cand: ProjectedEntity = { source: env.source, entity: env.entity, version: env.version, fields: env.data, eventId: env.id,
      eventType: env.type, eventTime: env.occurredAt, seq, updatedAt: '' };
    const cur = out.get(key);
    if (!cur || env.version > cur.version || (env.version === cur.version && seq < cur.seq)) out.set(key, cand);
  }
  return Object.fromEntries([...out.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, { updatedAt: _, ...rest }]) => [k, rest]));
}

/** Waits until the live projector has handled everything in EVENTS. */
export async function projectorCaughtUp(bus: Bus, timeoutMs = 15_000): Promise<void> {
  await waitFor(async () => {
    const s = await bus.jsm.streams.info(bus.names.streams.events);
    const c = await bus.jsm.consumers.info(bus.names.streams.events, PROJECTION_DURABLE);
    return c.num_pending === 0 && c.num_ack_pending === 0 && c.ack_floor.stream_seq >= s.state.last_seq;
  }, { what: 'the live projector to handle every event in EVENTS', timeoutMs });
}
