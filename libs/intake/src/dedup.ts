import { createHash, randomUUID } from 'node:crypto';
import type { Bus } from '@bus/bus';
import { BusError } from '@bus/errors';
import type { Logger } from '@bus/observability';
import { kvToken } from '@bus/streams';
import { DeliverPolicy } from '@nats-io/jetstream';

/** The id a quarantined delivery's DLQ entry carries (stable per source and delivery id). */
export function dedupKey(source: string, deliveryId: string): string {
  return `ingest.${source}.${kvToken(deliveryId)}`;
}

/**
 * Duplicates past the EVENTS stream's duplicate window (1 h), for as long as the source's
 * provider retries (its `dedupHorizon`), without one KV key per delivery (~250 B of
 * nats-server memory each). Every stored delivery becomes an 8-byte entry — a 32-bit hash of
 * its event id and its EVENTS sequence — and ingest publishes them in batches (one message per
 * source every `flushMs`, 500 ms) to the DEDUP stream, where they cost disk, not server memory. Each
 * ingest process reads DEDUP back from `now − longest horizon` (an ordered consumer), so it sees
 * every process's entries and a restart rebuilds the same index, and keeps them in time slots of
 * sorted typed arrays (8 B per entry), merged once ended (`mergedSlotMs`). A hash found is only a suspicion: the EVENTS message at
 * the entry's sequence is read and its Nats-Msg-Id compared, so a hash collision never refuses
 * a distinct delivery. What the batches have not yet carried (flushMs plus the read-back) is
 * covered by the EVENTS window, which is far longer.
 */
export interface DedupLogOptions {
  bus: Bus;
  log: Logger;
  /** How far back each source's deliveries are refused as duplicates, ms; 0 = only the EVENTS window. */
  horizons: Map<string, number>;
  /** How often entries are published (one message per source): longer packs more entries per message. Default 500 ms. */
  flushMs?: number;
  /** Width of a time slot of the index as entries arrive. Default 10 min. */
  slotMs?: number;
  /**
   * Ended slots are merged up to this width, so a lookup searches a few dozen slots, not every
   * 10 minutes of a 3-day horizon (433 binary searches: ~100 µs of CPU per webhook); the horizon is
   * kept to within one merged slot (a true duplicate that old may still be refused). Default
   * the longest horizon / 36 (2 h for 3 days), at least `slotMs`.
   */
  mergedSlotMs?: number;
  /** Bits of the event id's hash kept per entry (1–32). Default 32; tests force collisions with a few. */
  hashBits?: number;
  now?: () => number;
}

/** What a confirmed duplicate was stored as. */
export interface SeenRecord {
  eventId: string;
  seq: number;
}

/** An open slot collects entries in plain arrays; a closed one is sealed into sorted typed arrays. */
interface Slot {
  startMs: number;
  /** Exclusive; `startMs + slotMs` until ended slots are merged into it. */
  endMs: number;
  hashes: number[];
  seqs: number[];
  sealed?: { hashes: Uint32Array; deltas: Uint32Array; base: number };
}

const ENTRY_BYTES = 8;
/** Entries per published message at most (64 KiB bodies). */
const MAX_BATCH = 8_192;
/** Entries kept for a later flush while DEDUP cannot be written; beyond it the oldest go (the EVENTS window still covers them). */
const MAX_UNFLUSHED = 200_000;
/** Unsealed entries of a slot at most: they are scanned one by one, the sealed ones binary-searched. */
const MAX_OPEN = 1_024;
/** Entries of a merged slot at most: merging copies the slot, so a very busy source keeps narrower slots. */
const MAX_MERGED = 2_000_000;
/** How long a process remembers its own deliveries by id (longer than a flush plus the read-back). */
const RECENT_MS = 10_000;

type Sealed = NonNullable<Slot['sealed']>;

/** One sorted run of two (linear: both are sorted by hash). */
function mergeSealed(x: Sealed, y: Sealed): Sealed {
  const base = Math.min(x.base, y.base);
  const n = x.hashes.length + y.hashes.length;
  const hashes = new Uint32Array(n);
  const deltas = new Uint32Array(n);
  let i = 0;
  let j = 0;
  for (let k = 0; k < n; k++) {
    if (j >= y.hashes.length || (i < x.hashes.length && x.hashes[i]! <= y.hashes[j]!)) {
      hashes[k] = x.hashes[i]!;
      deltas[k] = x.deltas[i]! + x.base - base;
      i++;
    } else {
      hashes[k] = y.hashes[j]!;
      deltas[k] = y.deltas[j]! + y.base - base;
      j++;
    }
  }
  return { hashes, deltas, base };
}

function minOf(xs: number[], from = Number.POSITIVE_INFINITY): number {
  let m = from;
  for (const x of xs) if (x < m) m = x;
  return m;
}

export function hashOf(eventId: string, bits = 32): number {
  const h = createHash('sha256').update(eventId).digest().readUInt32BE(0);
  return bits >= 32 ? h : h >>> (32 - bits);
}

/** Parses a source's `dedupHorizon` ('3d', '36h', '90m', '30s', 'none', or ms as a number) to ms; undefined when malformed. */
export function parseHorizon(h: string | number | undefined): number | undefined {
  if (h === undefined) return 3 * 86_400_000;
  if (typeof h === 'number') return Number.isFinite(h) && h >= 0 ? h : undefined;
  if (h === 'none') return 0;
  const m = /^(\d+)(s|m|h|d)$/.exec(h);
  return m ? Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'] : undefined;
}

export function createDedupLog(o: DedupLogOptions) {
  const now = o.now ?? Date.now;
  const flushMs = o.flushMs ?? 500;
  const slotMs = o.slotMs ?? 600_000;
  const bits = o.hashBits ?? 32;
  const longest = Math.max(0, ...o.horizons.values());
  const mergedSlotMs = o.mergedSlotMs ?? Math.max(slotMs, Math.floor(longest / 36));
  const holder = randomUUID();
  const slots = new Map<number, Slot>();
  const pending = new Map<string, { hashes: number[]; seqs: number[] }>();
  /** This process's own deliveries until DEDUP has surely carried them back (a dry run right after a store publishes nothing the stream could refuse). */
  const recent = new Map<string, { seq: number; atMs: number }>();
  let batchNo = 0;
  let flushing: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let started: Promise<void> | undefined;
  let stopTail: (() => Promise<void>) | undefined;
  let closed = false;

  function slotFor(ms: number): Slot {
    const startMs = Math.floor(ms / slotMs) * slotMs;
    let s = slots.get(startMs);
    if (!s) {
      s = { startMs, endMs: startMs + slotMs, hashes: [], seqs: [] };
      slots.set(startMs, s);
    }
    return s;
  }

  /** Seals slots that ended and drops those older than the longest horizon. */
  function maintain() {
    const t = now();
    for (const [id, r] of recent) {
      if (r.atMs > t - RECENT_MS) break;
      recent.delete(id);
    }
    for (const [start, s] of slots) {
      if (s.endMs < t - longest) slots.delete(start);
      else if (s.hashes.length && s.endMs < t) seal(s);
    }
    merge(t);
  }

  /** Merges consecutive ended, sealed slots up to `mergedSlotMs` wide (fewer binary searches per lookup). */
  function merge(t: number) {
    const ended = [...slots.values()].filter((s) => s.endMs < t && !s.hashes.length).sort((a, b) => a.startMs - b.startMs);
    for (let i = 1; i < ended.length; i++) {
      const a = ended[i - 1]!;
      const b = ended[i]!;
      const entries = (a.sealed?.hashes.length ?? 0) + (b.sealed?.hashes.length ?? 0);
      // a gap between them (no entries then) is spanned; an overlap (a late batch's own slot) is left alone
      if (b.startMs < a.endMs || b.endMs - a.startMs > mergedSlotMs || entries > MAX_MERGED) continue;
      if (a.sealed && b.sealed) a.sealed = mergeSealed(a.sealed, b.sealed);
      else a.sealed ??= b.sealed;
      a.endMs = b.endMs;
      slots.delete(b.startMs);
      ended[i] = a; // the merged slot may take the next one too
    }
  }

  function seal(s: Slot) {
    const order = s.hashes.map((_, i) => i).sort((a, b) => s.hashes[a]! - s.hashes[b]!);
    const base = minOf(s.seqs);
    const fresh = { hashes: Uint32Array.from(order, (i) => s.hashes[i]!), deltas: Uint32Array.from(order, (i) => s.seqs[i]! - base), base };
    // merged with what was sealed before (a late batch)
    s.sealed = s.sealed ? mergeSealed(s.sealed, fresh) : fresh;
    s.hashes = [];
    s.seqs = [];
  }

  function add(atMs: number, body: Uint8Array) {
    if (atMs < now() - longest - slotMs) return;
    const s = slotFor(atMs);
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const base = view.getFloat64(0);
    for (let off = 8; off + ENTRY_BYTES <= body.byteLength; off += ENTRY_BYTES) {
      s.hashes.push(view.getUint32(off));
      s.seqs.push(base + view.getUint32(off + 4));
    }
    if (s.hashes.length >= MAX_OPEN) seal(s);
  }

  /** Sequences of entries with this hash stored within `horizonMs`, newest first. */
  function candidates(hash: number, horizonMs: number): number[] {
    const from = now() - horizonMs;
    const out: number[] = [];
    for (const s of slots.values()) {
      if (s.endMs < from) continue;
      for (let i = 0; i < s.hashes.length; i++) if (s.hashes[i] === hash) out.push(s.seqs[i]!);
      const z = s.sealed;
      if (!z) continue;
      let lo = 0;
      let hi = z.hashes.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (z.hashes[mid]! < hash) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo; i < z.hashes.length && z.hashes[i] === hash; i++) out.push(z.base + z.deltas[i]!);
    }
    return out.length > 1 ? out.sort((a, b) => b - a) : out;
  }

  /** Reads DEDUP from the longest horizon back, then follows it; resolves once what was there has been read. */
  async function tail(): Promise<void> {
    const stream = o.bus.names.streams.dedup;
    const info = await o.bus.jsm.streams.info(stream);
    const startMs = now() - longest - slotMs;
    for (const [source, h] of o.horizons) {
      if (h > info.config.max_age / 1e6 && info.config.max_age > 0) {
        throw new BusError('CONFIG_INVALID', 'permanent',
          `source "${source}" declares a dedup horizon of ${Math.round(h / 3_600_000)} h, longer than the ${stream} stream keeps its records (${Math.round(info.config.max_age / 3.6e12)} h): shorten dedupHorizon or raise dedupMaxAgeSec in streams/`);
      }
    }
    const lastSeq = info.state.last_seq;
    const lastMs = info.state.last_ts ? Date.parse(info.state.last_ts) : 0;
    const consumer = await o.bus.js.consumers.get(stream, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(startMs).toISOString() });
    const messages = await consumer.consume({ max_messages: 256 });
    stopTail = async () => {
      await messages.close().catch(() => undefined);
    };
    let caughtUp!: () => void;
    const ready = new Promise<void>((r) => {
      caughtUp = r;
    });
    if (lastSeq === 0 || lastMs < startMs) caughtUp();
    void (async () => {
      for await (const m of messages) {
        add(m.info.timestampNanos / 1e6, m.data);
        if (m.seq >= lastSeq || m.info.pending === 0) caughtUp();
      }
    })().catch((err) => o.log.error({ err }, 'dedup: reading DEDUP stopped; duplicates past the EVENTS window may pass until a restart'));
    await ready;
    maintain();
  }

  async function flushNow(): Promise<void> {
    for (const [source, p] of pending) {
      while (p.hashes.length) {
        const n = Math.min(p.hashes.length, MAX_BATCH);
        const base = minOf(p.seqs.slice(0, n));
        const body = new Uint8Array(8 + n * ENTRY_BYTES);
        const view = new DataView(body.buffer);
        view.setFloat64(0, base);
        for (let i = 0; i < n; i++) {
          view.setUint32(8 + i * ENTRY_BYTES, p.hashes[i]!);
          view.setUint32(12 + i * ENTRY_BYTES, p.seqs[i]! - base);
        }
        try {
          await o.bus.publish(o.bus.names.subjects.dedup(source), body, { msgId: `${holder}.${batchNo}` });
          batchNo++;
          p.hashes.splice(0, n);
          p.seqs.splice(0, n);
        } catch (err) {
          o.log.warn({ err, source, entries: p.hashes.length }, 'dedup: could not store a batch; kept for the next flush (the EVENTS window covers them meanwhile)');
          if (p.hashes.length > MAX_UNFLUSHED) {
            p.hashes.splice(0, p.hashes.length - MAX_UNFLUSHED);
            p.seqs.splice(0, p.seqs.length - MAX_UNFLUSHED);
          }
          return;
        }
      }
    }
  }

  function flush(): Promise<void> {
    flushing ??= flushNow().finally(() => {
      flushing = undefined;
    });
    return flushing;
  }

  function start(): Promise<void> {
    started ??= tail().then(() => {
      timer = setInterval(() => {
        maintain();
        void flush();
      }, flushMs);
      timer.unref();
    });
    started.catch(() => {
      started = undefined; // the next request tries again
    });
    return started;
  }

  return {
    /** Starts reading DEDUP (once); resolves when the records already there are in the index. */
    start,
    /**
     * The delivery stored before within its source's horizon, confirmed against EVENTS (same
     * Nats-Msg-Id at that sequence); undefined when it was not (a hash collision is not a duplicate).
     */
    async seen(source: string, eventId: string): Promise<SeenRecord | undefined> {
      const horizon = o.horizons.get(source) ?? 0;
      if (horizon === 0) return undefined;
      const mine = recent.get(eventId);
      if (mine && mine.atMs >= now() - horizon) return { eventId, seq: mine.seq };
      await start();
      for (const seq of candidates(hashOf(eventId, bits), horizon)) {
        const m = await o.bus.jsm.streams.getMessage(o.bus.names.streams.events, { seq }).catch((err) => {
          if (/no message found|not found/i.test((err as Error)?.message ?? '')) return null;
          throw err;
        });
        if (m?.header.get('Nats-Msg-Id') === eventId) return { eventId, seq };
      }
      return undefined;
    },
    /** Remembers a stored delivery (published with the next batch). */
    record(source: string, eventId: string, seq: number): void {
      if (closed || !(o.horizons.get(source) ?? 0)) return;
      let p = pending.get(source);
      if (!p) {
        p = { hashes: [], seqs: [] };
        pending.set(source, p);
      }
      p.hashes.push(hashOf(eventId, bits));
      p.seqs.push(seq);
      recent.delete(eventId);
      recent.set(eventId, { seq, atMs: now() });
      start().catch(() => undefined); // flushes run once reading has started; a failed start is tried again by the next request
    },
    /** Publishes what is pending now (tests; close). */
    flush,
    /** Entries in the index and their bytes (typed arrays and open slots). */
    size(): { entries: number; slots: number } {
      let entries = 0;
      for (const s of slots.values()) entries += s.hashes.length + (s.sealed?.hashes.length ?? 0);
      return { entries, slots: slots.size };
    },
    async close(): Promise<void> {
      if (timer) clearInterval(timer);
      await flush().catch(() => undefined);
      closed = true;
      await stopTail?.();
    },
  };
}
export type DedupLog = ReturnType<typeof createDedupLog>;
