import type { Names } from '@bus/streams';
import { LRUCache } from 'lru-cache';
import { type AuditIndexKey, type AuditMessage, type AuditRecord, auditIndexKeys, auditMessages } from './audit.js';

/** How `bus.audit` writes one record. */
export interface AuditWriteOptions {
  /** The step's own id (stored in the record as `id`): readers show two records with it as one step. */
  msgId?: string;
  /**
   * The record's event id and entity were indexed when its event was stored (the event's
   * `ingest stored` record, written by every path into EVENTS: ingest and @bus/client), so they
   * are not written again: transform's and deliver's records of that event. Default false.
   */
  eventIndexed?: boolean;
}

export interface AuditWriterOptions {
  names: Names;
  /** Stores one message without awaiting a PubAck (audit never slows the work it records). */
  send(m: AuditMessage): void;
  /** How long a record waits for others of its correlation to share its message (ms); 0: the end of this turn. Default 0. */
  flushMs?: number;
  /** A flush starts at once at this many waiting records. Default 1,000. */
  maxRecords?: number;
  /** Index entries this process remembers having written (most recent first out last), so it writes each once. Default 20,000. */
  indexMemory?: number;
}

/** The process's audit writer: records wait up to `flushMs`, then go out as few messages as their correlations allow. */
export interface AuditWriter {
  write(record: AuditRecord, o?: AuditWriteOptions): void;
  /** Sends what waits now (before the connection closes). */
  flush(): void;
}

/**
 * Coalesces audit records: each flush stores the records of one correlation as one message
 * (a transform's records for several connectors, deliver's attempts of one event) and each
 * index entry (key → correlation) once per process — remembered in a bounded LRU, so memory
 * does not grow with ids — and never those the event's `stored` record already wrote
 * ({@link AuditWriteOptions.eventIndexed}). consume() flushes it before acks and naks, so a
 * step's record leaves before its message is settled; a writer that settles nothing can lose its
 * last `flushMs` of records when killed.
 */
export function createAuditWriter(o: AuditWriterOptions): AuditWriter {
  const flushMs = o.flushMs ?? 0;
  const maxRecords = o.maxRecords ?? 1_000;
  const memory = o.indexMemory ?? 20_000;
  // lru-cache, not a Map evicting its first key: V8 skips over a Map's deleted slots at its front on every such
  // eviction (7 % of ingest's CPU in this function alone)
  const written = new LRUCache<string, true>({ max: memory });
  let pending: { record: AuditRecord; eventIndexed: boolean }[] = [];
  let timer: ReturnType<typeof setTimeout> | ReturnType<typeof setImmediate> | undefined;

  /** Index keys not written yet by this process (each remembered as written from now on). */
  const fresh = (k: AuditIndexKey): boolean => {
    const id = `${k.kind}\u0000${k.key}\u0000${k.correlationId}`;
    if (written.get(id)) return false; // get: now the most recently used
    written.set(id, true);
    return true;
  };

  const flush = () => {
    if (timer !== undefined) {
      if (flushMs > 0) clearTimeout(timer as ReturnType<typeof setTimeout>);
      else clearImmediate(timer as ReturnType<typeof setImmediate>);
      timer = undefined;
    }
    if (!pending.length) return;
    const batch = pending;
    pending = [];
    const index = batch.flatMap(({ record, eventIndexed }) => (eventIndexed ? [] : auditIndexKeys(record).filter(fresh)));
    for (const m of auditMessages(o.names, batch.map((p) => p.record), index)) o.send(m);
  };

  return {
    write(record, w = {}) {
      pending.push({ record: w.msgId ? { ...record, id: w.msgId } : record, eventIndexed: !!w.eventIndexed });
      if (pending.length >= maxRecords) flush();
      else if (timer === undefined) {
        // unref'd: a record waiting must not keep a finished process (a CLI command) alive; close() flushes
        timer = flushMs > 0 ? setTimeout(flush, flushMs).unref() : setImmediate(flush).unref();
      }
    },
    flush,
  };
}
