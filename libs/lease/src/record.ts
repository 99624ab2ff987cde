import { BusError } from '@bus/errors';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';

/**
 * What a lease key holds. nats-server 2.9 has no per-key TTL, so the expiry is in the value
 * (the writer's wall clock): a contender may take the key over by compare-and-set once it
 * has passed.
 */
export interface LeaseRecord {
  holder: string;
  /** Unique per acquisition: tells the holder its own earlier write from someone else's. */
  nonce: string;
  expiresAtMs: number;
  acquiredAt: string;
  renewedAt: string;
  data?: unknown;
}

/** The live value of a key, or undefined when the key is absent, deleted or unreadable. */
export function decodeRecord(e: KvEntry | null): LeaseRecord | undefined {
  if (!e || e.operation !== 'PUT' || e.length === 0) return undefined;
  try {
    const r = e.json() as LeaseRecord;
    return typeof r?.holder === 'string' && typeof r.expiresAtMs === 'number' ? r : undefined;
  } catch {
    return undefined; // not a lease: treated as free, the next write replaces it by compare-and-set
  }
}

/** Someone else wrote the key first: the compare-and-set lost, nothing is wrong with NATS. */
export function isCasConflict(err: unknown): boolean {
  return err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

export function unavailable(key: string, what: string, err: unknown): BusError {
  return new BusError('LEASE_UNAVAILABLE', 'transient',
    `could not ${what} lease "${key}": ${(err as Error)?.message ?? err}. Nothing is held by this call; it is safe to try again once NATS answers`,
    { cause: err });
}

/** Largest JSON kept with a lease: it is a coordination record, not a store. */
export const MAX_DATA_BYTES = 8 * 1024;

export function encodeRecord(key: string, r: LeaseRecord): string {
  const text = JSON.stringify(r);
  if (Buffer.byteLength(text) > MAX_DATA_BYTES + 512) {
    throw new BusError('LEASE_INVALID', 'permanent',
      `the data kept with lease "${key}" is ${Buffer.byteLength(JSON.stringify(r.data))} bytes; at most ${MAX_DATA_BYTES} are allowed. Keep ids and checkpoints there, not payloads`);
  }
  return text;
}

const bucketTtlMs = new WeakMap<KV, Promise<number>>();

/** The bucket's max age in ms (0 = none), asked once per KV handle: a key not rewritten within it vanishes. */
export function bucketTtl(kv: KV): Promise<number> {
  let p = bucketTtlMs.get(kv);
  if (!p) {
    p = kv.status().then((s) => s.ttl ?? 0);
    p.catch(() => bucketTtlMs.delete(kv));
    bucketTtlMs.set(kv, p);
  }
  return p;
}
