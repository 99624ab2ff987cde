import { type Bus, readStream, type TopologyReport } from '@bus/bus';
import { BusError } from '@bus/errors';
import { QUIET_FACTOR, sourcesRhythm } from '@bus/intake';
import { topology } from '@bus/streams';
import type { Command } from 'commander';
import { configuredTopology, formatAge, formatBytes, printTable, withBus } from './context.js';
import { dlqSummary, printDlqSummary } from './dlq.js';
import { emit, markFound } from './output.js';

/** Where a consumer's oldest unfinished message is, and how old it is. */
async function oldestPendingAgeMs(bus: Bus, stream: string, fromSeq: number): Promise<number | undefined> {
  // the first message still there from the consumer's ack floor on (work-queue acks leave gaps)
  for await (const m of readStream(bus.jsm, stream, { fromSeq })) return Date.now() - Date.parse(m.timestamp);
  return undefined;
}

export interface StreamStatus {
  stream: string;
  messages: number;
  bytes: number;
  firstSeq: number;
  lastSeq: number;
  consumers: {
    consumer: string;
    pending: number;
    ackPending: number;
    redelivered: number;
    oldestPendingAgeMs?: number;
  }[];
}

/** Per stream and consumer: messages, bytes, pending, redelivered, oldest pending age. */
export async function streamsStatus(bus: Bus): Promise<StreamStatus[]> {
  const out: StreamStatus[] = [];
  for (const def of topology({ prefix: bus.config.BUS_PREFIX, replicas: bus.config.BUS_REPLICAS }).streams) {
    const info = await bus.jsm.streams.info(def.name).catch(() => undefined);
    if (!info) {
      out.push({ stream: `${def.name} (missing: run 'bus streams apply')`, messages: 0, bytes: 0, firstSeq: 0, lastSeq: 0, consumers: [] });
      continue;
    }
    const s: StreamStatus = { stream: def.name, messages: info.state.messages, bytes: info.state.bytes,
      firstSeq: info.state.first_seq, lastSeq: info.state.last_seq, consumers: [] };
    for await (const c of bus.jsm.consumers.list(def.name)) {
      const unfinished = c.num_pending + c.num_ack_pending;
      const fromSeq = Math.max(c.ack_floor.stream_seq + 1, info.state.first_seq);
      s.consumers.push({
        consumer: c.name, pending: c.num_pending, ackPending: c.num_ack_pending, redelivered: c.num_redelivered,
        oldestPendingAgeMs: unfinished > 0 ? await oldestPendingAgeMs(bus, def.name, fromSeq) : undefined,
      });
    }
    out.push(s);
  }
  return out;
}

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

/** Which mechanism keeps per-entity order (docs/ordering.md), and what the server would allow. */
function orderingMechanism(bus: Bus): string {
  const version = bus.nc.info?.version ?? 'unknown';
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const pcgroups = major > 2 || (major === 2 && minor >= 11);
  return `per-entity leases in ${bus.names.kv.versions} (compare-and-set, renewed during each call, fenced at commit) on nats-server ${version}`
    + (pcgroups ? ' — this server has partitioned consumer groups (2.11+); the bus does not use them yet' : ' — partitioned consumer groups need nats-server 2.11+');
}
