// How the scale bench writes ingest's dedup state and shortens its horizon: one KV key per event in bus_dedup (main at b9012d5).
import type { Bus } from '@bus/bus';
import { dedupKey } from '@bus/intake';
import type { Topology } from '@bus/streams';

export const DEDUP_DESIGN = 'one KV key per event in bus_dedup';

/** Writes `n` dedup records as ingest does after each stored webhook (a KV put without awaiting its PubAck). */
export async function fillDedup(bus: Bus, n: number, _window: number, progress: (i: number) => void): Promise<void> {
  for (let i = 0; i < n; i++) {
    bus.putUnconfirmed(bus.names.kv.dedup, dedupKey('standard', `msg_${i}-${'x'.repeat(20)}`), JSON.stringify({ eventId: `standard:msg_${i}`, seq: i + 1, storedAt: new Date().toISOString() }));
    if (i % 1_000 === 999) await bus.nc.flush();
    if (i % 50_000 === 0) progress(i);
  }
  await bus.nc.flush();
}

/** The dedup bucket's 30-day TTL shortened to the horizon. */
export function scaledDedup(t: Topology, prefix: string, horizonSec: number): Topology {
  for (const kv of t.kv) if (kv.bucket === `${prefix}_bus_dedup`) kv.ttlSec = horizonSec;
  return t;
}
