import { type Bus, firstSeqSince } from '@bus/bus';
import { newCorrelationId } from '@bus/envelope';
import { describeError } from '@bus/errors';
import type { Logger } from '@bus/observability';
import { AckPolicy, DeliverPolicy, type MsgRequest } from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import type { KV } from '@nats-io/kv';
import { Gauge, type Registry } from 'prom-client';
import type { AnySource } from './source.js';

/**
 * A source's rhythm, in `bus_reconcile` under `source.<name>.rhythm`: written by the watcher
 * (reconcile), read by `bus streams status` (which measures the silence itself, live).
 */
export interface SourceRhythm {
  source: string;
  /** How often the source is expected to send at least one event. */
  expectEverySec: number;
  /** declared: the source's `expectEverySec`; learned: from the events it sent over the last days. */
  from: 'declared' | 'learned';
  /** Quiet: silent for longer than {@link QUIET_FACTOR} × expectEverySec. */
  quiet: boolean;
  /** Since when it is quiet, or when it came back. */
  since: string;
  lastEventAt?: string;
  updatedAt: string;
}

/** One beat may be missed: a source is quiet after two expected intervals without an event. */
export const QUIET_FACTOR = 2;
/** A learned rhythm leaves room for bursty sources: three mean gaps, never under a minute. */
const LEARNED_FACTOR = 3;
const LEARNED_MIN_SEC = 60;
/** Fewer events than this over the window teach nothing: the source is not watched unless it declares expectEverySec. */
const LEARN_MIN_EVENTS = 20;

export const sourceRhythmKey = (source: string) => `source.${source}.rhythm`;

/** The subject filter of every event a source sent (`events.<source>.>`). */
const eventsOf = (bus: Bus, source: string) => bus.names.subjects.event(source, '>');

/** When the source's last event was stored (one direct read of the last message on its subjects), or undefined if none is kept. */
export async function lastEventAt(bus: Bus, source: string): Promise<number | undefined> {
  const m = await bus.jsm.streams.getMessage(bus.names.streams.events, { last_by_subj: eventsOf(bus, source) } as MsgRequest).catch((err: { code?: number; message?: string }) => {
    if (err?.code === 404 || /no message found/i.test(err?.message ?? '')) return undefined;
    throw err;
  });
  return m ? m.time.getTime() : undefined;
}

/**
 * The interval a source is expected to keep, learned from EVENTS over the last `windowMs`: the mean gap between its
 * events there (a throwaway consumer counts them, no message is read but the first), times three, at least a minute.
 * Undefined when it sent fewer than 20 events in the window.
 */
export async function learnRhythm(bus: Bus, source: string, windowMs: number): Promise<number | undefined> {
  const stream = bus.names.streams.events;
  const from = Date.now() - windowMs;
  const seq = await firstSeqSince(bus.jsm, stream, from, eventsOf(bus, source));
  if (seq === undefined) return undefined;
  const first = await bus.jsm.streams.getMessage(stream, { seq });
  const ci = await bus.jsm.consumers.add(stream, { ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: seq,
    filter_subject: eventsOf(bus, source), inactive_threshold: nanos(60_000), mem_storage: true, num_replicas: 1 });
  await bus.jsm.consumers.delete(stream, ci.name).catch(() => undefined);
  const count = ci.num_pending;
  if (count < LEARN_MIN_EVENTS || !first) return undefined;
  const meanGapSec = (Date.now() - first.time.getTime()) / 1000 / count;
  return Math.max(LEARNED_MIN_SEC, Math.round(meanGapSec * LEARNED_FACTOR));
}

export interface WatchRhythmOptions {
  bus: Bus;
  sources: readonly AnySource[];
  log: Logger;
  registry?: Registry;
  /** How often each source's last event is looked at. Default 1 000 ms (one direct read per source). */
  checkEveryMs?: number;
  /** The window a rhythm is learned from, for sources that declare none. Default 7 days; 0: learn nothing. */
  learnWindowMs?: number;
  /** Learned rhythms are learned again this often. Default 1 h. */
  relearnEveryMs?: number;
  /** Called once each time a source goes quiet (reconcile polls its listing at once). */
  onQuiet?: (source: AnySource, silentMs: number) => void;
}

function rhythmMetrics(registry: Registry) {
  return {
    silentSec: new Gauge({ name: 'bus_source_quiet_seconds', help: 'Seconds since the source\'s last event was stored in EVENTS', labelNames: ['source'] as const, registers: [registry] }),
    quiet: new Gauge({ name: 'bus_source_silent', help: '1 while the source has been silent for longer than twice its expected interval (declared expectEverySec, or learned)', labelNames: ['source'] as const, registers: [registry] }),
    expect: new Gauge({ name: 'bus_source_expected_every_seconds', help: 'The interval the source is expected to send within (declared or learned)', labelNames: ['source', 'from'] as const, registers: [registry] }),
  };
}

/**
 * Watches every source that declares `expectEverySec` or has a learnable rhythm: a source silent for longer than twice
 * its interval is quiet — the metrics say so, an audit record (stage intake, outcome source-quiet) is written, its state
 * is put in `bus_reconcile` for `bus streams status`, and `onQuiet` runs (reconcile polls the source's listing at once).
 * The next event clears it (audit outcome source-back). A source with no event kept in EVENTS is measured from when
 * the watch started. Stop it with the returned function.
 */
export function watchSourceRhythm(o: WatchRhythmOptions): () => void {
  const { bus } = o;
  const log = o.log.child({ component: 'source-rhythm' });
  const m = o.registry ? rhythmMetrics(o.registry) : undefined;
  const startedAt = Date.now();
  const learnWindowMs = o.learnWindowMs ?? 7 * 86_400_000;
  const expected = new Map<string, { sec: number; from: SourceRhythm['from'] }>();
  const quietSince = new Map<string, number>();
  for (const s of o.sources) if (s.expectEverySec) expected.set(s.name, { sec: s.expectEverySec, from: 'declared' });
  let learnedAt = 0;
  let stopped = false;
  let kv: KV | undefined;

  async function learn(): Promise<void> {
    learnedAt = Date.now();
    if (learnWindowMs <= 0) return;
    for (const s of o.sources) {
      if (s.expectEverySec) continue;
      const sec = await learnRhythm(bus, s.name, learnWindowMs).catch((err: unknown) => {
        log.warn({ source: s.name, err: describeError(err) }, 'could not learn the source\'s rhythm from EVENTS; tried again later');
        return undefined;
      });
      if (sec === undefined) expected.delete(s.name);
      else expected.set(s.name, { sec, from: 'learned' });
    }
  }

  async function check(s: AnySource, e: { sec: number; from: SourceRhythm['from'] }): Promise<void> {
    const last = await lastEventAt(bus, s.name);
    const now = Date.now();
    const silentMs = now - (last ?? startedAt);
    const isQuiet = silentMs > QUIET_FACTOR * e.sec * 1000;
    m?.silentSec.set({ source: s.name }, Math.round(silentMs / 100) / 10);
    m?.quiet.set({ source: s.name }, isQuiet ? 1 : 0);
    m?.expect.set({ source: s.name, from: e.from }, e.sec);
    const was = quietSince.get(s.name);
    if (isQuiet === (was !== undefined) && !changedExpect(s.name, e)) return;
    const lastEventIso = last !== undefined ? new Date(last).toISOString() : undefined;
    if (isQuiet && was === undefined) {
      quietSince.set(s.name, now);
      const reason = `source ${s.name} sent nothing for ${Math.round(silentMs / 1000)} s; it is expected every ${e.sec} s (${e.from}). ` +
        'Check the provider\'s webhook settings (disabled after failures? a secret rotated on one side only?); its listing, if any, is polled now';
      log.warn({ source: s.name, silentMs, expectEverySec: e.sec, from: e.from, lastEventAt: lastEventIso }, reason);
      bus.audit({ stage: 'intake', outcome: 'source-quiet', correlationId: newCorrelationId(), source: s.name, reason,
        details: { silentSec: Math.round(silentMs / 1000), expectEverySec: e.sec, from: e.from, lastEventAt: lastEventIso } });
      o.onQuiet?.(s, silentMs);
    } else if (!isQuiet && was !== undefined) {
      quietSince.delete(s.name);
      const reason = `source ${s.name} sent again after ${Math.round((now - was) / 1000)} s quiet`;
      log.info({ source: s.name, lastEventAt: lastEventIso }, reason);
      bus.audit({ stage: 'intake', outcome: 'source-back', correlationId: newCorrelationId(), source: s.name, reason,
        details: { quietSec: Math.round((now - was) / 1000), expectEverySec: e.sec, lastEventAt: lastEventIso } });
    }
    lastWritten.set(s.name, e);
    const rhythm: SourceRhythm = { source: s.name, expectEverySec: e.sec, from: e.from, quiet: isQuiet,
      since: new Date(quietSince.get(s.name) ?? now).toISOString(), ...(lastEventIso ? { lastEventAt: lastEventIso } : {}), updatedAt: new Date(now).toISOString() };
    kv ??= await bus.kv(bus.names.kv.reconcile);
    await kv.put(sourceRhythmKey(s.name), JSON.stringify(rhythm));
  }
  /** The state in KV is rewritten on a change of state or of the expected interval, not at every check. */
  const lastWritten = new Map<string, { sec: number; from: string }>();
  const changedExpect = (name: string, e: { sec: number; from: string }) => {
    const w = lastWritten.get(name);
    return !w || w.sec !== e.sec || w.from !== e.from;
  };

  const checkEveryMs = o.checkEveryMs ?? 1_000;
  let timer: NodeJS.Timeout | undefined;
  const tick = async () => {
    try {
      if (Date.now() - learnedAt > (o.relearnEveryMs ?? 3_600_000)) await learn();
      for (const s of o.sources) {
        if (stopped) return;
        const e = expected.get(s.name);
        if (e) await check(s, e);
      }
    } catch (err) {
      log.warn({ err: describeError(err) }, 'watching the sources\' rhythm failed this time; checked again shortly');
    } finally {
      if (!stopped) timer = setTimeout(tick, checkEveryMs).unref();
    }
  };
  void tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** Every source's rhythm as last written by a watcher, with the silence measured now (for `bus streams status`). */
export async function sourcesRhythm(bus: Bus): Promise<(SourceRhythm & { silentSec?: number })[]> {
  const kv = await bus.kv(bus.names.kv.reconcile);
  const out: (SourceRhythm & { silentSec?: number })[] = [];
  for await (const key of await kv.keys('source.*.rhythm')) {
    const e = await kv.get(key);
    if (e?.operation !== 'PUT' || e.length === 0) continue;
    const r = e.json<SourceRhythm>();
    const last = await lastEventAt(bus, r.source).catch(() => undefined);
    const silentMs = last !== undefined ? Date.now() - last : undefined; // never sent: the watcher's word stands
    out.push({ ...r, ...(last !== undefined ? { lastEventAt: new Date(last).toISOString() } : {}),
      ...(silentMs !== undefined ? { silentSec: Math.round(silentMs / 1000), quiet: silentMs > QUIET_FACTOR * r.expectEverySec * 1000 } : {}) });
  }
  return out.sort((a, b) => a.source.localeCompare(b.source));
}

