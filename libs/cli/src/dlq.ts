import { createInterface } from 'node:readline/promises';
import { BusError } from '@bus/errors';
import { discardEntries, type DlqFilter, dlqEntries, dlqEntryAt, dlqSummary, matchingEntries, parseSince, replayEntries } from '@bus/operations';
import type { Command } from 'commander';
import { formatAge, printTable, withBus } from './context.js';
import { emit, emitItem, jsonMode, markFound } from './output.js';

export { parseSince };

/** Prints the per-connector summary as a table; nothing when the DLQ is empty. */
export function printDlqSummary(rows: Awaited<ReturnType<typeof dlqSummary>>): void {
  printTable(rows.map((r) => ({ stage: r.stage, connector: r.connector, entries: r.entries, oldest: formatAge(r.oldestAgeMs) })));
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
      const { seq, entry } = await dlqEntryAt(bus, Number(seqArg));
      const original = Buffer.from(entry.original.data);
      let body: unknown;
      try {
        body = JSON.parse(original.toString('utf8'));
      } catch {
        body = `${original.length} bytes (msgpack or binary)`;
      }
      const shown = { seq, ...entry, original: { ...entry.original, data: body } };
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
      for await (const r of replayEntries(bus, { ...o, failureClass: o.class }, o.seq?.map(Number))) {
        r.ok ? done++ : failed++;
        emitItem(r);
        console.log(`${r.ok ? '✔' : '✘'} ${r.seq} ${r.stage}/${r.connector ?? '-'}: ${r.detail}`);
      }
      console.log(`${done} replayed, ${failed} still failing`);
      if (failed) markFound();
    }));
}
