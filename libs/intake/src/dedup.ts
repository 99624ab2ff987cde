import type { Bus } from '@bus/bus';
import { kvToken } from '@bus/streams';
import type { KV } from '@nats-io/kv';

/**
 * Duplicates past the stream's window: the first store of a delivery id is remembered in
 * the dedup bucket (30 days), and checked before every store. Keys are the id itself when
 * it is KV-safe, else its SHA-256, so any provider id works.
 */
export function dedupKey(source: string, deliveryId: string): string {
  return `ingest.${source}.${kvToken(deliveryId)}`;
}

export interface SeenRecord {
  eventId: string;
  seq: number;
  storedAt: string;
}

export async function seenBefore(kv: KV, key: string): Promise<SeenRecord | undefined> {
  const e = await kv.get(key);
  return e && e.operation === 'PUT' && e.value.length ? (e.json() as SeenRecord) : undefined;
}

/**
 * Records a stored delivery. Written without awaiting the PubAck (it is a KV put: a
 * publish to `$KV.<bucket>.<key>`): if it is lost, the stream's dedup window and
 * transform's event-id dedup still catch a retry.
 */
export function remember(bus: Bus, key: string, record: SeenRecord): void {
  bus.putUnconfirmed(bus.names.kv.dedup, key, JSON.stringify(record));
}
