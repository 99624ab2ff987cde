// Trace lookups at scale: fills AUDIT with BENCH_TRACE_RECORDS (default 1,000,000) audit records
// in the layout the bus writes (auditMessages, libs/bus/src/audit.ts), then times a trace by
// correlation id, event id and entity — through the library call, the `bus trace` command (a
// new process each time, as a person runs it) and the console's /api/trace (the console service
// started on the same bus) — and what the index costs the server (RSS and stored bytes per
// record). The first lookup of each kind is cold (the server loads its per-block subject index
// from disk). Prints; never fails.
import { fileURLToPath } from 'node:url';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditHeaders, type AuditMessage, type AuditRecord, auditMessages, auditMsgId, auditTrace, type Bus, connectBus, encodeAudit, legacyAuditOf, loadBusConfig } from '@bus/bus';
import { spawnNatsServer } from '@bus/nats-server';
import { createLogger } from '@bus/observability';
import { topology } from '@bus/streams';
import { forkTracked, stopChild, waitForMessage } from './children.js';
import { auditWriteCost } from './audit-cost.js';
import { procStats } from './proc.js';
import { fmt, percentile } from './stats.js';

const log = createLogger({ service: 'bench', level: 'silent' });
/** A business action's records: stored, transformed, a failed and a delivered attempt at crm, delivered at warehouse. */
const STEPS = [['ingest', 'stored'], ['transform', 'transformed'], ['deliver', 'failed'], ['deliver', 'delivered'], ['deliver', 'delivered']] as const;

export interface TraceBenchOptions {
  natsUrl: string;
  natsPid?: number;
  records: number;
  /** PubAcks in flight while filling. */
  window: number;
  /** Also fill a second server in the old layout and compare (BENCH_TRACE_LEGACY=1). */
  legacy?: boolean;
  /** Events per round of the audit write cost (audit-cost.ts; BENCH_TRACE_WRITE_EVENTS, default 10,000). */
  writeEvents?: number;
}

function recordsOf(action: number): AuditRecord[] {
  const correlationId = `corr-${action.toString(36)}-${(action * 7919).toString(36)}`;
  const eventId = `ev-${action}`;
  const entity = { type: 'contact', id: `c-${action % 20_000}` }; // 20k entities: each has ~10 actions at 1 M records
  const at = new Date(Date.UTC(2026, 0, 1) + action * 10).toISOString();
  return STEPS.map(([stage, outcome], i) => ({
    stage, outcome, correlationId, at, eventId, source: 'shop', entity, version: action,
    ...(stage === 'deliver' ? { connector: i === 4 ? 'warehouse' : 'crm', attempt: i === 3 ? 2 : 1, status: i === 2 ? 503 : 200, durationMs: 12 } : {}),
  }));
}

/**
 * The messages the bus stores for one action (audit-writer.ts): the `stored` record with the event's
 * two index entries, then transform's and deliver's records without index entries (their event's
 * were written with `stored`), each step its own message — deliver's attempts come seconds apart, so
 * none shares a flush here (transform's records of several connectors would: one message).
 */
function messagesOf(names: Bus['names'], action: number): AuditMessage[] {
  const [stored, ...later] = recordsOf(action);
  return [...auditMessages(names, [stored!]), ...later.flatMap((r) => auditMessages(names, [r], []))];
}

export async function traceBench(o: TraceBenchOptions): Promise<void> {
  const prefix = `t${Date.now().toString(36)}`;
  const bus: Bus = await connectBus({ config: loadBusConfig({ NATS_URL: o.natsUrl, BUS_PREFIX: prefix }), name: 'bench-trace', log });
  await bus.applyTopology(topology({ prefix }));
  const actions = Math.ceil(o.records / STEPS.length);
  console.log(`\n## trace lookups at ${o.records.toLocaleString('en')} audit records (${actions.toLocaleString('en')} actions of ${STEPS.length} records, 20,000 entities)`);
  const before = procStats(o.natsPid);
  const started = performance.now();
  let messages = 0;
  let inflight: Promise<unknown>[] = [];
  for (let a = 0; a < actions; a++) {
    for (const m of messagesOf(bus.names, a)) {
      messages++;
      inflight.push(bus.publish(m.subject, m.data, { msgId: `fill-${messages}`, headers: m.headers })); // publish() wants one; the bus writes none
      if (inflight.length >= o.window) {
        await Promise.all(inflight);
        inflight = [];
      }
    }
  }
  await Promise.all(inflight);
  const fillSec = (performance.now() - started) / 1000;
  const info = await bus.jsm.streams.info(bus.names.streams.audit);
  const after = procStats(o.natsPid);
  console.log(`filled in ${fmt(fillSec, 1)} s: ${info.state.messages.toLocaleString('en')} messages (${fmt(messages / actions, 2)} per action: records + index entries), ` +
    `${fmt(info.state.bytes / o.records)} stored bytes per record, ${(info.state.num_subjects ?? 0).toLocaleString('en')} subjects`);
  if (before && after) {
    console.log(`nats-server RSS ${fmt(before.rssMb)} → ${fmt(after.rssMb)} MB: ${fmt(((after.rssMb - before.rssMb) * 1024 * 1024) / o.records)} bytes per audit record (subject index and caches)`);
  }

  const pick = [7, Math.floor(actions / 2), actions - 3];
  const keys: { kind: 'correlation' | 'event' | 'entity'; key: string }[] = pick.flatMap((a) => {
    const r = recordsOf(a)[1]!;
    return [{ kind: 'correlation' as const, key: r.correlationId }, { kind: 'event' as const, key: r.eventId! }, { kind: 'entity' as const, key: `contact/${r.entity!.id}` }];
  });
  const cli = fileURLToPath(new URL('../../libs/cli/dist/main.js', import.meta.url));
  const runCli = async (args: string[]) => {
    const t = performance.now();
    const p = forkTracked(cli, args, { env: { ...process.env, NATS_URL: o.natsUrl, BUS_PREFIX: prefix, LOG_LEVEL: 'error' }, stdio: 'ignore' });
    await new Promise((resolve) => p.once('exit', resolve));
    return performance.now() - t;
  };
  // what any `bus` command costs before it does anything (node start, imports): the floor of the CLI column
  const floor = [await runCli(['--version']), await runCli(['--version']), await runCli(['--version'])];
  console.log(`\`bus --version\` (process start only): median ${fmt(percentile(floor, 50))} ms`);
  // the console as it runs (services/console, its own process on this bus), timed over its JSON API
  const token = 'bench-console-token-0123456789';
  const consoleMain = fileURLToPath(new URL('../../services/console/dist/main.js', import.meta.url));
  const consoleChild = forkTracked(consoleMain, [], {
    env: { ...process.env, NATS_URL: o.natsUrl, BUS_PREFIX: prefix, CONSOLE_PORT: '0', CONSOLE_OPS_PORT: '0', CONSOLE_TOKENS: `bench:${token}`, LOG_LEVEL: 'error', BUS_DLQ_STATS_INTERVAL_MS: '0' },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const consoleUrl = await waitForMessage(consoleChild, (m) => (m as { type?: string; endpoints?: { url?: string } }).type === 'ready' ? (m as { endpoints: { url: string } }).endpoints.url : undefined, 60_000, 'the console')
    .catch((err: Error) => {
      console.log(`! the console did not start (${err.message}); its column stays empty`);
      return undefined;
    });
  const rows: string[] = [];
  // each key: the library call twice (first touch: the server may load its per-block subject state
  // from disk; then warm), the `bus trace` process, the console's /api/trace
  for (const kind of ['correlation', 'event', 'entity'] as const) {
    const first: number[] = [];
    const lib: number[] = [];
    const viaCli: number[] = [];
    const viaConsole: number[] = [];
    let found = 0;
    for (const k of keys.filter((x) => x.kind === kind)) {
      let t = performance.now();
      const res = await auditTrace(bus, k.key, { kind });
      first.push(performance.now() - t);
      found = Math.max(found, res.correlations.reduce((n, c) => n + c.records.length, 0));
      t = performance.now();
      await auditTrace(bus, k.key, { kind });
      lib.push(performance.now() - t);
      viaCli.push(await runCli(['trace', k.key, '--kind', kind, '--json']));
      if (consoleUrl) {
        t = performance.now();
        const r = await fetch(`${consoleUrl}/api/trace?kind=${kind}&q=${encodeURIComponent(k.key)}`, { headers: { authorization: `Bearer ${token}` } });
        const body = (await r.json()) as { correlations?: { records: unknown[] }[] };
        viaConsole.push(performance.now() - t);
        if (!r.ok || !body.correlations?.length) console.log(`! the console found nothing for ${kind} ${k.key} (${r.status})`);
      }
    }
    const max = (xs: number[]) => (xs.length ? fmt(Math.max(...xs)) : '-');
    const cell = (xs: number[]) => (xs.length ? `${fmt(percentile(xs, 50))} / ${max(xs)}` : 'not started');
    rows.push(`| ${kind} | ${found} | ${cell(first)} | ${cell(lib)} | ${cell(viaCli)} | ${cell(viaConsole)} |`);
  }
  console.log('| key | records found (max) | library, first touch ms (median / max) | library, again ms | `bus trace` process ms | console /api/trace ms |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  await stopChild(consoleChild);
  await bus.jsm.streams.delete(bus.names.streams.audit).catch(() => undefined);
  await bus.close();
  if (o.legacy) await legacyBench(o);
  await auditWriteCost({ events: o.writeEvents ?? 10_000, rounds: 3 });
}

/**
 * The same records in the layout before the index (`audit.<stage>.<outcome>`, a handful of
 * subjects), on a server of its own: what the index costs in server memory and store, and what
 * a trace cost before it (a scan of every record, as `bus trace --legacy` still does).
 */
async function legacyBench(o: TraceBenchOptions): Promise<void> {
  const storeDir = await mkdtemp(join(tmpdir(), 'bench-legacy-'));
  const server = await spawnNatsServer({ storeDir });
  const prefix = `l${Date.now().toString(36)}`;
  const bus: Bus = await connectBus({ config: loadBusConfig({ NATS_URL: server.url, BUS_PREFIX: prefix }), name: 'bench-legacy', log });
  try {
    await bus.applyTopology(topology({ prefix }));
    const before = procStats(server.pid);
    const actions = Math.ceil(o.records / STEPS.length);
    let inflight: Promise<unknown>[] = [];
    for (let a = 0; a < actions; a++) {
      for (const r of recordsOf(a)) {
        inflight.push(bus.publish(`${prefix}.audit.${r.stage}.${r.outcome}`, encodeAudit(r), { msgId: auditMsgId(r), headers: { [AuditHeaders.CorrelationId]: r.correlationId } }));
        if (inflight.length >= o.window) {
          await Promise.all(inflight);
          inflight = [];
        }
      }
    }
    await Promise.all(inflight);
    const after = procStats(server.pid);
    const info = await bus.jsm.streams.info(bus.names.streams.audit);
    const key = recordsOf(Math.floor(actions / 2))[0]!.correlationId;
    const t = performance.now();
    const found = await legacyAuditOf(bus, key);
    console.log(`old layout (audit.<stage>.<outcome>), same records: ${fmt(info.state.bytes / o.records)} stored bytes per record, ${info.state.num_subjects ?? 0} subjects; ` +
      (before && after ? `nats-server RSS ${fmt(before.rssMb)} → ${fmt(after.rssMb)} MB (${fmt(((after.rssMb - before.rssMb) * 1024 * 1024) / o.records)} bytes per record); ` : '') +
      `a trace by correlation id scans them all: ${fmt(performance.now() - t)} ms (${found.length} records)`);
  } finally {
    await bus.close();
    await server.stop();
    await rm(storeDir, { recursive: true, force: true });
  }
}
