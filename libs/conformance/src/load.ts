// The load: N entities × V versions, shuffled, some sent twice, posted to ingest's POST /events.
import { BusError } from '@bus/errors';
import type { Sent } from './invariants.js';
import { type Random, shuffled } from './prng.js';
import type { ConformanceProfile } from './profile.js';

/** One POST /events item. */
export interface PlannedEvent {
  id: string;
  entityId: string;
  version: number;
}

export interface LoadPlan {
  /** In posting order: shuffled, duplicates included. */
  events: PlannedEvent[];
  /** The same events in their windows: each is posted as one request. */
  windows: PlannedEvent[][];
  /** Every (target record, version) sent in, duplicates listed again. */
  sent: Sent[];
  /** How many were sent a second time with the same event id (a producer's retry) and with a new one (a second event). */
  sameIdTwice: number;
  newIdTwice: number;
}

/**
 * Plans the load. Entity ids are `<tag>-<n>`; each (entity, version) is one event. With
 * probability `duplicateFraction` it is sent twice: half the time with the same event id
 * (JetStream dedups it), half with a new id (two events for one version: the bus's ordering
 * must notice). The entities go in windows of about `windowEvents` events, each window
 * shuffled, so versions arrive out of order but close together: a strict connector waits
 * for a missing version only `gapWaitMs`, and a version posted later than that is a real gap.
 */
export function planLoad(o: {
  random: Random; profile: ConformanceProfile; tag: string; entities: number; versions: number; duplicateFraction: number; windowEvents?: number;
}): LoadPlan {
  const perWindow = Math.max(1, Math.floor((o.windowEvents ?? 40) / o.versions));
  const windows: PlannedEvent[][] = [];
  let window: PlannedEvent[] = [];
  let sameIdTwice = 0;
  let newIdTwice = 0;
  for (let e = 1; e <= o.entities; e++) {
    for (let v = 1; v <= o.versions; v++) {
      const ev = { id: `${o.tag}-${e}-v${v}`, entityId: `${o.tag}-${e}`, version: v };
      window.push(ev);
      if (o.random() >= o.duplicateFraction) continue;
      if (o.random() < 0.5) {
        sameIdTwice++;
        window.push(ev);
      } else {
        newIdTwice++;
        window.push({ ...ev, id: `${ev.id}-again` });
      }
    }
    if (e % perWindow === 0 || e === o.entities) {
      windows.push(shuffled(window, o.random));
      window = [];
    }
  }
  const key = o.profile.targetKey ?? ((id: string) => `${o.profile.entityType}/${id}`);
  const events = windows.flat();
  return { events, windows, sent: events.map((ev) => ({ entity: key(ev.entityId), version: ev.version })), sameIdTwice, newIdTwice };
}

interface Results {
  results?: { index: number; status: string }[];
}

/**
 * Posts each batch as one request (a window of planLoad: one entity's versions are stored
 * together), `concurrency` requests at a time. Items not stored (the bus
 * unavailable, a failed request, a 503) are posted again with the same ids until stored or
 * duplicate, at most `maxTries` times each; `onStored` gets each request's stored events and when it was sent.
 */
export async function postEvents(o: {
  url: string; token: string; profile: ConformanceProfile; batches: PlannedEvent[][];
  concurrency?: number; maxTries?: number; onStored?: (stored: PlannedEvent[], sentAtMs: number) => void;
}): Promise<void> {
  const queue = [...o.batches];
  const tries = new Map<PlannedEvent[], number>();
  const body = (batch: PlannedEvent[]) => JSON.stringify({
    source: o.profile.source,
    events: batch.map((e) => ({ id: e.id, type: o.profile.eventType, entity: { type: o.profile.entityType, id: e.entityId }, version: e.version, data: o.profile.data(e.entityId, e.version) })),
  });
  async function worker(): Promise<void> {
    for (let batch = queue.shift(); batch; batch = queue.shift()) {
      const n = (tries.get(batch) ?? 0) + 1;
      tries.set(batch, n);
      let left = batch;
      const sentAtMs = Date.now();
      try {
        const res = await fetch(o.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${o.token}` }, body: body(batch), signal: AbortSignal.timeout(15_000) });
        const answer = (await res.json().catch(() => ({}))) as Results;
        if (res.status === 400 || res.status === 401) throw new BusError('CHAOS_LOAD_REFUSED', 'permanent', `ingest refused the load (${res.status}): ${JSON.stringify(answer).slice(0, 400)}`);
        const ok = new Set((answer.results ?? []).filter((r) => r.status === 'stored' || r.status === 'duplicate').map((r) => r.index));
        if (res.status === 200 || res.status === 207) left = batch.filter((_, i) => !ok.has(i));
        if ((answer.results ?? []).some((r) => r.status === 'invalid')) throw new BusError('CHAOS_LOAD_REFUSED', 'permanent', `ingest found events invalid: ${JSON.stringify(answer).slice(0, 400)}`);
      } catch (err) {
        if ((err as Error).message.startsWith('ingest ')) throw err;
      }
      o.onStored?.(batch.filter((e) => !left.includes(e)), sentAtMs);
      if (left.length === 0) continue;
      if (n >= (o.maxTries ?? 120)) throw new BusError('CHAOS_LOAD_NOT_STORED', 'transient', `${left.length} events still not stored after ${n} tries (first: ${left[0]!.id})`);
      tries.set(left, n);
      queue.push(left);
      await new Promise((r) => setTimeout(r, 250)); // a producer's back-off while the bus cannot store
    }
  }
  await Promise.all(Array.from({ length: o.concurrency ?? 4 }, worker));
}
