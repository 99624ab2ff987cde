import type { ConsumerDef, KvDef, StreamDef, Topology } from '@bus/streams';
import {
  AckPolicy,
  type DeliverPolicy,
  DiscardPolicy,
  type JetStreamManager,
  JetStreamApiError,
  type RetentionPolicy,
  type StorageType,
  type ConsumerConfig,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';

/** One difference between a definition and JetStream that was not (or could not be) applied. */
export interface Drift {
  /** `stream EVENTS`, `consumer DELIVERIES/deliver-crm`, `bucket bus_tokens`. */
  resource: string;
  field: string;
  want: unknown;
  have: unknown;
  /** Why it was not updated, and what to do. */
  reason: string;
}

export interface TopologyReport {
  created: string[];
  updated: { resource: string; fields: string[] }[];
  unchanged: string[];
  drift: Drift[];
}

type Fields = Record<string, unknown>;

function streamFields(d: StreamDef): Fields {
  return {
    subjects: d.subjects,
    retention: d.retention as RetentionPolicy,
    storage: d.storage as StorageType,
    max_age: nanos(d.maxAgeSec * 1000),
    max_bytes: d.maxBytes === 0 ? -1 : d.maxBytes,
    discard: d.discard as DiscardPolicy,
    duplicate_window: nanos(d.duplicateWindowSec * 1000),
    num_replicas: d.replicas,
    description: d.description,
  };
}

function kvFields(d: KvDef): Fields {
  return {
    storage: d.storage as StorageType,
    max_age: nanos(d.ttlSec * 1000),
    max_msgs_per_subject: d.history,
    deny_delete: !d.deleteBySequence,
    num_replicas: d.replicas,
    description: d.description,
  };
}

/** A max_deliver no message reaches, for consumers with a backoff list (JetStream refuses -1 with one). */
export const NO_DELIVERY_LIMIT = 2 ** 31 - 1;

function consumerFields(d: ConsumerDef): Fields {
  return {
    durable_name: d.durable,
    description: d.description,
    filter_subject: d.filterSubject, // omitted when unset: an empty filter makes the v3 client build an invalid create subject
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(d.ackWaitSec * 1000),
    // never JetStream's: on its last delivery it drops a message that could not be dead-lettered
    // (the DLQ down) without a trace. consume() counts deliveries against d.maxDeliver instead,
    // and a message it could not dead-letter comes back until it can be (deliveryLimitOf).
    // JetStream wants a bound above the backoff list's length: one no message reaches
    max_deliver: d.backoffSec.length ? NO_DELIVERY_LIMIT : -1,
    backoff: d.backoffSec.length ? d.backoffSec.map((s) => nanos(s * 1000)) : undefined,
    max_ack_pending: d.maxAckPending,
    deliver_policy: d.deliverPolicy as DeliverPolicy,
  };
}

/** Fields JetStream 2.9 cannot change on an existing stream; a change is drift, never applied. */
const IMMUTABLE = new Set(['storage', 'retention', 'deliver_policy', 'ack_policy', 'durable_name', 'deny_delete']);

function same(a: unknown, b: unknown): boolean {
  if ((a === undefined || a === '') && (b === undefined || b === '' || (Array.isArray(b) && b.length === 0))) return true;
  return JSON.stringify(a) === JSON.stringify(b);
}

function diff(want: Fields, have: Fields): string[] {
  return Object.keys(want).filter((k) => !same(want[k], have[k]));
}

function reasonOf(err: unknown): string {
  return err instanceof JetStreamApiError ? err.apiError().description : (err as Error).message;
}

/**
 * Applies one resource: create when missing; update the fields JetStream allows; report
 * what it cannot change as drift. Never deletes or recreates (that would lose data).
 */
async function applyOne(
  report: TopologyReport,
  resource: string,
  want: Fields,
  read: () => Promise<Fields | undefined>,
  create: () => Promise<unknown>,
  update: (merged: Fields) => Promise<unknown>,
): Promise<void> {
  const have = await read();
  if (!have) {
    await create();
    report.created.push(resource);
    return;
  }
  const changed = diff(want, have);
  if (changed.length === 0) {
    report.unchanged.push(resource);
    return;
  }
  const immutable = changed.filter((f) => IMMUTABLE.has(f));
  for (const field of immutable) {
    report.drift.push({ resource, field, want: want[field], have: have[field],
      reason: `JetStream cannot change ${field} of an existing ${resource}; to adopt the definition, migrate the data to a new one (README → Operations)` });
  }
  const mutable = changed.filter((f) => !IMMUTABLE.has(f));
  if (mutable.length === 0) return;
  const merged = { ...have, ...Object.fromEntries(mutable.map((f) => [f, want[f]])) };
  try {
    await update(merged);
  } catch (err) {
    for (const field of mutable) {
      report.drift.push({ resource, field, want: want[field], have: have[field], reason: `JetStream refused the update: ${reasonOf(err)}` });
    }
    return;
  }
  // a server may accept an update and keep its value (replicas on a single server): read back
  const after = (await read()) ?? {};
  const kept = mutable.filter((f) => !same(want[f], after[f]));
  for (const field of kept) {
    report.drift.push({ resource, field, want: want[field], have: after[field],
      reason: 'JetStream accepted the update but kept its value (e.g. replicas above the cluster size); fix the definition or the cluster' });
  }
  const applied = mutable.filter((f) => !kept.includes(f));
  if (applied.length) report.updated.push({ resource, fields: applied });
}

async function notFoundAsUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof JetStreamApiError && (err.code === 10059 || err.code === 10014 || err.status === 404)) return undefined;
    throw err;
  }
}

/** maxDeliver per `stream/durable`, as last applied by ensureConsumer in this process (see consumerFields). */
const deliveryLimits = new Map<string, number>();

/**
 * The delivery limit consume() enforces for a consumer: its definition's maxDeliver as
 * ensureConsumer last applied it in this process (services ensure their consumers before
 * consuming them); undefined when this process applied none. -1 = no limit.
 */
export function deliveryLimitOf(stream: string, durable: string): number | undefined {
  return deliveryLimits.get(`${stream}/${durable}`);
}

/**
 * Creates or updates one durable consumer from its definition (services add theirs at start).
 * JetStream's max_deliver is set to -1 (an existing consumer's is updated): the definition's
 * maxDeliver is counted by consume() in this process, see deliveryLimitOf.
 */
export async function ensureConsumer(jsm: JetStreamManager, def: ConsumerDef, report = emptyReport()): Promise<TopologyReport> {
  const want = consumerFields(def);
  const resource = `consumer ${def.stream}/${def.durable}`;
  await applyOne(report, resource, want,
    async () => (await notFoundAsUndefined(jsm.consumers.info(def.stream, def.durable)))?.config as Fields | undefined,
    () => jsm.consumers.add(def.stream, want as Partial<ConsumerConfig>),
    (merged) => jsm.consumers.update(def.stream, def.durable, merged as Partial<ConsumerConfig>));
  deliveryLimits.set(`${def.stream}/${def.durable}`, def.maxDeliver > 0 ? def.maxDeliver : -1);
  return report;
}

function emptyReport(): TopologyReport {
  return { created: [], updated: [], unchanged: [], drift: [] };
}

/**
 * Applies the streams/ definitions idempotently: a second run changes nothing. What
 * JetStream cannot update is returned as drift for the caller to report.
 */
export async function applyTopology(jsm: JetStreamManager, topo: Topology): Promise<TopologyReport> {
  const report = emptyReport();
  for (const s of topo.streams) {
    const want = streamFields(s);
    await applyOne(report, `stream ${s.name}`, want,
      async () => (await notFoundAsUndefined(jsm.streams.info(s.name)))?.config as Fields | undefined,
      () => jsm.streams.add({ name: s.name, ...want } as Partial<StreamConfig> & { name: string }),
      (merged) => jsm.streams.update(s.name, merged as Partial<StreamConfig>));
  }
  for (const b of topo.kv) {
    const name = `KV_${b.bucket}`;
    const want = kvFields(b);
    await applyOne(report, `bucket ${b.bucket}`, want,
      async () => (await notFoundAsUndefined(jsm.streams.info(name)))?.config as Fields | undefined,
      () => jsm.streams.add({
        name, subjects: [`$KV.${b.bucket}.>`], ...want,
        // what a KV bucket needs beyond our fields (as the KV client creates it)
        allow_rollup_hdrs: true, allow_direct: true, discard: DiscardPolicy.New, max_msg_size: -1,
        duplicate_window: nanos(Math.min(b.ttlSec || 120, 120) * 1000),
      } as Partial<StreamConfig> & { name: string }),
      (merged) => jsm.streams.update(name, merged as Partial<StreamConfig>));
  }
  for (const c of topo.consumers) await ensureConsumer(jsm, c, report);
  return report;
}
