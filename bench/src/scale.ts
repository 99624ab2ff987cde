// Scale (issue #16): what the bus keeps in nats-server per event and per entity, and whether it
// stops growing once its windows are full. Each phase runs on a nats-server of its own (its RSS
// is the figure), through the real pieces that keep state: the ingest pipeline and its dedup,
// transform, the ordering guard, the projection. Windows are shortened in proportion (the
// dedup horizon to BENCH_SCALE_HORIZON_SEC, the stream duplicate windows by the same factor).
// Never fails on numbers; every loop is bounded by a count and a duration.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Bus, connectBus, done, ensureConsumer, loadBusConfig } from '@bus/bus';
import { demoConnectors, demoSchemas } from '@bus/catalog';
import type { DeliveryCommand } from '@bus/connectors';
import { createEnvelope, decode } from '@bus/envelope';
import { createIntake, createIntakeMetrics, defineSource } from '@bus/intake';
import { createLogger, createMetrics } from '@bus/observability';
import { createOrderingGuard, FOLD_PARTITIONS, foldIdleVersions, startFolder } from '@bus/ordering';
import { applyRecord, projectionKey, recordOf } from '@bus/projection';
import { projectionBucket, type Topology, topology, workerConsumer } from '@bus/streams';
import { createTransformer, createTransformMetrics } from '@bus/transformer';
import { z } from 'zod';
import { type ProfiledServer, spawnProfiledNats } from './nats-heap.js';
import { procStats } from './proc.js';
import { fmt, growth } from './stats.js';
import { fillDedup, DEDUP_DESIGN, scaledDedup } from './scale-dedup.js';

export interface ScaleOptions {
  /** Dedup entries written straight through the dedup store (bytes per event in the horizon). */
  dedupEntries: number;
  /** Ids put through a stream's own duplicate window (Nats-Msg-Id), measured on their own. */
  windowIds: number;
  /** Entities through the ordering guard and the projection (bytes per entity per connector). */
  entities: number;
  /** The pipeline run (flat or not): at most this many seconds … */
  seconds: number;
  /** … and at most this many events. */
  events: number;
  /** The shortened dedup horizon (the real one: 3 days); the stream windows shrink by the same factor. */
  horizonSec: number;
  /** Requests in flight in the pipeline run and writes in flight in the fills. */
  window: number;
  /** Events per second offered in the pipeline run; 0 = as many as the window allows. */
  rate: number;
  /**
   * Orders the pipeline run updates, round robin (each event the next version of one): a fixed population, as in
   * production, so that per-entity state is full once every order was seen and only history could grow after it.
   */
  pipelineEntities: number;
  /** Only the pipeline run (BENCH_SCALE_PARTS=pipeline). */
  pipelineOnly?: boolean;
}

const silent = createLogger({ service: 'bench-scale', level: 'silent' });
const MB = 1024 * 1024;
const DAY = 86_400;
/** The real windows the shortened ones stand for. */
const REAL = { horizonSec: 3 * DAY, eventsWindowSec: 3_600, deliveriesWindowSec: 600 };

function du(dir: string): number {
  try {
    return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split(/\s+/)[0]);
  } catch {
    return Number.NaN;
  }
}
const rss = (pid: number | undefined) => (procStats(pid)?.rssMb ?? Number.NaN) * MB;
const until = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the server's RSS has not moved by more than 1 % for 3 s (bounded: 20 s). */
async function settledRss(pid: number | undefined): Promise<number> {
  let last = rss(pid);
  const started = Date.now();
  let steady = 0;
  while (Date.now() - started < 20_000 && steady < 3) {
    await until(1_000);
    const now = rss(pid);
    steady = Math.abs(now - last) <= last * 0.01 ? steady + 1 : 0;
    last = now;
  }
  return last;
}

/**
 * The live heap once the block caches loaded by the last writes and reads have expired: nats-server 2.9 keeps a file
 * block's messages in memory for seconds after its last access (measured after folding 200,000 entities: 65 MB right
 * after, 8.6 MB 5 s later, 4.6 MB from 15 s on). Those caches follow the blocks touched in the last seconds, not the
 * state kept; the pipeline run samples them as they come, under traffic. Waits until two readings 3 s apart differ by
 * less than 2 % (bounded: 30 s).
 */
async function settledHeap(s: ProfiledServer): Promise<number> {
  let last = await s.liveHeap();
  const started = Date.now();
  while (Date.now() - started < 30_000) {
    await until(3_000);
    const now = await s.liveHeap();
    if (Math.abs(now - last) <= last * 0.02) return now;
    last = now;
  }
  return last;
}

/** RSS, live Go heap and store size of a server once it has settled. */
interface Footprint { rss: number; heap: number; disk: number }
async function footprint(s: ProfiledServer): Promise<Footprint> {
  const rssNow = await settledRss(s.server.pid);
  return { rss: rssNow, heap: await settledHeap(s), disk: du(s.server.storeDir) };
}

/**
 * A nats-server of its own, a bus on it with `topo` applied; `fn` runs; the server's footprint before, after, and after a
 * restart on the same store (what the state holds once loaded, without the history of writing it).
 */
async function onFreshServer<T>(topo: (prefix: string) => Topology, fn: (bus: Bus, server: { pid: number; storeDir: string; heap: () => Promise<number> }) => Promise<T>):
  Promise<{ result: T } & Measured> {
  const storeDir = await mkdtemp(join(tmpdir(), 'bench-scale-'));
  let s = await spawnProfiledNats(storeDir);
  const prefix = 'sc';
  const bus = await connectBus({ config: loadBusConfig({ NATS_URL: s.server.url, BUS_PREFIX: prefix }), name: 'bench-scale', log: silent });
  try {
    await bus.applyTopology(topo(prefix));
    const before = await footprint(s);
    const result = await fn(bus, { pid: s.server.pid, storeDir, heap: s.liveHeap });
    await bus.nc.flush();
    const after = await footprint(s);
    await bus.close();
    await s.server.stop();
    s = await spawnProfiledNats(storeDir);
    const restarted = await footprint(s);
    return { result, before, after, restarted };
  } finally {
    await bus.close().catch(() => undefined);
    await s.server.stop();
    await rm(storeDir, { recursive: true, force: true });
  }
}

/** Runs `n` async steps, `window` at a time. */
async function inWindow(n: number, window: number, step: (i: number) => Promise<void>, progress?: (i: number) => void, stop?: () => boolean): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(window, n) }, async () => {
    while (next < n && !stop?.()) {
      const i = next++;
      await step(i);
      if (i % 50_000 === 0) progress?.(i);
    }
  }));
}

/** The bus's topology with every window shortened by `factor` (at least 1 s each). */
function shortened(prefix: string, horizonSec: number): Topology {
  const t = topology({ prefix });
  const factor = horizonSec / REAL.horizonSec;
  for (const s of t.streams) {
    if (s.duplicateWindowSec) s.duplicateWindowSec = Math.max(1, Math.round(s.duplicateWindowSec * factor));
  }
  return scaledDedup(t, prefix, horizonSec);
}

interface PerItem {
  what: string;
  items: number;
  /** nats-server RSS per item once written (settled), garbage of the writing included. */
  memPer: number;
  /** Its Go heap in use after a full collection, per item: what it keeps for the state. */
  heapPer: number;
  /** RSS per item after a restart on the same store: the state loaded, without the garbage of writing it. */
  restartPer: number;
  diskPer: number;
}

type Measured = { before: Footprint; after: Footprint; restarted: Footprint };
function perItem(what: string, items: number, r: Measured): PerItem {
  return {
    what, items,
    memPer: (r.after.rss - r.before.rss) / items, heapPer: (r.after.heap - r.before.heap) / items,
    restartPer: (r.restarted.rss - r.before.rss) / items, diskPer: (r.after.disk - r.before.disk) / items,
  };
}

const progressLine = (what: string, total: number) => (i: number) => console.error(`  … ${what}: ${fmt(i)} / ${fmt(total)}`);

/** Bytes per event kept by ingest's dedup, written straight through its store. */
async function dedupPerEvent(o: ScaleOptions): Promise<PerItem & { processPer: number }> {
  const r = await onFreshServer((p) => shortened(p, REAL.horizonSec), (bus) =>
    fillDedup(bus, o.dedupEntries, o.window, progressLine('dedup entries', o.dedupEntries)));
  return { ...perItem(`ingest dedup (${DEDUP_DESIGN})`, o.dedupEntries, r), processPer: r.result / o.dedupEntries };
}

/** Bytes per id in a stream's own duplicate window: the same messages with and without Nats-Msg-Id. */
async function streamWindowPerId(o: ScaleOptions): Promise<PerItem> {
  const run = (withIds: boolean) => onFreshServer((p) => topology({ prefix: p }), async (bus) => {
    const subject = bus.names.subjects.event('scale', 'window.test');
    const body = new Uint8Array(100);
    await inWindow(o.windowIds, o.window, async (i) => {
      await bus.js.publish(subject, body, withIds ? { msgID: `scale:window-${i}-${'x'.repeat(24)}` } : undefined);
    }, progressLine(`stream window ${withIds ? 'with' : 'without'} ids`, o.windowIds));
  });
  const plain = await run(false);
  const ids = await run(true);
  const per = (k: keyof Footprint, to: 'after' | 'restarted') => (ids[to][k] - ids.before[k] - (plain[to][k] - plain.before[k])) / o.windowIds;
  return {
    what: 'EVENTS duplicate window (Nats-Msg-Id, ~40-char ids)', items: o.windowIds,
    memPer: per('rss', 'after'), heapPer: per('heap', 'after'), restartPer: per('rss', 'restarted'), diskPer: per('disk', 'after'),
  };
}

/**
 * Bytes per entity for one connector's applied versions: one begin + commit per entity through the ordering guard,
 * either all kept as keys (`fold` false: every entity in use) or folded as deliver does once they are idle — here a
 * pass after every `FOLD_CHUNK` entities with no idle wait (the bench cannot wait deliver's 10 minutes), so the
 * server reuses what folded keys freed as a long-running one does.
 */
async function versionsPerEntity(o: ScaleOptions, fold: boolean): Promise<PerItem> {
  const FOLD_CHUNK = 20_000;
  const r = await onFreshServer((p) => topology({ prefix: p }), async (bus) => {
    const guard = createOrderingGuard({ kv: await bus.kv(bus.names.kv.versions), connector: 'crm', mode: 'strict' });
    let folded = 0;
    for (let from = 0; from < o.entities; from += fold ? FOLD_CHUNK : o.entities) {
      const n = Math.min(o.entities - from, fold ? FOLD_CHUNK : o.entities);
      await inWindow(n, o.window, async (j) => {
        const i = from + j;
        const b = await guard.begin({ entity: { type: 'contact', id: `c-${i}` }, version: 1, storedAtMs: Date.now() });
        if (b.kind !== 'go') throw new Error(`entity c-${i}: the guard answered ${b.kind}`);
        if (!(await guard.commit(b.token))) throw new Error(`entity c-${i}: commit lost its lease`);
      }, (j) => progressLine(`versions${fold ? ' (folded)' : ''}`, o.entities)(from + j));
      // a second ahead: the chunk's last write may share the fold's millisecond (not idle for 0 ms yet)
      if (fold) folded += (await foldIdleVersions({ bus, connector: 'crm', idleMs: 0, now: () => Date.now() + 1_000, maxPerPass: FOLD_CHUNK * 2 })).folded;
    }
    // deliver rewrites partition values older than an hour, so no old block stays pinned: the bench's hour is now
    if (fold) await foldIdleVersions({ bus, connector: 'crm', idleMs: 0, refreshMs: 0, maxRefresh: FOLD_PARTITIONS });
    if (fold && folded !== o.entities) throw new Error(`folded ${folded} of ${o.entities} entities`);
    // every entity still answers with its applied version (a sample: the guard reads the partition)
    for (let i = 0; i < o.entities; i += Math.max(1, Math.floor(o.entities / 100))) {
      const s = await guard.state({ type: 'contact', id: `c-${i}` });
      if (s.applied !== 1) throw new Error(`entity c-${i}: applied ${s.applied} after the fold, expected 1`);
    }
  });
  return perItem(fold
    ? `applied versions, idle entities folded (${fmt(FOLD_PARTITIONS)} partition values per connector)`
    : 'applied versions, every entity in use (one bus_versions key per connector and entity)', o.entities, r);
}

/** Bytes per entity in one projection generation: one event per entity applied as the projector does. */
async function projectionPerEntity(o: ScaleOptions): Promise<PerItem> {
  const r = await onFreshServer((p) => ({ ...topology({ prefix: p }), kv: [...topology({ prefix: p }).kv, projectionBucket({ prefix: p }, 1)] }), async (bus) => {
    const kv = await bus.kv(bus.names.projectionBucket(1));
    await inWindow(o.entities, o.window, async (i) => {
      const env = createEnvelope({ type: 'contact.updated', entity: { type: 'contact', id: `c-${i}` }, version: 1,
        data: { id: `c-${i}`, version: 1, email: `c${i}@example.com`, name: `Contact ${i}` } }, { source: 'standard' });
      await applyRecord(kv, projectionKey('standard', 'contact', `c-${i}`), recordOf(env, i + 1));
    }, progressLine('projection', o.entities));
  });
  return perItem('projection (bus_projection_<gen>, one key per source and entity)', o.entities, r);
}

/** The standard source, listed (the webhook pipeline minus the signature), with the shortened horizon. */
function scaleSource(horizonSec: number) {
  return defineSource({
    name: 'standard', verification: { scheme: 'standard-webhooks' }, secretsEnv: 'STANDARD_WEBHOOK_SECRET',
    schema: z.object({ type: z.string(), data: z.looseObject({ id: z.string(), version: z.number().int() }) }),
    deliveryId: ({ signedDeliveryId }) => signedDeliveryId, eventType: ({ payload }) => payload.type,
    entity: ({ payload }) => ({ type: 'order', id: payload.data.id }), version: ({ payload }) => payload.data.version,
    occurredAt: () => undefined, data: ({ payload }) => payload.data,
    dedupHorizon: `${horizonSec}s`,
  });
}

interface Sample {
  t: number;
  events: number;
  rss: number;
  disk: number;
  /** The live Go heap (after a forced collection), every 5th sample. */
  heap?: number;
  /** bus_versions keys (entities in use and the folded partition values), every 5th sample. */
  versionKeys?: number;
}

/**
 * The pipeline run: orders (taken by both demo connectors) through ingest's pipeline and transform, each command
 * through its connector's ordering guard as deliver does (no target call) and idle entities folded as deliver's folder
 * does, with its idle time shortened like the windows; the server's RSS and store size sampled every 2 s, its live
 * heap and the applied-version keys every 10 s.
 */
async function pipeline(o: ScaleOptions) {
  const factor = o.horizonSec / REAL.horizonSec;
  const windowsFullSec = o.horizonSec + Math.max(1, REAL.eventsWindowSec * factor) + 2;
  const samples: Sample[] = [];
  let sent = 0;
  let duplicates = 0;
  let retries = 0;
  let folded = 0;
  /** The guard's answers: every command should go (a skip or a wait here means a folded version was lost or misread). */
  const answers = new Map<string, number>();
  const r = await onFreshServer((p) => shortened(p, o.horizonSec), async (bus, server) => {
    const metrics = createMetrics('bench-scale');
    const intake = createIntake({ bus, sources: [scaleSource(o.horizonSec)], env: {}, log: silent, metrics: createIntakeMetrics(metrics.registry), webhooks: false });
    const transformer = createTransformer({ bus, connectors: demoConnectors, schemas: demoSchemas, log: silent, metrics: createTransformMetrics(metrics.registry) });
    const running = await transformer.start();
    await ensureConsumer(bus.jsm, workerConsumer({ stream: bus.names.streams.deliveries, durable: 'scale-drain', description: 'bench: drains commands' }));
    const versions = await bus.kv(bus.names.kv.versions);
    const guards = new Map(demoConnectors.map((c) => [c.name, createOrderingGuard({ kv: versions, connector: c.name, mode: 'strict' })]));
    const drain = await bus.consume({
      stream: bus.names.streams.deliveries, durable: 'scale-drain', stage: 'deliver', concurrency: 256, decode: (d) => decode(d) as DeliveryCommand,
      handler: async (cmd, ctx) => {
        const guard = guards.get(cmd.connector)!;
        const b = await guard.begin({ entity: cmd.entity, version: cmd.version, storedAtMs: ctx.storedAtMs });
        const answer = b.kind === 'go' ? 'go' : b.kind === 'gap-expired' ? b.kind : `${b.kind} (${b.reason})`;
        answers.set(answer, (answers.get(answer) ?? 0) + 1);
        if (b.kind === 'go' && !(await guard.commit(b.token))) throw new Error(`${cmd.connector} ${cmd.entity.id}: commit lost its lease`);
        return done();
      },
    });
    // deliver folds entities idle for 10 minutes, every minute, and rewrites partition values older than 20 minutes (so they
    // pin no file block and its deleted keys): shortened like the windows (at least 1 s, 2 s and 10 s)
    const folders = demoConnectors.map((c) => startFolder({ bus, connector: c.name, idleMs: Math.max(1_000, 600_000 * factor), everyMs: Math.max(2_000, 60_000 * factor),
      refreshMs: Math.max(10_000, 1_200_000 * factor), log: silent, onPass: (f) => { folded += f.folded; } }));
    const started = Date.now();
    let ticks = 0;
    const sampler = setInterval(() => {
      const sample: Sample = { t: (Date.now() - started) / 1000, events: sent, rss: rss(server.pid), disk: du(server.storeDir) };
      samples.push(sample);
      // a forced collection every 10 s (a few ms of the server's CPU), read on its own: the sampler never waits for it
      if (ticks++ % 5 === 0) {
        server.heap().then((h) => { sample.heap = h; }, () => undefined);
        bus.jsm.streams.info(`KV_${bus.names.kv.versions}`).then((i) => { sample.versionKeys = i.state.num_subjects ?? Number.NaN; }, () => undefined);
      }
    }, 2_000);
    // each event's index and when it was stored; a retry is sent of the first one stored at least half a horizon ago
    const storedAt = new Float64Array(o.events);
    let back = 0;
    let old = -1;
    try {
      await inWindow(o.events, o.window, async (i) => {
        if (Date.now() - started > o.seconds * 1000) return;
        // a steady rate the machine holds (real traffic), not the most it can take: a saturated server buffers
        if (o.rate > 0) await until(Math.max(0, started + (i * 1000) / o.rate - Date.now()));
        // retries were never stored (0): step over them, up to the first event stored less than half a horizon ago
        const cutoff = Date.now() - (o.horizonSec * 1000) / 2;
        while (back < i && (storedAt[back] === 0 ? i - back > o.window : storedAt[back]! < cutoff)) {
          if (storedAt[back]! > 0) old = back;
          back++;
        }
        // every 20th is a retry of an event stored half a horizon back: past the stream's window, inside the horizon
        const retry = i % 20 === 19 && old >= 0;
        const n = retry ? old : i;
        const order = n % o.pipelineEntities;
        const version = Math.floor(n / o.pipelineEntities) + 1;
        const a = await intake.receiveListed('standard', {
          payload: { type: 'order.created', data: { id: `o-${order}`, version, total: 42, items: [{ sku: 'A-1', quantity: 2 }] } },
          headers: { 'webhook-id': `msg_${n}` },
        });
        if (retry) retries++;
        else storedAt[i] = Date.now();
        if (a.body.status === 'duplicate') duplicates++;
        sent++;
      }, (i) => console.error(`  … pipeline: ${fmt(i)} events, ${fmt((Date.now() - started) / 1000)} s`), () => Date.now() - started > o.seconds * 1000);
    } finally {
      clearInterval(sampler);
      for (const c of running.values()) await c.stop();
      await drain.stop();
      for (const f of folders) await f.stop();
    }
    return (Date.now() - started) / 1000;
  });
  return { seconds: r.result, sent, duplicates, retries, folded, answers, samples, windowsFullSec, ...r };
}

export async function scaleBench(o: ScaleOptions): Promise<void> {
  console.log(`\n## Scale: nats-server memory per event in the windows and per entity (${DEDUP_DESIGN})\n`);
  if (o.pipelineOnly) return printPipeline(o, await pipeline(o));
  const rows: [PerItem & { processPer: number }, ...PerItem[]] = [await dedupPerEvent(o), await streamWindowPerId(o), await versionsPerEntity(o, true), await projectionPerEntity(o), await versionsPerEntity(o, false)];
  console.log('| state | items | nats-server RSS per item | its live Go heap per item | RSS per item after a restart | store on disk per item |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.what} | ${fmt(r.items)} | ${fmt(r.memPer, 1)} B | ${fmt(r.heapPer, 1)} B | ${fmt(r.restartPer, 1)} B | ${fmt(r.diskPer, 1)} B |`);
  console.log('\n(RSS: what the OS sees, garbage of the writing included until Go hands it back; live Go heap: in use after a forced collection once the\n block caches of the last writes and reads expired (seconds), what the server keeps; after a restart: the same store loaded by a fresh server.)');
  console.log(`\nEach ingest process holds the dedup index itself: ${fmt(rows[0]!.processPer, 1)} B per entry (typed arrays, measured in this process).`);

  const [dedup, window, versions, projection, versionsHot] = rows as unknown as [PerItem, PerItem, PerItem, PerItem, PerItem];
  const connectors = 2;
  // transform's own dedup: one key per event and connector before; see scale-dedup.ts
  const transformPerEvent = DEDUP_DESIGN.startsWith('one KV key') ? dedup.memPer * connectors : 0;
  const forecast = (rate: number, horizonSec: number) => ({
    dedup: rate * horizonSec * (dedup.memPer + transformPerEvent),
    windows: rate * (REAL.eventsWindowSec + connectors * REAL.deliveriesWindowSec) * window.memPer,
  });
  console.log(`\nForecast, nats-server memory once the windows are full (${connectors} connectors per event; EVENTS window 1 h, DELIVERIES window 10 min):\n`);
  console.log('| events/s | dedup horizon | dedup state | stream duplicate windows | total |');
  console.log('|---:|---:|---:|---:|---:|');
  for (const rate of [100, 1_000]) {
    for (const days of DEDUP_DESIGN.startsWith('one KV key') ? [30, 3] : [3]) {
      const f = forecast(rate, days * DAY);
      console.log(`| ${fmt(rate)} | ${days} d | ${fmt(f.dedup / MB / 1024, 2)} GB | ${fmt(f.windows / MB / 1024, 2)} GB | ${fmt((f.dedup + f.windows) / MB / 1024, 2)} GB |`);
    }
  }
  console.log(`\nAnd in each ingest process, the dedup index: ${[100, 1_000].map((rate) => `${fmt((rate * 3 * DAY * rows[0]!.processPer) / MB / 1024, 2)} GB at ${fmt(rate)}/s`).join(', ')} (3-day horizon).`);
  console.log(`\nPer entity and connector, applied versions: ${fmt(versions.heapPer, 1)} B of live heap once idle and folded (RSS ${fmt(versions.memPer, 1)} B with the garbage of the fold passes, ${fmt(versions.restartPer, 1)} B after a restart),` +
    ` ${fmt(versionsHot.heapPer, 1)} B while in use (RSS ${fmt(versionsHot.memPer, 1)} B); projection ${fmt(projection.heapPer, 1)} B (RSS ${fmt(projection.memPer, 1)} B) per entity and source` +
    ` → 10 million idle entities × 2 connectors: ${fmt((1e7 * 2 * Math.max(versions.heapPer, versions.restartPer) + 1e7 * Math.max(projection.heapPer, projection.restartPer)) / MB / 1024, 2)} GB` +
    ' (the larger of live heap and RSS after a restart)' +
    ` (the folded figure is mostly the ${fmt(FOLD_PARTITIONS)} partition keys, so it shrinks per entity as entities grow)`);

  printPipeline(o, await pipeline(o));
}

function printPipeline(o: ScaleOptions, p: Awaited<ReturnType<typeof pipeline>>): void {
  console.log(`\nPipeline: ${fmt(p.sent)} events (${fmt(p.retries)} of them retries of an event stored half a horizon before, ${fmt(p.duplicates)} refused as duplicates) in ${fmt(p.seconds)} s (${fmt(p.sent / p.seconds)}/s, ${o.rate > 0 ? `${fmt(o.rate)}/s offered` : `as fast as ${o.window} in flight allow`}), ` +
    `dedup horizon ${o.horizonSec} s (stands for 3 d), windows full after ${fmt(p.windowsFullSec)} s\n`);
  console.log(`${fmt(o.pipelineEntities)} orders updated round robin (each event the next version of one), ${fmt(p.folded)} entity versions folded by the folders ` +
    `(idle ${fmt(Math.max(1, 600 * o.horizonSec / REAL.horizonSec))} s, standing for deliver's 10 minutes); the guard answered ` +
    `${[...p.answers].map(([a, n]) => `${a} ${fmt(n)}`).join(', ') || 'nothing'} (every command should go).\n`);
  console.log('| t | events | nats-server RSS | live Go heap | bus_versions keys | store |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  const withHeap = p.samples.filter((s) => s.heap !== undefined);
  const step = Math.max(1, Math.floor(withHeap.length / 12));
  for (const [i, s] of withHeap.entries()) {
    if (i % step === 0 || i === withHeap.length - 1) console.log(`| ${fmt(s.t)} s | ${fmt(s.events)} | ${fmt(s.rss / MB, 1)} MB | ${fmt(s.heap! / MB, 1)} MB | ${fmt(s.versionKeys ?? Number.NaN)} | ${fmt(s.disk / MB, 1)} MB |`);
  }
  const full = p.samples.filter((s) => s.t >= Math.max(p.windowsFullSec, p.seconds / 2));
  const fullHeap = full.filter((s) => s.heap !== undefined);
  if (fullHeap.length >= 6) {
    // a straight line through the last half (as the soak does): one sample is noise, the slope is the trend
    const verdict = (what: string, ys: number[]) => {
      const g = growth(ys);
      return `${what} ${fmt(ys[0]! / MB, 1)} … ${fmt(ys.at(-1)! / MB, 1)} MB, fitted ${g.rise >= 0 ? '+' : ''}${fmt(g.rise * 100, 1)} % — ${g.rise < 0.05 ? 'flat' : 'GROWING'}`;
    };
    const events = full.at(-1)!.events - full[0]!.events;
    console.log(`\nOver the last half with the windows full (${fmt(full[0]!.t)}–${fmt(full.at(-1)!.t)} s, ${fmt(events)} events; flat: < 5 %): ` +
      `${verdict('live Go heap', fullHeap.map((s) => s.heap!))}; ${verdict('RSS', full.map((s) => s.rss))}; ` +
      `store ${fmt(full[0]!.disk / MB, 1)} → ${fmt(full.at(-1)!.disk / MB, 1)} MB (the history, on disk)`);
  } else {
    console.log(`\n(the run was too short to see the windows full: raise BENCH_SCALE_SEC above ${fmt(p.windowsFullSec * 2)} s)`);
  }
}
