// One chaos run: real services, a misbehaving target per connector, a seeded load and process faults, then the checks.
import { BusError } from '@bus/errors';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { auditRecordsOf, type Bus, connectBus, loadBusConfig } from '@bus/bus';
import { loadCatalog } from '@bus/catalog';
import { createLogger } from '@bus/observability';
import { startCluster, startNats, type TestCluster, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { countDeadLetters, readBusCounts, readPending } from './bus-counts.js';
import type { FaultMix } from './fault-mix.js';
import { checkInvariants, type OrderingMode, type Verdict } from './invariants.js';
import type { Apply } from './target.js';
import { type PlannedEvent, planLoad, postEvents } from './load.js';
import { hashSeed, mulberry32 } from './prng.js';
import { type ConformanceProfile, contactProfile } from './profile.js';
import { applyScenario, type ScenarioName } from './scenarios.js';
import { createServices, type Services } from './services.js';
import { targetsFor } from './targets.js';

export interface ChaosOptions {
  /** Required: every random choice of the run derives from it and the scenario. */
  seed: number;
  /** Required. */
  scenario: ScenarioName;
  /** Entities posted; default 20. */
  entities?: number;
  /** Versions per entity; default 4. */
  versions?: number;
  /** Share of (entity, version) sent twice; default 0.1. */
  duplicateFraction?: number;
  /** deliver processes; default 3. */
  delivers?: number;
  /** The target's fault mix; default DEFAULT_FAULT_MIX. */
  faults?: Partial<FaultMix>;
  /** Default true: the target applies a repeated idempotency key again. */
  ignoreIdempotencyKeys?: boolean;
  /** BUS_CATALOG for the services (absolute path of a built ES module); default this kit's catalog. */
  catalog?: string;
  /** A server to share between runs (each run has its own prefix); default one per run. Not used by cluster-node. */
  nats?: TestNats;
  /** Runs the reconcile service every this many seconds; default 0 = no reconcile service. */
  reconcileEverySec?: number;
  /** Bound on the wait for quiet after the faults, ms; default 120 000. Past it the checks run anyway (pending shows). */
  quiesceTimeoutMs?: number;
  /** Extra environment for the services. */
  env?: Record<string, string>;
  /** Progress lines; default console.log. */
  say?: (line: string) => void;
}

export interface ConnectorResult {
  connector: string;
  mode: OrderingMode;
  verdict: Verdict;
  /** Applies the target recorded, and how its calls were answered. */
  applies: number;
  targetCounts: Record<string, number>;
}

export interface ChaosResult {
  seed: number;
  scenario: ScenarioName;
  ok: boolean;
  connectors: ConnectorResult[];
  /** What the scenario did, in order. */
  schedule: string[];
  /** Service exits nobody caused. */
  crashes: string[];
  /** True when the bus never went quiet within quiesceTimeoutMs. */
  timedOut: boolean;
  load: { events: number; pairs: number; sameIdTwice: number; newIdTwice: number };
  elapsedMs: number;
  /** The command that runs this again. */
  replay: string;
}

/** This kit's own catalog (built): the demo crm with test timings, strict and latest. */
export const DEFAULT_CATALOG = fileURLToPath(new URL('./catalog.js', import.meta.url));
const TOKEN = 'conformance-token';
const silent = createLogger({ service: 'conformance', level: 'silent' });

/** Runs one scenario with one seed and checks every connector under test. Throws only when the run cannot be set up. */
export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const started = Date.now();
  const secs = () => ((Date.now() - started) / 1000).toFixed(1);
  const say = o.say ?? ((line: string) => console.log(line));
  const random = mulberry32(hashSeed(o.seed, o.scenario));
  const catalogPath = o.catalog ?? DEFAULT_CATALOG;
  const catalog = await loadCatalog({ BUS_CATALOG: catalogPath });
  const profile = ((await import(pathToFileURL(catalogPath).href)) as { conformance?: ConformanceProfile }).conformance ?? contactProfile;
  const prefix = uniquePrefix();
  const plan = planLoad({ random, profile, tag: prefix, entities: o.entities ?? 20, versions: o.versions ?? 4, duplicateFraction: o.duplicateFraction ?? 0.1 });
  const delivers = o.delivers ?? 3;
  const schedule: string[] = [];
  const note = (line: string) => {
    schedule.push(line);
    say(`  [seed ${o.seed} ${o.scenario}] ${line}`);
  };

  let cluster: TestCluster | undefined;
  let nats: TestNats | undefined;
  let bus: Bus | undefined;
  const targets = await targetsFor({ catalog, profile, seed: o.seed, faults: o.faults, ignoreIdempotencyKeys: o.ignoreIdempotencyKeys });
  let services: Services | undefined;
  try {
    if (o.scenario === 'cluster-node') cluster = await startCluster(3);
    else nats = o.nats ?? (await startNats());
    const natsUrl = cluster?.url ?? nats!.url;
    const replicas = cluster ? '3' : '1';
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: natsUrl, BUS_PREFIX: prefix, BUS_REPLICAS: replicas }), name: 'conformance', log: silent });
    await bus.applyTopology();
    const env: NodeJS.ProcessEnv = {
      ...process.env, ...targets.env, ...o.env, NATS_URL: natsUrl, BUS_PREFIX: prefix, BUS_REPLICAS: replicas, BUS_CATALOG: catalogPath,
      INGEST_API_TOKENS: TOKEN, INGEST_PORT: '0', INGEST_HOST: '127.0.0.1', TRANSFORM_OPS_PORT: '0', DELIVER_OPS_PORT: '0', RECONCILE_OPS_PORT: '0',
      RECONCILE_EVERY_SEC: String(o.reconcileEverySec ?? 0), RECONCILE_POLL_SOURCES: '0', BUS_DLQ_STATS_INTERVAL_MS: '0',
    };
    services = createServices(env, note);
    const svc = services;
    await Promise.all([
      svc.start('ingest'), svc.start('transform'),
      ...Array.from({ length: delivers }, (_, i) => svc.start('deliver', i)),
      ...((o.reconcileEverySec ?? 0) > 0 ? [svc.start('reconcile')] : []),
    ]);
    const eventsUrl = svc.endpoints('ingest').events;
    if (!eventsUrl) throw new BusError('CHAOS_SERVICE_NOT_READY', 'permanent', 'ingest did not say where POST /events is');
    note(`services ready after ${secs()} s`);

    let stored = 0;
    let postedDone = false;
    // per entity: when the first request with one of its versions was sent, and when the last one was answered
    const arrival = new Map<string, { first: number; last: number }>();
    const onStored = (events: PlannedEvent[], sentAtMs: number) => {
      stored += events.length;
      for (const e of events) {
        const a = arrival.get(e.entityId) ?? arrival.set(e.entityId, { first: sentAtMs, last: 0 }).get(e.entityId)!;
        a.first = Math.min(a.first, sentAtMs);
        a.last = Date.now();
      }
    };
    const posted = postEvents({ url: eventsUrl, token: TOKEN, profile, batches: plan.windows, onStored }).then(() => {
      postedDone = true;
      // a version stored later than the gap wait after its successor is a real gap, not the bus's fault: say so
      const spreadMs = Math.max(0, ...[...arrival.values()].map((a) => a.last - a.first));
      note(`each entity's versions stored within ${spreadMs} ms (first request sent to last answered)${spreadMs > targets.gapWaitMs / 2 ? ` — WARNING: more than half the gap wait (${targets.gapWaitMs} ms); strict gaps may be real` : ''}`);
    });
    posted.catch(() => undefined); // awaited below; a scenario may be waiting on it meanwhile
    const b = bus;
    const pairs = targets.pairs(plan.sent);
    const entities = targets.entities(plan.sent);
    // how far the run is: versions applied (latest: entities at their latest, scaled) plus versions dead-lettered
    const progress = async () => {
      let done = 0;
      for (const t of targets.list) {
        const applied = new Set(t.target.applies.map((a) => `${a.entity}@${a.version}`)).size;
        const reached = t.mode === 'strict' ? applied : Math.max(applied, (t.atLatest(plan.sent) / entities) * pairs);
        done += Math.min(pairs, reached + (await countDeadLetters(b, t.connector)));
      }
      return done / (targets.list.length * pairs);
    };
    const faults = applyScenario(o.scenario, {
      random, services: svc, delivers, bus, nats, cluster, connectors: targets.list.map((t) => t.connector), gapWaitMs: targets.gapWaitMs, posted,
      whenApplied: (f) => waitFor(async () => (await progress()) >= f, { what: `${Math.round(f * 100)} % applied`, timeoutMs: 30_000, intervalMs: 200 })
        .then(() => undefined, () => note(`${Math.round(f * 100)} % applied not reached within 30 s: fault applied now`)),
      whenPosted: (f) => waitFor(() => postedDone || stored >= f * plan.events.length, { what: `${Math.round(f * 100)} % posted`, timeoutMs: 60_000, intervalMs: 20 }).then(() => undefined),
      until: (atMs) => waitFor(() => Date.now() >= atMs, { what: 'the clock', timeoutMs: Math.max(0, atMs - Date.now()) + 1_000, intervalMs: 50 }).then(() => undefined),
      say: note,
    });
    faults.catch(() => undefined); // awaited below, after the load
    await posted;
    note(`load in after ${secs()} s`);
    await faults;
    note(`faults done after ${secs()} s`);
    let timedOut = false;
    await waitFor(async () => {
      if (svc.running('deliver') < delivers || svc.running('transform') < 1) return false;
      if (!targets.list.every((t) => t.target.idleFor(1_500))) return false;
      for (const t of targets.list) if ((await readPending(b, t.connector)).pending > 0) return false;
      return true;
    }, { what: 'the bus and the targets to go quiet', timeoutMs: o.quiesceTimeoutMs ?? 120_000, intervalMs: 500 }).catch((err: Error) => {
      timedOut = true;
      note(`never went quiet: ${err.message}`);
    });
    if (!timedOut) note(`quiet after ${secs()} s`);
    note(await versionKeys(b));

    const connectors: ConnectorResult[] = [];
    for (const t of targets.list) {
      // a cluster with a node down can time out a read now and then: read again rather than lose the run
      const counts = await waitFor(() => readBusCounts(b, t.connector).catch(() => undefined), { what: `${t.connector}'s counts from the bus`, timeoutMs: 60_000, intervalMs: 1_000 });
      const verdict = checkInvariants(t.mode, plan.sent, t.target.applies, t.target.state(), counts);
      connectors.push({ connector: t.connector, mode: t.mode, verdict, applies: t.target.applies.length, targetCounts: { ...t.target.counts } });
      if (!verdict.ok) for (const line of await explain(b, t.connector, verdict, t.target.applies).catch((err: Error) => [`(no trace: ${err.message})`])) note(line);
    }
    const ok = connectors.every((c) => c.verdict.ok) && svc.crashes.length === 0 && !timedOut;
    return {
      seed: o.seed, scenario: o.scenario, ok, connectors, schedule, crashes: [...svc.crashes], timedOut,
      load: { events: plan.events.length, pairs: targets.pairs(plan.sent), sameIdTwice: plan.sameIdTwice, newIdTwice: plan.newIdTwice },
      elapsedMs: Date.now() - started,
      replay: `CHAOS_SEED=${o.seed} CHAOS_SCENARIOS=${o.scenario} CHAOS_ENTITIES=${o.entities ?? 20} CHAOS_VERSIONS=${o.versions ?? 4} npm run chaos`,
    };
  } finally {
    await services?.stopAll('SIGKILL');
    await targets.close();
    await bus?.close().catch(() => undefined);
    if (cluster) await cluster.stop({ removeStore: true });
    if (nats && nats !== o.nats) await nats.stop({ removeStore: true });
  }
}

/** How many entity keys and folded partition values bus_versions holds (deliver folds idle entities: DELIVER_FOLD_IDLE_MS). */
async function versionKeys(bus: Bus): Promise<string> {
  const bucket = bus.names.kv.versions;
  const info = await bus.jsm.streams.info(`KV_${bucket}`, { subjects_filter: '>' }).catch(() => undefined);
  const subjects = Object.keys(info?.state.subjects ?? {});
  const partitions = subjects.filter((s) => s.split('.')[3] === '=fold').length;
  return `bus_versions: ${subjects.length - partitions} entity keys, ${partitions} folded partition values`;
}

/**
 * What happened to the first entities a failed verdict names: deliver's audit records for them
 * beside the target's applies, in time order, so a failing seed explains itself.
 */
async function explain(bus: Bus, connector: string, verdict: Verdict, applies: readonly Apply[]): Promise<string[]> {
  const entities = [...new Set(verdict.examples.map((e) => /(\S+\/\S+) v\d/.exec(e)?.[1]).filter((e): e is string => !!e))].slice(0, 2);
  const lines: string[] = [];
  for (const entity of entities) {
    const rows: { atMs: number; line: string }[] = applies.filter((a) => a.entity === entity)
      .map((a) => ({ atMs: a.atMs, line: `target applied v${a.version} (key ${a.idempotencyKey})` }));
    for await (const r of auditRecordsOf(bus, 'deliver')) {
      if (r.connector !== connector || `${r.entity?.type}/${r.entity?.id}` !== entity) continue;
      rows.push({ atMs: Date.parse(r.at), line: `deliver ${r.outcome} v${r.version} attempt ${r.attempt ?? '-'}${r.failureClass ? ` ${r.failureClass}` : ''}${r.reason ? `: ${String(r.reason).slice(0, 120)}` : ''}` });
    }
    lines.push(`trace of ${connector} ${entity}:`, ...rows.sort((a, b) => a.atMs - b.atMs).map((r) => `    ${new Date(r.atMs).toISOString().slice(11, 23)} ${r.line}`));
  }
  return lines;
}
