import { AuditHeaders, auditHeaderHas, type Bus, decodeAuditRecords } from '@bus/bus';
import { DeliverPolicy } from '@nats-io/jetstream';
import { LRUCache } from 'lru-cache';
import type { Logger } from '@bus/observability';

/** One time slot of one connector's live figures. */
export interface ActivitySlot {
  /** Slot start, ms since epoch. */
  at: number;
  in: number;
  delivered: number;
  failed: number;
  /** p95 of transform → delivered at the target, ms, for the commands delivered in this slot. */
  p95Ms?: number;
}

export interface ActivityOptions {
  bus: Bus;
  log: Logger;
  /** Width of a slot. Default 5 s. */
  slotMs?: number;
  /** How many slots are kept (the chart's width). Default 120 (10 minutes of 5 s). */
  slots?: number;
}

/** Live per-connector figures from the audit stream as it is written (none from before the watch started). */
export interface Activity {
  /** The connector's slots, oldest first, ending at the current one (empty slots included). */
  series(connector: string): ActivitySlot[];
  /** Events in and delivered per second and p95 delivery time over the last `windowMs` (default 60 s). */
  rates(connector: string, windowMs?: number): { inPerSec: number; deliveredPerSec: number; failedPerSec: number; p95Ms?: number };
  /** Connectors seen since the watch started. */
  connectors(): string[];
  stop(): Promise<void>;
}

const p95 = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)] : undefined);

/**
 * Watches AUDIT's records (not the index) from now on with an ordered consumer: per connector,
 * events transformed for it (in), delivered and failed per slot, and the time from transform
 * to delivered (joined by event id and connector, at most 50,000 open joins, dropped after the
 * kept window). For the console's live figures: no extra write on the delivery path.
 */
export async function watchActivity(o: ActivityOptions): Promise<Activity> {
  const slotMs = o.slotMs ?? 5_000;
  const keep = o.slots ?? 120;
  const bySlot = new Map<string, Map<number, { in: number; delivered: number; failed: number; lat: number[] }>>();
  const transformedAt = new LRUCache<string, number>({ max: 50_000 });
  const slotOf = (ms: number) => Math.floor(ms / slotMs) * slotMs;
  const bump = (connector: string, atMs: number, f: (s: { in: number; delivered: number; failed: number; lat: number[] }) => void) => {
    const m = bySlot.get(connector) ?? new Map<number, { in: number; delivered: number; failed: number; lat: number[] }>();
    bySlot.set(connector, m);
    const slot = slotOf(atMs);
    const s = m.get(slot) ?? { in: 0, delivered: 0, failed: 0, lat: [] };
    m.set(slot, s);
    f(s);
    for (const k of m.keys()) if (k < slot - keep * slotMs) m.delete(k);
  };
  const consumer = await o.bus.js.consumers.get(o.bus.names.streams.audit, {
    deliver_policy: DeliverPolicy.New, filter_subjects: o.bus.names.subjects.auditRecords, // records only: audit.<bucket>, not audit.ix.>
  });
  const messages = await consumer.consume({ max_messages: 512 });
  const done = (async () => {
    for await (const m of messages) {
      const stages = m.headers?.get(AuditHeaders.Stage);
      if (!auditHeaderHas(stages, 'transform') && !auditHeaderHas(stages, 'deliver')) continue;
      try {
        for (const r of decodeAuditRecords(m.data)) {
          const stage = r.stage;
          if (!r.connector) continue;
          const atMs = Date.parse(r.at) || Date.now();
          const key = `${r.connector} ${r.eventId}`;
          if (stage === 'transform' && r.outcome === 'transformed') {
            bump(r.connector, atMs, (s) => s.in++);
            transformedAt.set(key, atMs);
          } else if (stage === 'deliver' && r.outcome === 'delivered') {
            const from = transformedAt.get(key);
            transformedAt.delete(key);
            bump(r.connector, atMs, (s) => {
              s.delivered++;
              if (from !== undefined) s.lat.push(atMs - from);
            });
          } else if (stage === 'deliver' && (r.outcome === 'failed' || r.outcome === 'dead-lettered')) {
            bump(r.connector, atMs, (s) => s.failed++);
          }
        }
      } catch (err) {
        o.log.warn({ err, subject: m.subject }, 'console: an audit record could not be read; skipped');
      }
    }
  })();
  return {
    series(connector) {
      const m = bySlot.get(connector);
      const now = slotOf(Date.now());
      const out: ActivitySlot[] = [];
      for (let at = now - (keep - 1) * slotMs; at <= now; at += slotMs) {
        const s = m?.get(at);
        out.push({ at, in: s?.in ?? 0, delivered: s?.delivered ?? 0, failed: s?.failed ?? 0, ...(s?.lat.length ? { p95Ms: p95(s.lat) } : {}) });
      }
      return out;
    },
    rates(connector, windowMs = 60_000) {
      const m = bySlot.get(connector);
      const from = Date.now() - windowMs;
      let inN = 0;
      let delivered = 0;
      let failed = 0;
      const lat: number[] = [];
      for (const [at, s] of m ?? []) {
        if (at + slotMs <= from) continue;
        inN += s.in;
        delivered += s.delivered;
        failed += s.failed;
        lat.push(...s.lat);
      }
      const sec = windowMs / 1000;
      return { inPerSec: inN / sec, deliveredPerSec: delivered / sec, failedPerSec: failed / sec, p95Ms: p95(lat) };
    },
    connectors: () => [...bySlot.keys()].sort(),
    async stop() {
      await messages.close().catch(() => undefined);
      await done.catch(() => undefined);
    },
  };
}
