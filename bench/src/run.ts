// npm run bench: prints this machine's raw JetStream figures and the bus's beside them.
// Never fails on timing; every loop is bounded by a message count or a duration.
// BENCH_ONLY=js,ingest,e2e,reconcile,soak,trace,scale,cas (comma-separated) runs only those parts; default all but scale
// (it runs nats-servers of its own for minutes: ask for it).
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { casBench } from './cas.js';
import { e2eBench } from './e2e.js';
import { spawnProfiledNats } from './nats-heap.js';
import { machineBusy } from './proc.js';
import { ingestBench } from './ingest.js';
import { reconcileBench } from './reconcile.js';
import { scaleBench } from './scale.js';
import { soakBench } from './soak.js';
import { jetstreamBench } from './jetstream.js';
import { traceBench } from './trace.js';
import { medianOf3, printPairs } from './stats.js';

const N = Number(process.env.BENCH_MESSAGES ?? 20_000);
const PARTS = ['js', 'ingest', 'e2e', 'reconcile', 'soak', 'trace', 'scale', 'cas'] as const;
const only = (process.env.BENCH_ONLY ?? PARTS.filter((p) => p !== 'scale').join(',')).split(',').map((p) => p.trim()).filter(Boolean);
const unknown = only.filter((p) => !(PARTS as readonly string[]).includes(p));
const runs = (part: (typeof PARTS)[number]) => only.includes(part);

let storeDir: string | undefined;
// Ctrl-C or SIGTERM: exit, which SIGKILLs every child (children.ts, @bus/nats-server) on the way out
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping the bench and its processes`);
    if (storeDir) rmSync(storeDir, { recursive: true, force: true });
    process.exit(130);
  });
}

async function main() {
  if (unknown.length) console.log(`! BENCH_ONLY: unknown part(s) ${unknown.join(', ')}; parts are ${PARTS.join(', ')}`);
  storeDir = await mkdtemp(join(tmpdir(), 'bench-nats-'));
  const profiled = process.env.NATS_URL ? undefined : await spawnProfiledNats(storeDir);
  const server = profiled?.server;
  const url = process.env.NATS_URL ?? server!.url;
  const started = performance.now();
  console.log(`# bench — ${new Date().toISOString()} — node ${process.version}, ${N} messages of ~1 KiB, nats at ${url}, parts: ${PARTS.filter(runs).join(', ')}`);
  // other work on the machine moves every figure here: say so, so a reader can discount the run
  const busy = await machineBusy(1_000);
  if (busy > 0.2) console.log(`! the machine was ${Math.round(busy * 100)} % busy before the bench started: other work is running; these figures will be low and noisy`);
  try {
    if (runs('js')) {
      const b = await jetstreamBench(url, `b${Date.now().toString(36)}`);
      const one = await medianOf3(() => b.publishOneByOne(Math.min(N, 5_000)));
      const win = await medianOf3(() => b.publishWindow(N, 256));
      const con = await medianOf3(() => b.consume(N));
      printPairs('libs/bus over JetStream (aim: ≥ 80 % of raw)', [
        { what: 'publish, one at a time, await each PubAck', ...one },
        { what: 'publish, 256 PubAcks in flight', ...win },
        { what: 'pull consume + decode + ack', ...con },
      ]);
      await b.close();
    }
    if (runs('ingest')) await ingestBench(url, server?.pid, Number(process.env.BENCH_HTTP_SEC ?? 10));
    if (runs('e2e')) {
      await e2eBench({
        natsUrl: url, natsPid: server?.pid,
        events: Number(process.env.BENCH_E2E_EVENTS ?? 5_000),
        window: Number(process.env.BENCH_E2E_WINDOW ?? 64),
        rate: Number(process.env.BENCH_E2E_RATE ?? 1_000),
        seconds: Number(process.env.BENCH_E2E_SEC ?? 10),
        logLevel: process.env.BENCH_E2E_LOG_LEVEL ?? 'info',
        profileDir: process.env.BENCH_E2E_PROFILE_DIR,
        redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
      });
    }
    if (runs('reconcile')) {
      await reconcileBench({
        natsUrl: url, natsPid: server?.pid,
        pgUrl: process.env.BENCH_PG_URL ?? process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
        entities: Number(process.env.BENCH_RECONCILE_ENTITIES ?? 100_000),
        pageSize: Number(process.env.BENCH_RECONCILE_PAGE_SIZE ?? 500), // the service's default (RECONCILE_PAGE_SIZE)
        window: Number(process.env.BENCH_RECONCILE_WINDOW ?? 256),
      });
    }
    if (runs('soak')) {
      await soakBench({
        natsUrl: url, natsPid: server?.pid, natsHeap: profiled?.liveHeap, natsHeapEachMinute: process.env.BENCH_SOAK_NATS_HEAP === '1',
        rate: Number(process.env.BENCH_SOAK_RATE ?? 300),
        minutes: Number(process.env.BENCH_SOAK_MIN ?? 10),
        logLevel: process.env.BENCH_E2E_LOG_LEVEL ?? 'info',
      });
    }
    if (runs('trace')) {
      await traceBench({ natsUrl: url, natsPid: server?.pid, records: Number(process.env.BENCH_TRACE_RECORDS ?? 1_000_000), window: 512,
        legacy: process.env.BENCH_TRACE_LEGACY !== '0', writeEvents: Number(process.env.BENCH_TRACE_WRITE_EVENTS ?? 10_000) });
    }
    if (runs('cas')) await casBench(Number(process.env.BENCH_CAS_ROUNDS ?? 2_000));
    if (runs('scale')) {
      await scaleBench({
        dedupEntries: Number(process.env.BENCH_SCALE_DEDUP ?? 1_000_000),
        windowIds: Number(process.env.BENCH_SCALE_WINDOW_IDS ?? 200_000),
        entities: Number(process.env.BENCH_SCALE_ENTITIES ?? 200_000),
        seconds: Number(process.env.BENCH_SCALE_SEC ?? 600), // long enough for a straight line over the last half to tell a plateau from a slope
        events: Number(process.env.BENCH_SCALE_EVENTS ?? 5_000_000),
        horizonSec: Number(process.env.BENCH_SCALE_HORIZON_SEC ?? 36),
        window: Number(process.env.BENCH_SCALE_WINDOW ?? 64),
        rate: Number(process.env.BENCH_SCALE_RATE ?? 400),
        pipelineEntities: Number(process.env.BENCH_SCALE_PIPELINE_ENTITIES ?? 20_000),
        pipelineOnly: process.env.BENCH_SCALE_PARTS === 'pipeline',
      });
    }
  } finally {
    await server?.stop();
    await rm(storeDir, { recursive: true, force: true });
    storeDir = undefined;
    console.log(`\n(bench took ${Math.round((performance.now() - started) / 1000)} s)`);
  }
}

main().then(
  () => process.exit(0), // nothing left running: every child was stopped, and exit SIGKILLs any straggler
  (err) => {
    console.error(err);
    process.exit(0); // a benchmark never fails the build
  },
);
