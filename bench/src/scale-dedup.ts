// How the scale bench writes ingest's dedup state and shortens its horizon (issue #16: batches of
// 8-byte entries in the DEDUP stream). Before it: one KV key per event in bus_dedup (see README → Capacity).
import type { Bus } from '@bus/bus';
import { createDedupLog } from '@bus/intake';
import { createLogger } from '@bus/observability';
import type { Topology } from '@bus/streams';

export const DEDUP_DESIGN = 'batches of 8-byte entries in DEDUP';
const DAY_MS = 86_400_000;

/**
 * Records `n` stored deliveries as ingest does, `batch` per published message (what 100 events/s
 * makes with the default 500 ms flush: 50). Returns the bytes the index took in this process.
 */
export async function fillDedup(bus: Bus, n: number, _window: number, progress: (i: number) => void, batch = Number(process.env.BENCH_SCALE_DEDUP_BATCH ?? 50)): Promise<number> {
  const log = createLogger({ service: 'bench-scale', level: 'warn' });
  const dedup = createDedupLog({ bus, log, horizons: new Map([['standard', 3 * DAY_MS]]), flushMs: 3_600_000 });
  await dedup.start();
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {}); // node --expose-gc (npm run bench): garbage is not the index
  gc();
  const before = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < n; i++) {
    dedup.record('standard', `standard:msg_${i}-${'x'.repeat(20)}`, i + 1);
    if (i % batch === batch - 1) await dedup.flush();
    if (i % 50_000 === 0) progress(i);
  }
  await dedup.flush();
  // the index reads its own batches back from DEDUP
  const started = Date.now();
  while (dedup.size().entries < n && Date.now() - started < 120_000) await new Promise((r) => setTimeout(r, 200));
  gc();
  const bytes = process.memoryUsage().arrayBuffers - before;
  await dedup.close();
  return bytes;
}

/** DEDUP keeps its records as long as the shortened horizon (plus a minute: it must be at least as long). */
export function scaledDedup(t: Topology, prefix: string, horizonSec: number): Topology {
  for (const s of t.streams) if (s.name === `${prefix.toUpperCase()}_DEDUP`) s.maxAgeSec = horizonSec + 60;
  return t;
}
