import { type Bus, decodeDeadLetter, type DeadLetter, dlqStats, readStream, republishDeadLetter } from '@bus/bus';
import { createInterface } from 'node:readline/promises';
import { BusError } from '@bus/errors';
import type { Command } from 'commander';
import { DateTime, Duration } from 'luxon';
import { formatAge, printTable, withBus } from './context.js';
import { emit, emitItem, jsonMode, markFound } from './output.js';

export interface DlqFilter {
  stage?: string;
  connector?: string;
  failureClass?: string;
  /** `2h`, `3d`, `30m` or an ISO time. */
  since?: string;
}

/** `--since 2h` or an ISO-8601 time → epoch ms. */
export function parseSince(since: string, now: DateTime = DateTime.utc()): number {
  const rel = /^(\d+)\s*(s|m|h|d|w)$/.exec(since.trim());
  if (rel) {
    const unit = { s: 'seconds', m: 'minutes', h: 'hours', d: 'days', w: 'weeks' }[rel[2] as 's'];
    return now.minus(Duration.fromObject({ [unit]: Number(rel[1]) })).toMillis();
  }
  const at = DateTime.fromISO(since, { zone: 'utc' });
  if (!at.isValid) throw new BusError('CLI_USAGE', 'business', `--since "${since}" is neither a duration like 2h / 30m / 3d nor an ISO time`);
  return at.toMillis();
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

/**
 * Puts one DLQ entry back through its path: an ingest quarantine goes to a running ingest
 * (which re-validates with its current schemas); anything else is republished to its
 * original subject, byte for byte, with the replay counted and its attempt history carried
 * (PRIOR_HISTORY_HEADER), so that if it fails again its one new entry has the whole history.
 * The entry is deleted only once that worked.
 *
 * The Nats-Msg-Id is `<first msg id>.replay<n>`: a new one per replay, so the stream's
 * duplicate window never swallows a legitimate replay, yet the same for two people replaying
 * the same entry at once, so that is stored once. The body — and with it the idempotency key
 * a target sees and the entity version deliver's guard checks — is unchanged: a replay of
 * something that did go through has no second business outcome.
 */
export async function replayOne(bus: Bus, seq: number, entry: DeadLetter): Promise<{ ok: boolean; detail: string }> {
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

/** Per stage and connector: entries and the oldest one's age, from cheap calls (no scan); filtered by stage and connector. */
export async function dlqSummary(bus: Bus, f: Pick<DlqFilter, 'stage' | 'connector'> = {}): Promise<{ stage: string; connector: string; entries: number; oldestAgeMs?: number }[]> {
  const now = Date.now();
  return (await dlqStats(bus.jsm, bus.names))
    .filter((s) => (!f.stage || s.stage === f.stage) && (!f.connector || s.connector === f.connector))
    .map((s) => ({ stage: s.stage, connector: s.connector, entries: s.messages, oldestAgeMs: s.oldestAtMs === undefined ? undefined : now - s.oldestAtMs }));
}

/** Prints the per-connector summary as a table; nothing when the DLQ is empty. */
export function printDlqSummary(rows: Awaited<ReturnType<typeof dlqSummary>>): void {
  printTable(rows.map((r) => ({ stage: r.stage, connector: r.connector, entries: r.entries, oldest: formatAge(r.oldestAgeMs) })));
}

/** One DLQ entry as `dlq discard --dry-run` and the confirmation show it. */
export interface DlqMatch {
  seq: number;
  stage: string;
  connector?: string;
  failureClass: string;
  code: string;
  deadLetteredAt: string;
  reason: string;
}

/** The entries matching the filter (and, if given, these sequences), oldest first: what a discard would delete. */
export async function matchingEntries(bus: Bus, f: DlqFilter, seqs?: number[]): Promise<DlqMatch[]> {
  const wanted = seqs ? new Set(seqs) : undefined;
  const out: DlqMatch[] = [];
  for await (const { seq, entry } of dlqEntries(bus, f)) {
    if (wanted && !wanted.has(seq)) continue;
    out.push({ seq, stage: entry.stage, connector: entry.connector, failureClass: entry.failureClass, code: entry.code,
      deadLetteredAt: entry.deadLetteredAt, reason: entry.reason.slice(0, 200) });
  }
  return out;
}

/**
 * Deletes the entries matching the filter (and, if given, these sequences); each is audited
 * (`dlq discarded`). With `dryRun` nothing is deleted: the count is what would be.
 */
export async function discardEntries(bus: Bus, f: DlqFilter, seqs?: number[], opts: { dryRun?: boolean } = {}): Promise<number> {
  const wanted = seqs ? new Set(seqs) : undefined;
  let n = 0;
  for await (const { seq, entry } of dlqEntries(bus, f)) {
    if (wanted && !wanted.has(seq)) continue;
    n++;
    if (opts.dryRun) continue;
    await bus.jsm.streams.deleteMessage(bus.names.streams.dlq, seq);
    bus.audit({ stage: 'dlq', outcome: 'discarded', correlationId: entry.correlationId ?? '-', connector: entry.connector, reason: entry.reason.slice(0, 200) });
  }
  return n;
}

/** Asks on the terminal; false unless the answer is y or yes. */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

export function registerDlq(program: Command): void {
  const dlq = program.command('dlq').description('the dead-letter stream: what could not be done, and replay');
  const filters = (c: Command) => c
    .option('--stage <stage>', 'ingest, transform, deliver …')
    .option('--connector <name>', 'connector (or source, for ingest)')
    .option('--class <class>', 'transient, business, permanent or ambiguous')
    .option('--since <when>', 'e.g. 2h, 3d, or an ISO time');
  filters(dlq.command('list').description('entries per stage and connector (count, oldest age), then the entries, oldest first')
    .option('--json', 'one JSON object; result: the entries (with --summary: the counts)').option('--summary', 'only the counts per stage and connector (cheap on a big DLQ; --class and --since do not apply)'))
    .action(async (o: DlqFilter & { class?: string; json?: boolean; summary?: boolean }) => withBus(async (bus) => {
      // the counts come per stage and connector (cheap); --class and --since need the entries themselves
      if (!o.json && (o.summary || (!o.class && !o.since))) {
        const summary = await dlqSummary(bus, o);
        printDlqSummary(summary);
        if (o.summary) {
          if (!summary.length) console.log('the DLQ is empty for this filter');
          return;
        }
        if (summary.length) console.log('');
      } else if (o.summary) {
        return emit(await dlqSummary(bus, o));
      }
      const rows: Record<string, string | number>[] = [];
      emit([]);
      for await (const { seq, entry } of dlqEntries(bus, { ...o, failureClass: o.class })) {
        if (o.json) emitItem({ seq, ...entry, original: { ...entry.original, data: undefined } });
        else rows.push({ seq, stage: entry.stage, connector: entry.connector ?? '-', class: entry.failureClass, code: entry.code,
          attempts: entry.attempts, replays: entry.replays ?? 0, age: formatAge(Date.now() - Date.parse(entry.deadLetteredAt)), reason: entry.reason.slice(0, 80) });
      }
      if (!o.json) rows.length ? printTable(rows) : console.log('the DLQ is empty for this filter');
    }));
  dlq.command('show <seq>').description('one entry in full: reason, details, every attempt, the original message')
    .action(async (seqArg: string) => withBus(async (bus) => {
      const m = await bus.jsm.streams.getMessage(bus.names.streams.dlq, { seq: Number(seqArg) }).catch(() => null);
      if (!m) throw new BusError('CLI_NOT_FOUND', 'business', `no DLQ entry at sequence ${seqArg} (bus dlq list shows what is there)`);
      const entry = decodeDeadLetter(m.data);
      const original = Buffer.from(entry.original.data);
      let body: unknown;
      try {
        body = JSON.parse(original.toString('utf8'));
      } catch {
        body = `${original.length} bytes (msgpack or binary)`;
      }
      const shown = { seq: m.seq, ...entry, original: { ...entry.original, data: body } };
      if (jsonMode()) return emit(shown);
      console.log(JSON.stringify(shown, null, 2));
    }));
  filters(dlq.command('discard').description('delete entries by sequence or filter, after a person decided they need nothing more; asks first')
    .option('--seq <n...>', 'DLQ sequence numbers')
    .option('--dry-run', 'list what would be deleted; delete nothing')
    .option('--yes', 'do not ask (for scripts; needed when stdin is not a terminal)'))
    .action(async (o: DlqFilter & { class?: string; seq?: string[]; dryRun?: boolean; yes?: boolean }) => withBus(async (bus) => {
      if (!o.seq && !o.stage && !o.connector && !o.class && !o.since) {
        throw new BusError('CLI_USAGE', 'business', 'say what to discard: --seq N, or a filter (--stage, --connector, --class, --since)');
      }
      const matches = await matchingEntries(bus, { ...o, failureClass: o.class }, o.seq?.map(Number));
      const rows = matches.map((m) => ({ seq: m.seq, stage: m.stage, connector: m.connector ?? '-', class: m.failureClass, code: m.code,
        age: formatAge(Date.now() - Date.parse(m.deadLetteredAt)), reason: m.reason.slice(0, 80) }));
      if (matches.length === 0) {
        emit({ dryRun: !!o.dryRun, discarded: 0, entries: [] });
        return console.log('nothing matches: nothing discarded');
      }
      if (!jsonMode()) printTable(rows);
      if (o.dryRun) {
        emit({ dryRun: true, discarded: 0, entries: matches });
        return console.log(`dry run: ${matches.length} would be discarded; nothing was deleted`);
      }
      if (!o.yes) {
        if (jsonMode() || !process.stdin.isTTY) {
          throw new BusError('CLI_CONFIRM_NEEDED', 'business', `${matches.length} entries match; nothing was deleted. Add --yes to discard them without asking ` +
            '(see them first with --dry-run)');
        }
        if (!(await confirm(`discard these ${matches.length} entries? They are gone for good`))) {
          emit({ dryRun: false, discarded: 0, entries: [] });
          return console.log('nothing discarded');
        }
      }
      // exactly the entries shown: one dead-lettered meanwhile is not discarded unseen
      const n = await discardEntries(bus, {}, matches.map((m) => m.seq));
      emit({ dryRun: false, discarded: n, entries: matches });
      console.log(`${n} discarded`);
    }));
  filters(dlq.command('replay').description('replay entries by sequence or filter; each is deleted once it is through')
    .option('--seq <n...>', 'DLQ sequence numbers'))
    .action(async (o: DlqFilter & { class?: string; seq?: string[] }) => withBus(async (bus) => {
      if (!o.seq && !o.stage && !o.connector && !o.class && !o.since) {
        throw new BusError('CLI_USAGE', 'business', 'say what to replay: --seq N, or a filter (--stage, --connector, --class, --since)');
      }
      emit([]);
      let done = 0;
      let failed = 0;
      const wanted = o.seq ? new Set(o.seq.map(Number)) : undefined;
      for await (const { seq, entry } of dlqEntries(bus, { ...o, failureClass: o.class })) {
        if (wanted && !wanted.has(seq)) continue;
        const r = await replayOne(bus, seq, entry);
        r.ok ? done++ : failed++;
        emitItem({ seq, stage: entry.stage, connector: entry.connector, ok: r.ok, detail: r.detail });
        console.log(`${r.ok ? '✔' : '✘'} ${seq} ${entry.stage}/${entry.connector ?? '-'}: ${r.detail}`);
      }
      console.log(`${done} replayed, ${failed} still failing`);
      if (failed) markFound();
    }));
}
