// Soak: the end-to-end pipeline (pipeline.ts) at a steady rate for many minutes, to see
// whether memory stays flat. Each minute is its own phase; per minute: arrivals, p50/p99,
// each process's RSS, and each service's heap low-water mark (the smallest V8 heap in use
// seen in its /metrics, polled every 2 s: the heap right after a collection, i.e. what it
// really keeps). The verdict per service: a straight line fitted through the last half of
// the minutes; "flat" when it rises by less than 5 % over that half, else "grows".
import { setTimeout as sleep } from 'node:timers/promises';
import { driveSteady, Run } from './load.js';
import { eventBodies, SERVICES, startBusPipeline } from './pipeline.js';
import { procStats } from './proc.js';
import { fmt, growth } from './stats.js';

export interface SoakOptions {
  natsUrl: string;
  natsPid?: number;
  /** nats-server's Go heap in use after a forced collection (when the bench started it with its profiling port). */
  natsHeap?: () => Promise<number>;
  /**
   * Read natsHeap at each minute's end, under traffic (BENCH_SOAK_NATS_HEAP=1). Off by default: the forced collection
   * stalls nats-server for up to ~0.6 s with a 200 MB heap, and that stall was the slowest second of every slow minute
   * (the first second of the next one). Always read once at the end, after the traffic.
   */
  natsHeapEachMinute?: boolean;
  /** events per second, end to end */
  rate: number;
  minutes: number;
  logLevel: string;
}

interface Minute {
  run: Run;
  rssMb: Record<string, number>;
  heapLowMb: Record<string, number>;
}

const heapUsed = (text: string) => Number(/^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1] ?? Number.NaN) / 2 ** 20;

export async function soakBench(o: SoakOptions): Promise<void> {
  console.log(`\n## soak: ${fmt(o.rate)} events/s end to end for ${o.minutes} minutes (BENCH_SOAK_RATE, BENCH_SOAK_MIN)\n`);
  console.log('the end-to-end pipeline (crm paused, arrivals timed at the warehouse target); per minute: RSS of each process and the');
  console.log('heap low-water mark of each service (smallest heap in use seen in its /metrics every 2 s ≈ the heap after a collection);');
  console.log(o.natsHeapEachMinute ? "nats-server's live Go heap at each minute's end (in use right after a forced collection: what it keeps)."
    : "nats-server's live Go heap (in use right after a forced collection) once, after the traffic (BENCH_SOAK_NATS_HEAP=1: each minute; its collection stalls the server).");
  const natsHeapMb = () => (o.natsHeap ? o.natsHeap().then((b) => b / 2 ** 20, () => Number.NaN) : Promise.resolve(Number.NaN));
  const pipe = await startBusPipeline({ natsUrl: o.natsUrl, prefix: `s${Date.now().toString(36)}`, logLevel: o.logLevel, maxSockets: 256 });
  const minutes: Minute[] = [];
  try {
    const perMinute = Math.round(o.rate * 60);
    for (let k = 0; k < o.minutes; k++) {
      const tag = `m${k}`;
      const bodies = eventBodies(tag, perMinute);
      const run = new Run(perMinute);
      pipe.runs.set(tag, run);
      const low: Record<string, number> = {};
      let driving = true;
      const sampler = (async () => {
        while (driving) {
          for (const name of SERVICES) {
            const url = pipe.metricsUrl(name);
            const mb = url ? heapUsed(await fetch(url).then((r) => r.text()).catch(() => '')) : Number.NaN;
            if (!Number.isNaN(mb)) low[name] = Math.min(low[name] ?? Number.POSITIVE_INFINITY, mb);
          }
          await sleep(2_000);
        }
      })();
      await driveSteady(run, o.rate, 256, (i) => pipe.post(bodies[i]!));
      driving = false;
      await sampler;
      const dead = pipe.services.filter((s) => s.exited);
      if (dead.length) await pipe.settle(run, tag); // throws with the dead service's last lines
      const rss: Record<string, number> = {};
      for (const s of pipe.services) rss[s.name] = procStats(s.child.pid)?.rssMb ?? Number.NaN;
      rss['nats-server'] = procStats(o.natsPid)?.rssMb ?? Number.NaN;
      low['nats-server'] = o.natsHeapEachMinute ? await natsHeapMb() : Number.NaN;
      minutes.push({ run, rssMb: rss, heapLowMb: low });
      process.stdout.write(`minute ${k + 1}/${o.minutes}: ${fmt(run.arrivals)} of ${fmt(perMinute)} arrived so far, deliver RSS ${fmt(rss.deliver, 1)} MB\n`);
    }
    for (const [k, m] of minutes.entries()) await pipe.settle(m.run, `m${k}`);
    const natsHeapAfter = o.natsHeap && !o.natsHeapEachMinute ? await natsHeapMb() : undefined;

    const names = [...SERVICES, 'nats-server'];
    console.log(`\n| minute | arrived | p50 ms | p99 ms | ${names.map((n) => `RSS ${n}`).join(' | ')} | ${SERVICES.map((n) => `heap low ${n}`).join(' | ')} | nats-server live heap |`);
    console.log(`|---:|---:|---:|---:|${names.map(() => '---:|').join('')}${SERVICES.map(() => '---:|').join('')}---:|`);
    for (const [k, m] of minutes.entries()) {
      const f = m.run.figure();
      console.log(`| ${k + 1} | ${fmt(f.arrived)} | ${fmt(f.p50Ms, 1)} | ${fmt(f.p99Ms, 1)} | ${names.map((n) => `${fmt(m.rssMb[n], 1)} MB`).join(' | ')} | ${SERVICES.map((n) => `${fmt(m.heapLowMb[n], 1)} MB`).join(' | ')} | ${fmt(m.heapLowMb['nats-server'], 1)} MB |`);
    }
    // when a minute's p99 is high: the seconds it came from, by wall clock (to line up with nats-server's or a service's profile)
    for (const [k, m] of minutes.entries()) {
      if ((m.run.figure().p99Ms ?? 0) < 100) continue;
      const startedAt = m.run.slowest().startedAt.getTime();
      const worst = m.run.maxPerSecond().map((ms, sec) => ({ ms, sec })).sort((a, b) => b.ms - a.ms).slice(0, 3);
      console.log(`minute ${k + 1}, the slowest seconds (sent at, largest send→arrival): ${worst.map((w) => `${new Date(startedAt + w.sec * 1000).toISOString().slice(11, 19)} ${fmt(w.ms)} ms`).join(', ')}`);
    }
    const lastHalf = minutes.slice(Math.floor(minutes.length / 2));
    console.log(`\nverdict over the last ${lastHalf.length} minutes (a fitted line rising < 5 % is flat):`);
    const verdict = (what: string, ys: number[]) => {
      const g = growth(ys.filter((y) => !Number.isNaN(y)));
      console.log(`- ${what}: ${Math.abs(g.rise) < 0.05 || g.rise < 0 ? 'flat' : 'GROWS'} (${g.slopePerStep >= 0 ? '+' : ''}${fmt(g.slopePerStep, 2)} MB/min, ${g.rise >= 0 ? '+' : ''}${fmt(g.rise * 100, 1)} % over the half)`);
    };
    for (const n of SERVICES) {
      verdict(`${n} RSS`, lastHalf.map((m) => m.rssMb[n]!));
      verdict(`${n} heap low-water`, lastHalf.map((m) => m.heapLowMb[n]!));
    }
    // nats-server's state grows until its windows are full (EVENTS' duplicate window: 1 h; crm's held commands): for reference
    verdict('nats-server RSS (its windows fill for an hour: for reference)', lastHalf.map((m) => m.rssMb['nats-server']!));
    if (o.natsHeapEachMinute) verdict('nats-server live heap (for reference)', lastHalf.map((m) => m.heapLowMb['nats-server']!));
    const all = minutes.map((m) => m.run.figure());
    const missing = minutes.reduce((a, m) => a + (m.run.n - m.run.arrivals), 0);
    const dup = minutes.reduce((a, m) => a + m.run.duplicates, 0);
    if (natsHeapAfter !== undefined) console.log(`nats-server live heap after the traffic: ${fmt(natsHeapAfter, 1)} MB`);
    console.log(`p99 per minute: ${all.map((f) => fmt(f.p99Ms, 0)).join(', ')} ms; ${missing ? `! ${fmt(missing)} events did not arrive` : 'every event arrived'}${dup ? `, ! ${dup} twice` : ''}`);
  } finally {
    await pipe.close();
  }
}
