import { createHash } from 'node:crypto';
import { fnv1a32 } from './hash.js';

/**
 * Every stream, subject and bucket name, derived from one prefix so that tests (and
 * several buses on one NATS account) never see each other's data. No prefix in production.
 */
export interface Names {
  prefix: string;
  /** `dedup`: ingest's compact record of stored delivery ids, per source (`libs/intake/src/dedup.ts`). */
  streams: { events: string; deliveries: string; dlq: string; audit: string; dedup: string };
  kv: {
    versions: string;
    tokens: string;
    leases: string;
    /** No longer made (before issue #16: one key per delivery id and per event and connector); an old deployment may delete it. */
    dedup: string;
    attempts: string;
    connectors: string;
    reconcile: string;
    /** The projection's control bucket: key `active` points at the live generation, key `rebuild` holds a rebuild's checkpoint. */
    projection: string;
  };
  /**
   * The bucket of projection generation `generation` (1, 2, …): `<k>bus_projection_<generation>`.
   * Generations are made by the projector (the first) and by `bus rebuild projection` (each next), not by applyTopology.
   */
  projectionBucket(generation: number): string;
  subjects: {
    /** `events.<source>.<type>` — type may be dotted. */
    event(source: string, type: string): string;
    /**
     * `deliveries.<connector>.<targetType>[.<entityType>.<entityId>]`: with the source entity (as KV-safe tokens),
     * so the commands pending or in flight for one entity are found by subject (`pendingVersions`, libs/ordering).
     * `delivery(connector, '>')` is every command of a connector.
     */
    delivery(connector: string, targetType: string, entity?: { type: string; id: string }): string;
    /** Every command of `connector` for one source entity, whatever its target type. */
    deliveriesOfEntity(connector: string, entity: { type: string; id: string }): string;
    /** `dlq.<stage>.<connector>` — connector is `-` where a stage has none (ingest). */
    dlq(stage: string, connector?: string): string;
    /**
     * `audit.<bucket>`: the records of one business action are on its correlation id's bucket (one of
     * {@link AUDIT_BUCKETS}), so a trace is one literal-subject read of a bucket's records, kept by header. Not one
     * subject per action: nats-server keeps every subject of a stream in memory (~250 B each on 2.9).
     */
    audit(correlationId: string): string;
    /**
     * The audit index: `audit.ix.ev.<bucket of the event id>` and `audit.ix.en.<bucket of type/id>`, each message's
     * body the key and a correlation id. One message per (key, correlation), so event id and entity lead to their traces.
     */
    auditIndex: { event(eventId: string): string; entity(entity: { type: string; id: string }): string };
    /** `audit.*`: every audit record, not the index (a live watch filters on it). */
    auditRecords: string;
    /** `audit.*.*`: the layout before the index (`audit.<stage>.<outcome>`), read only by `bus trace --legacy`. */
    auditLegacy: string;
    /** `dedup.<source>`: batches of (hash, EVENTS sequence) of the deliveries ingest stored. */
    dedup(source: string): string;
    /** Core request subject on which ingest replays quarantined payloads (not a stream). */
    ingestReplay: string;
    /** Core request subject on which reconcile starts a run now (`bus reconcile run`; not a stream). */
    reconcileRun: string;
    /** The root wildcards, e.g. `events.>`. */
    all: { events: string; deliveries: string; dlq: string; audit: string; dedup: string };
  };
}

/** Prefixes are alphanumerics starting with a letter (they become stream names and subject tokens). */
export function checkPrefix(prefix: string): string {
  if (prefix !== '' && !/^[A-Za-z][A-Za-z0-9]{0,30}$/.test(prefix)) {
    throw new Error(`BUS_PREFIX must be letters and digits starting with a letter (at most 31), got "${prefix}"`);
  }
  return prefix;
}

export function names(prefix = ''): Names {
  checkPrefix(prefix);
  const S = prefix ? `${prefix.toUpperCase()}_` : '';
  const s = prefix ? `${prefix.toLowerCase()}.` : '';
  const k = prefix ? `${prefix.toLowerCase()}_` : '';
  return {
    prefix,
    streams: { events: `${S}EVENTS`, deliveries: `${S}DELIVERIES`, dlq: `${S}DLQ`, audit: `${S}AUDIT`, dedup: `${S}DEDUP` },
    kv: {
      versions: `${k}bus_versions`,
      tokens: `${k}bus_tokens`,
      leases: `${k}bus_leases`,
      dedup: `${k}bus_dedup`,
      attempts: `${k}bus_attempts`,
      connectors: `${k}bus_connectors`,
      reconcile: `${k}bus_reconcile`,
      projection: `${k}bus_projection`,
    },
    projectionBucket: (generation) => `${k}bus_projection_${generation}`,
    subjects: {
      event: (source, type) => `${s}events.${source}.${type}`,
      delivery: (connector, targetType, entity) =>
        entity ? `${s}deliveries.${connector}.${targetType}.${kvToken(entity.type)}.${kvToken(entity.id)}` : `${s}deliveries.${connector}.${targetType}`,
      deliveriesOfEntity: (connector, entity) => `${s}deliveries.${connector}.*.${kvToken(entity.type)}.${kvToken(entity.id)}`,
      dlq: (stage, connector = '-') => `${s}dlq.${stage}.${connector}`,
      audit: (correlationId) => `${s}audit.${auditBucket(correlationId)}`,
      auditIndex: {
        event: (eventId) => `${s}audit.ix.ev.${auditBucket(eventId)}`,
        entity: (entity) => `${s}audit.ix.en.${auditBucket(entityKey(entity))}`,
      },
      auditRecords: `${s}audit.*`,
      auditLegacy: `${s}audit.*.*`,
      dedup: (source) => `${s}dedup.${source}`,
      ingestReplay: `${s}ingest.replay`,
      reconcileRun: `${s}reconcile.run`,
      all: { events: `${s}events.>`, deliveries: `${s}deliveries.>`, dlq: `${s}dlq.>`, audit: `${s}audit.>`, dedup: `${s}dedup.>` },
    },
  };
}

/**
 * One KV key token for any id: the id itself when it is short and plain, else `h` + 40 hex
 * of its SHA-256 — so provider ids with dots, spaces or any length make valid, stable keys.
 */
/**
 * How many subjects each of the audit's keys (records by correlation, index by event, index by entity) is spread
 * over: a lookup reads about 1/4096 of the records, and the stream holds at most 3 × 4,096 audit subjects in
 * nats-server's memory, whatever the traffic. Changing it makes older records unreachable by trace: it is fixed.
 */
export const AUDIT_BUCKETS = 4096;

/** The audit bucket of a key: its FNV-1a hash, 3 hex digits. */
export function auditBucket(key: string): string {
  return (fnv1a32(key) % AUDIT_BUCKETS).toString(16).padStart(3, '0');
}

/** `contact/c-1`: how an entity is written in traces and the audit index. */
export const entityKey = (entity: { type: string; id: string }) => `${entity.type}/${entity.id}`;

export function kvToken(id: string): string {
  return /^[-_=a-zA-Z0-9]{1,100}$/.test(id) ? id : `h${createHash('sha256').update(id).digest('hex').slice(0, 40)}`;
}
