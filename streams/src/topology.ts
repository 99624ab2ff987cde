import { type ConsumerDef, DAY_SEC, type KvDef, type StreamDef, type Topology } from './define.js';
import { type Names, names as namesFor } from './names.js';

/** What the topology depends on; every field has a production default. */
export interface TopologyOptions {
  /** Name prefix for isolation (tests, several buses on one account). Default ''. */
  prefix?: string;
  /** Replicas of every stream and bucket: 1 on a laptop, 3 on a cluster. Default 1. */
  replicas?: number;
  /** How long EVENTS remembers a Nats-Msg-Id. Default 3600 s; duplicates after it are caught by the dedup bucket. */
  eventsDuplicateWindowSec?: number;
  /** How long EVENTS keeps events (the system of record). Default 365 days. */
  eventsMaxAgeSec?: number;
  /** How long DEDUP keeps ingest's dedup records: the longest dedup horizon a source may declare. Default 7 days. */
  dedupMaxAgeSec?: number;
}

/** The bus's streams, the consumers every deployment has, and the KV buckets. */
export function topology(opts: TopologyOptions = {}): Topology & { names: Names } {
  const n = namesFor(opts.prefix ?? '');
  const replicas = opts.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
    throw new Error(`BUS_REPLICAS must be an integer from 1 to 5, got ${replicas}`);
  }

  const streams: StreamDef[] = [
    {
      name: n.streams.events,
      description: 'Every accepted event: the system of record, replayed to rebuild state',
      subjects: [n.subjects.all.events],
      retention: 'limits', // kept for replay, not consumed away
      storage: 'file', // must survive a restart
      maxAgeSec: opts.eventsMaxAgeSec ?? 365 * DAY_SEC, // a year of replay and reconciliation
      maxBytes: 0, // bounded by age; size it with the disk, not here
      discard: 'new', // never drop accepted events silently: a full stream refuses and ingest answers 503
      duplicateWindowSec: opts.eventsDuplicateWindowSec ?? 3_600, // covers publish retries, quick provider retries and ingest's dedup batches in flight; older duplicates are found in DEDUP
      replicas,
    },
    {
      name: n.streams.deliveries,
      description: 'One command per (event, connector), removed once delivered',
      subjects: [n.subjects.all.deliveries],
      retention: 'workqueue', // each command is done once, then gone
      storage: 'file',
      maxAgeSec: 0, // an undelivered command must never expire silently; the DLQ is its only exit
      maxBytes: 0,
      discard: 'new', // a full queue pushes back on transform instead of dropping commands
      duplicateWindowSec: 600, // longer than transform's redelivery backoff, so a re-transform dedups
      replicas,
    },
    {
      name: n.streams.dlq,
      description: 'What could not be done, with its failure class, reason and attempt history',
      subjects: [n.subjects.all.dlq],
      retention: 'limits', // entries stay until replayed or discarded by a person
      storage: 'file',
      maxAgeSec: 90 * DAY_SEC, // long enough for a holiday and a fix
      maxBytes: 0,
      discard: 'new',
      duplicateWindowSec: 600, // a worker retrying its dead-letter publish stores it once
      replicas,
    },
    {
      name: n.streams.audit,
      description: 'One record per step of every business action, under its correlation id',
      subjects: [n.subjects.all.audit],
      retention: 'limits',
      storage: 'file',
      maxAgeSec: 30 * DAY_SEC, // traces for a month; long-term audit belongs in an archive
      maxBytes: 0,
      discard: 'old', // audit must never block the work it records
      duplicateWindowSec: 120, // a retried audit write is stored once
      replicas,
    },
    {
      name: n.streams.dedup,
      description: "Ingest's dedup past the EVENTS window: batches of (hash, EVENTS sequence) per source",
      subjects: [n.subjects.all.dedup],
      retention: 'limits',
      storage: 'file', // a restart must still refuse a retry of days ago
      maxAgeSec: opts.dedupMaxAgeSec ?? 7 * DAY_SEC, // the longest horizon a source may declare (Stripe retries for 3 days)
      maxBytes: 0,
      discard: 'old', // losing the oldest records only shortens the horizon; never block ingest
      duplicateWindowSec: 120, // a retried batch publish is stored once
      replicas,
    },
  ];

  const kv: KvDef[] = [
    // ordering guard: must never expire; the fold deletes folded revisions by sequence (libs/ordering fold.ts)
    { bucket: n.kv.versions, description: 'Applied entity version per connector and entity', history: 1, ttlSec: 0, replicas, storage: 'file', deleteBySequence: true },
    { bucket: n.kv.tokens, description: 'OAuth2 tokens shared between processes (sealed)', history: 1, ttlSec: 0, replicas, storage: 'file' }, // never expires: the entry holds the refresh token, which lives for months and exists nowhere else once rotated; a stale access token is simply refreshed
    { bucket: n.kv.leases, description: 'Leases: one holder per key (reconcile runs, refreshes)', history: 1, ttlSec: 30, replicas, storage: 'file' }, // a dead holder's lease frees itself in 30 s; holders renew well before
    { bucket: n.kv.attempts, description: 'Retry history of messages being retried', history: 1, ttlSec: 7 * DAY_SEC, replicas, storage: 'file' }, // outlives any retry schedule
    { bucket: n.kv.connectors, description: 'Connector state: paused and why', history: 5, ttlSec: 0, replicas, storage: 'file' }, // a pause stays until a person resumes it; history shows who flipped it
    { bucket: n.kv.reconcile, description: 'Reconcile checkpoints and reports', history: 1, ttlSec: 0, replicas, storage: 'file' },
    { bucket: n.kv.projection, description: 'Projection: the active generation pointer and the rebuild checkpoint', history: 5, ttlSec: 0, replicas, storage: 'file' }, // never expires; history shows the last switches
  ];

  return { streams, consumers: [], kv, names: n };
}

/**
 * One generation of the entity projection (`libs/projection`): the latest state per source and
 * entity. Not in topology(): the projector creates the first, each rebuild the next.
 */
export function projectionBucket(opts: Pick<TopologyOptions, 'prefix' | 'replicas'>, generation: number): KvDef {
  if (!Number.isInteger(generation) || generation < 1) throw new Error(`a projection generation is a whole number from 1, got ${generation}`);
  return {
    bucket: namesFor(opts.prefix ?? '').projectionBucket(generation),
    description: `Entity projection, generation ${generation}: latest version and fields per source and entity`,
    history: 1, // only the current state: a read pages through exactly one value per entity
    ttlSec: 0, // an entity unchanged for years is still the state reconcile compares with
    replicas: opts.replicas ?? 1,
    storage: 'file', // rebuilt by replay if lost, but that takes a while: keep it across restarts
  };
}

/** Defaults for a worker consumer; a service states only what differs. */
export function workerConsumer(
  def: Pick<ConsumerDef, 'stream' | 'durable' | 'description'> & Partial<ConsumerDef>,
): ConsumerDef {
  return {
    ackWaitSec: 30, // a handler that needs longer calls working()
    // a backstop, counted by consume() (JetStream's max_deliver stays -1, so a dead-letter that fails
    // on the last delivery never drops the message): at consume's default backoff (1 s doubling to
    // 60 s, full jitter) 20 deliveries ride out 7–14 min of NATS trouble; handlers with a retry policy
    // give up sooner, deliver (deferrals must never run out) sets -1
    maxDeliver: 20,
    backoffSec: [], // handlers choose their delays with nak(delay)
    maxAckPending: 1_000, // bounds work in flight across all processes
    deliverPolicy: 'all',
    ...def,
  };
}
