// Reconcile and replay (issue #7): N contacts published to EVENTS, the live projector builds the
// projection (timed), a PostgreSQL table is filled with the matching rows and a known share of
// differences, then one dry run of reconcile in its own process (entities/s, the counts against
// what was planted, its peak RSS); then projection rebuild by replay beside a plain JetStream
// consume of the same stream. Every wait is bounded; nothing here fails on timing.
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Bus, connectBus, type Consumption, loadBusConfig } from '@bus/bus';
import { createEnvelope, decodeEnvelope } from '@bus/envelope';
import { createLogger } from '@bus/observability';
import { createProjector, rebuildProjection } from '@bus/projection';
import type { RunReport } from '@bus/reconcile';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { forkTracked, stopChild, waitForMessage } from './children.js';
import { procStats } from './proc.js';
import { contactData, planted, SOURCE, TABLE_DDL, targetRows } from './reconcile-data.js';
import { type Figure, fmt, printPairs } from './stats.js';

export interface ReconcileBenchOptions {
  natsUrl: string;
  /** The nats-server's pid when the bench spawned it: its CPU over each phase is shown. */
  natsPid?: number;
  pgUrl: string;
  /** Entities (one event each). */
  entities: number;
  /** Entities compared per page by reconcile. */
  pageSize: number;
  /** PubAcks in flight while publishing. */
  window: number;
}

const silent = createLogger({ service: 'bench', level: 'silent' });
const sec = (ms: number) => ms / 1000;
const rate = (n: number, ms: number) => n / sec(ms);
/** Progress on stderr: it shows on a terminal and stays out of the figures on stdout. */
function progress(what: string) {
  let last = performance.now();
  return (done: number, total: number, started: number, force = false) => {
    const now = performance.now();
    if (!force && now - last < 5_000) return;
    last = now;
    console.error(`  … ${what}: ${fmt(done)} / ${fmt(total)} (${fmt(rate(done, now - started))}/s, ${fmt(sec(now - started), 1)} s)`);
  };
}

/** User + system CPU ms per `postgres` process we may read (the server and its backends): what the target cost. */
function postgresCpu(): Map<string, number> | undefined {
  const out = new Map<string, number>();
  try {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') continue;
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out.set(pid, ((Number(rest[11]) + Number(rest[12])) * 1000) / 100);
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    return undefined;
  }
  return out.size ? out : undefined; // a server elsewhere (another host, a container) is not seen
}

/** CPU of the processes that do the work, between two snapshots. */
function cpuMeter(pids: Record<string, number | undefined>) {
  const take = () => ({
    ...Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, procStats(pid)?.cpuMs])),
    bench: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
  } as Record<string, number | undefined>);
  const a = take();
  const pgA = postgresCpu();
  return (perItems: number) => {
    const b = take();
    const pgB = postgresCpu();
    // per process: a backend that ended meanwhile takes its CPU with it (not counted); one that began counts whole
    if (pgA && pgB) {
      a.postgres = 0;
      b.postgres = [...pgB].reduce((sum, [pid, ms]) => sum + ms - (pgA.get(pid) ?? 0), 0);
    }
    return Object.entries(b).filter(([k, v]) => v !== undefined && a[k] !== undefined)
      .map(([k, v]) => `${k} ${fmt(((v! - a[k]!) * 1000) / perItems)} µs`).join(', ');
  };
}

async function publishAll(bus: Bus, n: number, window: number, data: (i: number) => ReturnType<typeof contactData> = contactData): Promise<number> {
  const subject = bus.names.subjects.event(SOURCE, 'contact.updated');
  const started = performance.now();
  const show = progress('publish');
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const d = data(i);
      await bus.publishEnvelope(subject, createEnvelope({ type: 'contact.updated', entity: { type: 'contact', id: d.id }, version: d.version, data: d }, { source: SOURCE }));
      show(i, n, started);
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  return performance.now() - started;
}

/** A plain ordered consumer over EVENTS, decode only: what reading the stream costs without the bus. */
async function rawConsume(natsUrl: string, stream: string, n: number): Promise<number> {
  const nc = await connect({ servers: natsUrl });
  try {
    const c = await jetstream(nc).consumers.get(stream);
    let seen = 0;
    const started = performance.now();
    const msgs = await c.consume({ max_messages: 512 });
    const stall = setTimeout(() => msgs.stop(), 120_000); // bounded: a stuck read ends the loop
    for await (const m of msgs) {
      decodeEnvelope(m.data);
      if (++seen === n) break;
    }
    clearTimeout(stall);
    const ms = performance.now() - started;
    await msgs.close();
    return seen === n ? ms : Number.NaN;
  } finally {
    await nc.close();
  }
}

export async function reconcileBench(o: ReconcileBenchOptions): Promise<void> {
  const n = o.entities;
  const prefix = `r${Date.now().toString(36)}`;
  const schema = `bench_${prefix}`;
  const want = planted(n);
  console.log(`\n## reconcile: ${fmt(n)} entities against a PostgreSQL table, and the projection rebuilt by replay\n`);
  console.log(`${fmt(n)} contacts (source ${SOURCE}, one contact.updated each, schema-validated as the service does), published ${o.window} PubAcks in flight;`);
  console.log(`target: a PostgreSQL table (${o.pgUrl.replace(/\/\/[^@/]*@/, '//…@')}, schema ${schema}, dropped at the end) holding them with planted differences:`);
  console.log(`${fmt(want.missing)} missing, ${fmt(want.stale)} stale (half an edited source-owned field, half an older version), ${fmt(want['target-newer'])} target-newer,`);
  console.log(`${fmt(want['unknown-to-source'])} unknown-to-source, and a target-owned field (lead_score) that differs on every row and must not be reported.`);

  const admin = new pg.Pool({ connectionString: o.pgUrl, max: 2 });
  admin.on('error', () => {});
  try {
    await admin.query('SELECT 1');
  } catch (err) {
    console.log(`! reconcile part skipped: PostgreSQL not reachable at ${o.pgUrl.replace(/\/\/[^@/]*@/, '//…@')} (${(err as Error).message}); set BENCH_PG_URL`);
    await admin.end();
    return;
  }
  const bus = await connectBus({ config: loadBusConfig({ NATS_URL: o.natsUrl, BUS_PREFIX: prefix }), name: 'bench-reconcile', log: silent });
  let projector: Consumption | undefined;
  let child: ChildProcess | undefined;
  let schemaMade = false;
  try {
    await bus.applyTopology();
    const stream = bus.names.streams.events;
    const entries = async (generation: number | undefined) => generation === undefined ? Number.NaN
      : (await bus.jsm.streams.info(`KV_${bus.names.projectionBucket(generation)}`).catch(() => undefined))?.state.messages ?? Number.NaN;

    // ---- publish
    const pubMs = await publishAll(bus, n, o.window);
    console.log(`\npublished ${fmt(n)} events in ${fmt(sec(pubMs), 1)} s (${fmt(rate(n, pubMs))}/s)`);

    /** A projector (a new process: nothing in its memory) on the durable consumer, until it handled `total` events or 10 minutes passed. */
    const runProjector = async (total: number, what: string) => {
      const p = createProjector({ bus, log: silent });
      const cpu = cpuMeter({ 'nats-server': o.natsPid });
      const started = performance.now();
      projector = await p.start();
      const show = progress(what);
      const handled = () => { const c = p.counts(); return c.applied + c.stale + c.duplicate; };
      while (handled() < total && performance.now() < started + 600_000) {
        await new Promise((r) => setTimeout(r, 20));
        show(handled(), total, started);
      }
      const ms = performance.now() - started;
      const cpuLine = cpu(total);
      await projector.stop();
      projector = undefined;
      return { p, handled: handled(), ms, cpuLine };
    };

    // ---- the live projector drains the backlog
    const { p: live, handled, ms: liveMs, cpuLine: liveCpuLine } = await runProjector(n, 'live projection');
    if (handled < n) throw new Error(`the live projector handled ${handled} of ${n} events in 10 minutes; the rest of this part is meaningless`);
    // counted now: the rebuild below deletes this generation once it has replaced it
    const liveEntries = await entries(live.generation());
    console.log(`live projector (durable consumer, 256 in flight): ${fmt(n)} events in ${fmt(sec(liveMs), 1)} s (${fmt(rate(n, liveMs))}/s); outcomes ${JSON.stringify(live.counts())}; ` +
      `${fmt(live.writes() / n, 2)} KV writes per event`);
    console.log(`  CPU per event: ${liveCpuLine} (bench = this process: the projector ran here)`);

    // ---- the target
    await admin.query(`CREATE SCHEMA "${schema}"`);
    schemaMade = true;
    await admin.query(TABLE_DDL(schema));
    const fillStarted = performance.now();
    let rows = 0;
    for (let from = 0; from < n; from += 10_000) {
      const c = targetRows(n, from, from + 10_000);
      await admin.query(`INSERT INTO "${schema}".contacts (id, version, email, name, phone, lead_score)
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::int[])`, [c.id, c.version, c.email, c.name, c.phone, c.leadScore]);
      rows += c.id.length;
    }
    await admin.query(`ANALYZE "${schema}".contacts`);
    console.log(`target filled: ${fmt(rows)} rows in ${fmt(sec(performance.now() - fillStarted), 1)} s (INSERT … SELECT FROM unnest, 10,000 rows a statement)`);

    // ---- reconcile, dry run, in its own process
    const tail: string[] = [];
    child = forkTracked(fileURLToPath(new URL('./reconcile-child.js', import.meta.url)), [], {
      env: { ...process.env, NATS_URL: o.natsUrl, BUS_PREFIX: prefix, PG_URL: o.pgUrl, BENCH_PG_SCHEMA: schema, BENCH_PAGE_SIZE: String(o.pageSize) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line) tail.push(line.slice(0, 400));
      tail.splice(0, Math.max(0, tail.length - 20));
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const c = child;
    await waitForMessage(c, (m) => ((m as { type?: string })?.type === 'ready' ? true : undefined), 30_000, 'the reconcile process', () => tail.join('\n'));
    const idle = procStats(c.pid);
    const recStarted = performance.now();
    const showRec = progress('reconcile');
    c.on('message', (m: { type?: string; checked?: number; listed?: number; phase?: string }) => {
      if (m?.type === 'progress') showRec(m.phase === 'target' ? m.listed! : m.checked!, n, recStarted);
    });
    const recCpu = cpuMeter({ reconcile: c.pid, 'nats-server': o.natsPid });
    c.send({ type: 'run' });
    type Result = { type: 'done'; report: RunReport; ms: number; projectionMs?: number } | { type: 'failed'; error: string };
    const result = await waitForMessage(c, (m) => {
      const r = m as Result;
      return r?.type === 'done' || r?.type === 'failed' ? r : undefined;
    }, 900_000, 'the reconcile run', () => tail.join('\n'));
    const after = procStats(c.pid);
    const recCpuLine = recCpu(n);
    // let it exit by itself (closing its connections, writing a --cpu-prof profile), then make sure
    const gone = new Promise((r) => c.once('exit', r));
    c.send({ type: 'exit' });
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5_000))]);
    await stopChild(c);
    child = undefined;
    if (result.type === 'failed') throw new Error(`the reconcile run failed:\n${result.error}\n${tail.slice(-8).join('\n')}`);

    const r = result.report;
    const listMs = result.projectionMs === undefined ? Number.NaN : result.ms - result.projectionMs;
    console.log(`\n| reconcile, dry run, page size ${fmt(o.pageSize)} (own process) | entities | time | entities/s | peak RSS (VmHWM) | RSS connected, idle |`);
    console.log('|---|---:|---:|---:|---:|---:|');
    console.log(`| whole run: compare ${fmt(r.checked)} entities, then list ${fmt(r.listed)} target rows | ${fmt(n)} | ${fmt(sec(result.ms), 1)} s | ${fmt(rate(n, result.ms))} | ${fmt(after?.peakMb, 1)} MB | ${fmt(idle?.rssMb, 1)} MB |`);
    if (result.projectionMs !== undefined) {
      console.log(`| phase 1: projection pages against lookupMany | ${fmt(r.checked)} | ${fmt(sec(result.projectionMs), 1)} s | ${fmt(rate(r.checked, result.projectionMs))} | | |`);
      console.log(`| phase 2: target listing (keyset pages) | ${fmt(r.listed)} rows | ${fmt(sec(listMs), 1)} s | ${fmt(rate(r.listed, listMs))} rows/s | | |`);
    }
    console.log(`CPU per entity over the run: ${recCpuLine}`);

    console.log('\n| difference | planted | found | |');
    console.log('|---|---:|---:|---|');
    let wrong = 0;
    for (const kind of ['missing', 'stale', 'target-newer', 'unknown-to-source'] as const) {
      const ok = r.counts[kind] === want[kind];
      if (!ok) wrong++;
      console.log(`| ${kind} | ${fmt(want[kind])} | ${fmt(r.counts[kind])} | ${ok ? 'ok' : '**DIFFERS**'} |`);
    }
    console.log(`(report ${r.runId}: status ${r.status}, ${fmt(r.items)} items, ${fmt(r.flagged)} flagged, ${fmt(r.repaired)} repaired — a dry run repairs nothing)`);
    if (wrong || r.checked !== n || r.status !== 'done') {
      console.log(`\n!!!!! RECONCILE FOUND OTHER COUNTS THAN WERE PLANTED: ${wrong} kind(s) differ, ${fmt(r.checked)} of ${fmt(n)} entities checked, status ${r.status}. The figures above time a wrong run. !!!!!`);
    }

    // ---- replay: plain consume vs rebuildProjection, same stream
    const raws: number[] = [];
    for (let k = 0; k < 3; k++) raws.push(await rawConsume(o.natsUrl, stream, n));
    const rawMs = raws.sort((a, b) => a - b)[1]!;
    const rebuildCpu = cpuMeter({ 'nats-server': o.natsPid });
    const showRebuild = progress('rebuild');
    const rebuildStarted = performance.now();
    const rb = await rebuildProjection({ bus, log: silent, progressEveryMs: 1_000, onProgress: (p) => showRebuild(p.events, n, rebuildStarted) });
    const rebuildCpuLine = rebuildCpu(n);
    const raw: Figure = { what: '', rate: rate(n, rawMs) };
    const rebuiltEntries = await entries(rb.generation);

    // the same replay where entities change in bursts: 4 more versions of every 10th entity, one after the other, so an
    // entity's events share pull batches and the rebuild folds them into one write (the data above has one event per entity)
    const bursty = Math.floor(n / 10);
    await publishAll(bus, bursty * 4, o.window, (k) => {
      const d = contactData(Math.floor(k / 4) * 10);
      return { ...d, version: d.version + 1 + (k % 4) };
    });
    const total = n + bursty * 4;
    const rawBurstyMs = await rawConsume(o.natsUrl, stream, total);
    const burstyCpu = cpuMeter({ 'nats-server': o.natsPid });
    const rb2 = await rebuildProjection({ bus, log: silent });
    const burstyCpuLine = burstyCpu(total);
    const burstyEntries = await entries(rb2.generation);
    printPairs('projection: replay of EVENTS beside a plain consume of it (same run)', [
      { what: `rebuildProjection: ${fmt(rb.events)} events (one per entity) into a fresh bucket, switched`, raw, bus: { what: '', rate: rate(rb.events, rb.elapsedMs) } },
      { what: 'live projector draining the same backlog (durable, 256 in flight)', raw, bus: { what: '', rate: rate(n, liveMs) } },
      { what: `rebuildProjection: ${fmt(rb2.events)} events, every 10th entity 4 more times in a row`, raw: { what: '', rate: rate(total, rawBurstyMs) },
        bus: { what: '', rate: rate(rb2.events, rb2.elapsedMs) } },
    ]);
    console.log(`(raw: an ordered consumer over ${stream}, decode only, median of 3 (the last line: once, over the longer stream); rebuild once: ` +
      `${fmt(sec(rb.elapsedMs), 1)} s, outcomes ${JSON.stringify(rb.counts)}, switched ${rb.switched})`);
    console.log(`KV writes per event: rebuild ${fmt(rb.writes / rb.events, 2)}, live ${fmt(live.writes() / n, 2)}, rebuild of the bursty stream ${fmt(rb2.writes / rb2.events, 2)} ` +
      `(${fmt(rb2.writes)} writes for ${fmt(rb2.events)} events over ${fmt(n)} entities; outcomes ${JSON.stringify(rb2.counts)})`);
    console.log(`rebuild CPU per event: ${rebuildCpuLine}; bursty: ${burstyCpuLine} (bench = this process: the rebuild ran here)`);
    // each generation must hold every entity once: the two rebuilt ones and the one the live projector built
    console.log(`entries: rebuilt generation ${rb.generation} ${fmt(rebuiltEntries)}, the live projector's generation ${live.generation() ?? '-'} ${fmt(liveEntries)}, ` +
      `generation ${rb2.generation} ${fmt(burstyEntries)}`);
    if (rb.counts.applied !== n || rebuiltEntries !== n || liveEntries !== n || burstyEntries !== n) {
      console.log(`! the projection does not hold every entity once (applied ${fmt(rb.counts.applied)}, entries ${fmt(rebuiltEntries)} / ${fmt(liveEntries)} / ${fmt(burstyEntries)}, want ${fmt(n)})`);
    }

    // ---- a projector process that starts on the existing projection (a restart, a deploy) and catches up: the bursty
    // events (it holds them already: rebuilt) and a newer version of every other entity. None is in its memory.
    const updates = Math.floor(n / 2);
    await publishAll(bus, updates, o.window, (k) => {
      const d = contactData(2 * k + 1);
      return { ...d, version: d.version + 10 };
    });
    const behind = bursty * 4 + updates;
    const { p: restarted, handled: handledR, ms: restartMs, cpuLine: restartCpuLine } = await runProjector(behind, 'restarted projector');
    console.log(`\nprojector started on the existing projection, catching up on ${fmt(behind)} events of known entities (${fmt(bursty * 4)} it holds, ` +
      `${fmt(updates)} newer versions): ${fmt(rate(handledR, restartMs))}/s; outcomes ${JSON.stringify(restarted.counts())}; ` +
      `${fmt(restarted.writes() / Math.max(1, handledR), 2)} KV writes per event (refused guesses included)`);
    console.log(`  CPU per event: ${restartCpuLine} (bench = this process: the projector ran here)`);
  } finally {
    if (child) await stopChild(child);
    await projector?.stop().catch(() => undefined);
    if (schemaMade) await admin.query(`DROP SCHEMA "${schema}" CASCADE`).catch((err: Error) => console.log(`! could not drop schema ${schema}: ${err.message}`));
    await admin.end().catch(() => undefined);
    // on a NATS of its own the bench's store is deleted anyway; elsewhere, do not leave 100,000 events behind
    try {
      const streams: string[] = [];
      for await (const s of bus.jsm.streams.names()) if (s.startsWith(`${prefix.toUpperCase()}_`) || s.startsWith(`KV_${prefix}_`)) streams.push(s);
      for (const s of streams) await bus.jsm.streams.delete(s).catch(() => undefined);
    } catch {
      // best effort
    }
    await bus.close();
  }
}
