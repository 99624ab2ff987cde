/**
 * Streams, consumers and KV buckets as plain data. `@bus/bus` applies them to JetStream;
 * keeping them free of the client library keeps this folder readable as a spec.
 */

/** A JetStream stream. Durations are seconds; 0 means unlimited. */
export interface StreamDef {
  name: string;
  description: string;
  subjects: string[];
  retention: 'limits' | 'workqueue' | 'interest';
  storage: 'file' | 'memory';
  maxAgeSec: number;
  /** 0 = unlimited. */
  maxBytes: number;
  /** What a full stream does: 'old' drops the oldest, 'new' refuses the publish (back-pressure). */
  discard: 'old' | 'new';
  duplicateWindowSec: number;
  replicas: number;
}

/** A durable pull consumer. */
export interface ConsumerDef {
  stream: string;
  durable: string;
  description: string;
  /** One subject (JetStream 2.9 has no filter_subjects list). */
  filterSubject?: string;
  /** How long a delivered message may stay unacknowledged before it is redelivered. */
  ackWaitSec: number;
  /**
   * Deliveries (deferrals included) before consume() dead-letters a message that still asks to be
   * retried (ATTEMPTS_EXHAUSTED); the handler sees the last one as final. -1 = never. Counted by
   * consume(), not JetStream: the consumer's max_deliver is -1, so a message whose dead-letter
   * fails on its last delivery comes back (and is dead-lettered once the DLQ takes it) instead of
   * being dropped.
   */
  maxDeliver: number;
  /** Redelivery delays after an ack timeout (a crashed worker); empty = ackWaitSec each time. */
  backoffSec: number[];
  /** Upper bound on unacknowledged messages across every process on this consumer. */
  maxAckPending: number;
  deliverPolicy: 'all' | 'new';
}

/** A KV bucket. */
export interface KvDef {
  bucket: string;
  description: string;
  /** Values kept per key. */
  history: number;
  /** Age after which a value is gone; 0 = forever. */
  ttlSec: number;
  replicas: number;
  storage: 'file' | 'memory';
  /**
   * Whether a message may be deleted by its sequence (`deny_delete` false). Default false: as the KV client makes
   * buckets. True only where something removes single revisions (bus_versions: the fold, O(1) per key — a purge by
   * subject looks through the stream's blocks, and is 100+ ms per key at 50,000 keys on nats-server 2.9).
   * JetStream cannot lift `deny_delete` on an existing stream.
   */
  deleteBySequence?: boolean;
}

export interface Topology {
  streams: StreamDef[];
  consumers: ConsumerDef[];
  kv: KvDef[];
}

export const DAY_SEC = 86_400;
