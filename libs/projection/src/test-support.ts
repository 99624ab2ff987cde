import { isDeepStrictEqual } from 'node:util';
import { type Bus, type Consumption, connectBus, loadBusConfig } from '@bus/bus';
import { createEnvelope, type Envelope } from '@bus/envelope';
import { createLogger } from '@bus/observability';
import { topology } from '@bus/streams';
import { uniquePrefix, waitFor } from '@bus/testkit';
import { createProjector, PROJECTION_DURABLE } from './projector.js';
import { readGeneration } from './read.js';
import { type ProjectedEntity, projectionKey } from './record.js';

/** Test-only helpers (not exported by the package). */
export const silent = createLogger({ service: 'projection-test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** A bus on its own prefix with the topology applied (`replicas` 3 on a cluster). */
export async function busOn(url: string, prefix = uniquePrefix(), name = 'projection-test', replicas = 1): Promise<Bus> {
  const bus = await connectBus({ config: loadBusConfig({ NATS_URL: url, BUS_PREFIX: prefix, BUS_REPLICAS: String(replicas) }), name, log: silent });
  await bus.applyTopology(topology({ prefix, replicas }));
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

/** An event as stored in EVENTS, with its sequence. */
export type Stored = { env: Envelope; seq: number };

/** Publishes `n` events over `entities` entities with shuffled versions; every 7th is stored twice. */
export async function publishMany(bus: Bus, n: number, entities: number, offset = 0): Promise<Stored[]> {
  const envs = Array.from({ length: n }, (_, k) => {
    const i = k + offset;
    return envelope({ source: i % 3 ? 'crm' : 'shop', type: 'contact', id: `c${i % entities}`, version: 1 + ((i * 7919) % 97), data: { i } });
  });
  const stored: Stored[] = [];
  for (let k = 0; k < envs.length; k += 256) {
    const chunk = envs.slice(k, k + 256);
    const seqs = await Promise.all(chunk.map((env, j) => publish(bus, env, (k + j) % 7 === 0 ? `${env.id}-copy` : undefined)));
    seqs.forEach((seq, j) => {
      if (seq !== undefined) stored.push({ env: chunk[j]!, seq });
    });
  }
  return stored;
}

/** A bus on its own prefix (`replicas` 3 on a cluster) with a live projector (started now, or by `start()` once a backlog is published); `done` stops and removes everything. */
export async function liveBus(url: string, startNow = true, replicas = 1) {
  const bus = await busOn(url, uniquePrefix(), 'projection-test', replicas);
  let running: Consumption | undefined;
  const t = {
    bus,
    async start() {
      running = await createProjector({ bus, log: silent, concurrency: 16 }).start();
    },
    async stop() {
      await running?.stop();
      running = undefined;
    },
    async done() {
      await running?.stop();
      await dropAll(bus);
      await bus.close();
    },
  };
  if (startNow) await t.start();
  return t;
}

/** Where two bucket states differ, by key: a short message, empty when they are equal (a deepEqual of thousands of entries is unreadable). */
export function differences(got: Record<string, unknown>, want: Record<string, unknown>): string {
  const missing = Object.keys(want).filter((k) => !(k in got));
  const extra = Object.keys(got).filter((k) => !(k in want));
  const wrong = Object.keys(want).filter((k) => k in got && !isDeepStrictEqual(got[k], want[k]));
  if (!missing.length && !extra.length && !wrong.length) return '';
  const some = (keys: string[]) => keys.slice(0, 5).join(', ') + (keys.length > 5 ? ', …' : '');
  return `${missing.length} missing (${some(missing)}), ${wrong.length} at another version (${some(wrong)}), ${extra.length} unexpected (${some(extra)}) of ${Object.keys(want).length}`;
}
