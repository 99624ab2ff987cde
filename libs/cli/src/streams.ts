import type { TopologyReport } from '@bus/bus';
import { BusError } from '@bus/errors';
import { QUIET_FACTOR, sourcesRhythm } from '@bus/intake';
import { dlqSummary, orderingMechanism, streamsStatus } from '@bus/operations';
import type { Command } from 'commander';
import { configuredTopology, formatAge, formatBytes, printTable, withBus } from './context.js';
import { printDlqSummary } from './dlq.js';
import { emit, markFound } from './output.js';

function printReport(report: TopologyReport): void {
  for (const r of report.created) console.log(`created    ${r}`);
  for (const u of report.updated) console.log(`updated    ${u.resource}: ${u.fields.join(', ')}`);
  for (const r of report.unchanged) console.log(`unchanged  ${r}`);
  for (const d of report.drift) console.log(`DRIFT      ${d.resource} ${d.field}: want ${JSON.stringify(d.want)}, have ${JSON.stringify(d.have)} — ${d.reason}`);
}

/**
 * Applies the topology, trying again for up to `ms` while NATS or JetStream cannot be reached: a
 * new cluster answers JetStream requests only once it has elected a meta leader, and R3 streams
 * created before that fail, so a container applying the topology at start (docker-compose's
 * bus-init) waits here.
 */
export async function applyWaiting(ms: number): Promise<TopologyReport> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await withBus((bus) => bus.applyTopology(configuredTopology()));
    } catch (err) {
      if (!(err instanceof BusError && err.retryable) || Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

export function registerStreams(program: Command): void {
  const streams = program.command('streams').description('streams, consumers and KV buckets');
  streams
    .command('apply')
    .description('apply the streams/ definitions (idempotent); exits 2 when drift remains')
    .option('--json', 'one JSON object; result: created, updated, unchanged, drift')
    .option('--wait <seconds>', 'keep trying this long while NATS or JetStream does not answer (a new cluster elects its meta leader first)', '0')
    .action(async (o: { json?: boolean; wait: string }) => {
      const waitSec = Number(o.wait);
      if (!Number.isFinite(waitSec) || waitSec < 0) throw new BusError('CLI_USAGE', 'business', `--wait "${o.wait}" must be a number of seconds ≥ 0`);
      const report = await applyWaiting(waitSec * 1000);
      if (o.json) emit(report);
      else printReport(report);
      if (report.drift.length) markFound();
    });
  streams
    .command('status')
    .description('per stream and consumer: messages, bytes, pending, redelivered, oldest pending age; DLQ entries per stage and connector; sources quiet for longer than their rhythm')
    .option('--json', 'one JSON object; result: streams (with consumers), dlq (per stage and connector), ordering, sources (rhythm, silence, quiet)')
    .action(async (o: { json?: boolean }) => {
      const [status, dlq, ordering, sources] = await withBus(async (bus) =>
        [await streamsStatus(bus), await dlqSummary(bus).catch(() => []), orderingMechanism(bus), await sourcesRhythm(bus).catch(() => [])] as const);
      if (o.json) return emit({ streams: status, dlq, ordering, sources });
      printTable(status.map((s) => ({ stream: s.stream, messages: s.messages, bytes: formatBytes(s.bytes), first: s.firstSeq, last: s.lastSeq, consumers: s.consumers.length })));
      const rows = status.flatMap((s) => s.consumers.map((c) => ({
        stream: s.stream, consumer: c.consumer, pending: c.pending, 'ack pending': c.ackPending,
        redelivered: c.redelivered, 'oldest pending': formatAge(c.oldestPendingAgeMs),
      })));
      if (rows.length) {
        console.log('');
        printTable(rows);
      }
      if (dlq.length) {
        console.log('');
        printDlqSummary(dlq);
      }
      if (sources.length) {
        // the rhythm reconcile's watcher keeps per source; the silence is measured now
        console.log('');
        printTable(sources.map((r) => ({ source: r.source, 'expect every': `${r.expectEverySec} s (${r.from})`,
          'last event': r.silentSec !== undefined ? `${formatAge(r.silentSec * 1000)} ago` : 'none kept',
          state: r.quiet ? `QUIET (silent longer than ${QUIET_FACTOR} × ${r.expectEverySec} s)` : 'ok' })));
      }
      console.log(`\nordering: ${ordering}`);
    });
}
