import { type Bus, decodeDeadLetter, type DeadLetter, dlqStats, readStream, republishDeadLetter } from '@bus/bus';
import { BusError } from '@bus/errors';
import { parseSince } from './since.js';

export interface DlqFilter {
  stage?: string;
  connector?: string;
  failureClass?: string;
  /** `2h`, `3d`, `30m` or an ISO time. */
  since?: string;
}

/** Streams the DLQ's entries matching the filter, oldest first, without holding them all. */
export async function* dlqEntries(bus: Bus, f: DlqFilter = {}): AsyncGenerator<{ seq: number; entry: DeadLetter }> {
  const sinceMs = f.since ? parseSince(f.since) : 0;
  for await (const m of readStream(bus.jsm, bus.names.streams.dlq)) {
    const seq = m.seq;
    const entry = decodeDeadLetter(m.data);
    if (f.stage && entry.stage !== f.stage) continue;
    if (f.connector && entry.connector !== f.connector) continue;
    if (f.failureClass && entry.failureClass !== f.failureClass) continue;
    if (sinceMs && Date.parse(entry.deadLetteredAt) < sinceMs) continue;
    yield { seq, entry };
  }
}

/** The entry at DLQ sequence `seq` (DLQ_NOT_FOUND when there is none: replayed, discarded, or never). */
export async function dlqEntryAt(bus: Bus, seq: number): Promise<{ seq: number; entry: DeadLetter }> {
  const m = Number.isSafeInteger(seq) && seq > 0 ? await bus.jsm.streams.getMessage(bus.names.streams.dlq, { seq }).catch(() => null) : null;
  if (!m) throw new BusError('CLI_NOT_FOUND', 'business', `no DLQ entry at sequence ${seq} (bus dlq list shows what is there)`);
  return { seq: m.seq, entry: decodeDeadLetter(m.data) };
}

/**
 * Puts one DLQ entry back through its path: an ingest quarantine goes to a running ingest
 * (which re-validates with its current schemas); anything else is republished to its
 * original subject, byte for byte, with the replay counted and its attempt history carried
 * (PRIOR_HISTORY_HEADER), so that if it fails again its one new entry has the whole history.
 * The entry is deleted only once that worked. `by` (who asked) is audited (stage `dlq`, outcome `replayed`).
 *
 * The Nats-Msg-Id is `<first msg id>.replay<n>`: a new one per replay, so the stream's
 * duplicate window never swallows a legitimate replay, yet the same for two people replaying
 * the same entry at once, so that is stored once. The body — and with it the idempotency key
 * a target sees and the entity version deliver's guard checks — is unchanged: a replay of
 * something that did go through has no second business outcome.
 */
export async function replayOne(bus: Bus, seq: number, entry: DeadLetter, by = 'cli'): Promise<{ ok: boolean; detail: string }> {
  const r = await replayPath(bus, seq, entry);
  bus.audit({ stage: 'dlq', outcome: r.ok ? 'replayed' : 'replay-failed', correlationId: entry.correlationId ?? '-', connector: entry.connector, by,
    reason: r.detail.slice(0, 200), details: { dlqSeq: seq, entryStage: entry.stage } });
  return r;
}

async function replayPath(bus: Bus, seq: number, entry: DeadLetter): Promise<{ ok: boolean; detail: string }> {
  if (entry.stage === 'ingest') {
    const res = await bus.nc.request(bus.names.subjects.ingestReplay, JSON.stringify({ dlqSeq: seq }), { timeout: 10_000 })
      .catch((err: Error) => ({ json: () => ({ ok: false, error: `no ingest answered (${err.message}); is ingest running?` }) }));
    const r = res.json() as { ok: boolean; status?: number; error?: string; body?: { status?: string; issues?: unknown } };
    return { ok: r.ok, detail: r.ok ? `stored (${r.status})` : (r.error ?? `still invalid: ${JSON.stringify(r.body?.issues ?? r.body)}`) };
  }
  // republished byte for byte with the replay counted and its history carried, then deleted (libs/bus: deliver replays dependents with it too)
  const r = await republishDeadLetter(bus, seq, entry);
  return { ok: true, detail: r.duplicate ? `already republished to ${r.subject} (replay ${(entry.replays ?? 0) + 1}); stored once` : `republished to ${r.subject}` };
}

/** One replayed entry, as `dlq replay` prints it and the console lists it. */
export interface ReplayResult {
  seq: number;
  stage: string;
  connector?: string;
  ok: boolean;
  detail: string;
}

/**
 * Replays the entries matching the filter (and, if given, only these sequences), oldest first,
 * yielding each result as it is done (a big DLQ is never held in memory).
 */
export async function* replayEntries(bus: Bus, f: DlqFilter, seqs?: number[], by = 'cli'): AsyncGenerator<ReplayResult> {
  const wanted = seqs ? new Set(seqs) : undefined;
  for await (const { seq, entry } of dlqEntries(bus, f)) {
    if (wanted && !wanted.has(seq)) continue;
    const r = await replayOne(bus, seq, entry, by);
    yield { seq, stage: entry.stage, connector: entry.connector, ok: r.ok, detail: r.detail };
  }
}

/** Per stage and connector: entries and the oldest one's age, from cheap calls (no scan); filtered by stage and connector. */
export async function dlqSummary(bus: Bus, f: Pick<DlqFilter, 'stage' | 'connector'> = {}): Promise<{ stage: string; connector: string; entries: number; oldestAgeMs?: number }[]> {
  const now = Date.now();
  return (await dlqStats(bus.jsm, bus.names))
    .filter((s) => (!f.stage || s.stage === f.stage) && (!f.connector || s.connector === f.connector))
    .map((s) => ({ stage: s.stage, connector: s.connector, entries: s.messages, oldestAgeMs: s.oldestAtMs === undefined ? undefined : now - s.oldestAtMs }));
}

/** One DLQ entry as `dlq discard --dry-run`, the confirmation and the console's list show it. */
export interface DlqMatch {
  seq: number;
  stage: string;
  connector?: string;
  failureClass: string;
  code: string;
  deadLetteredAt: string;
  reason: string;
  attempts: number;
  replays: number;
}

/** The entries matching the filter (and, if given, these sequences), oldest first: what a discard or replay would touch. */
export async function matchingEntries(bus: Bus, f: DlqFilter, seqs?: number[], limit = Number.POSITIVE_INFINITY): Promise<DlqMatch[]> {
  const wanted = seqs ? new Set(seqs) : undefined;
  const out: DlqMatch[] = [];
  for await (const { seq, entry } of dlqEntries(bus, f)) {
    if (wanted && !wanted.has(seq)) continue;
    out.push({ seq, stage: entry.stage, connector: entry.connector, failureClass: entry.failureClass, code: entry.code,
      deadLetteredAt: entry.deadLetteredAt, reason: entry.reason.slice(0, 200), attempts: entry.attempts, replays: entry.replays ?? 0 });
    if (out.length >= limit) break;
  }
  return out;
}

/**
 * Deletes the entries matching the filter (and, if given, these sequences); each is audited
 * (`dlq discarded`, with who). With `dryRun` nothing is deleted: the count is what would be.
 */
export async function discardEntries(bus: Bus, f: DlqFilter, seqs?: number[], opts: { dryRun?: boolean; by?: string } = {}): Promise<number> {
  const wanted = seqs ? new Set(seqs) : undefined;
  let n = 0;
  for await (const { seq, entry } of dlqEntries(bus, f)) {
    if (wanted && !wanted.has(seq)) continue;
    n++;
    if (opts.dryRun) continue;
    await bus.jsm.streams.deleteMessage(bus.names.streams.dlq, seq);
    bus.audit({ stage: 'dlq', outcome: 'discarded', correlationId: entry.correlationId ?? '-', connector: entry.connector, reason: entry.reason.slice(0, 200),
      by: opts.by ?? 'cli', details: { dlqSeq: seq } });
  }
  return n;
}
