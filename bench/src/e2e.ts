// End to end: events posted to ingest's publish API (POST /events) go through the real
// services — ingest → EVENTS → transform → DELIVERIES → deliver — to an HTTP target in this
// process, which times each arrival against its send. Beside it, in the same run, the raw
// two-hop pipeline of the plain client (two-hop.ts) with the same messages.
//
// What is measured: `order.created` with items. The demo catalog sends every order to crm
// (rate-limited to 50/s by the demo's plan) and orders with items to warehouse (no limit).
// crm is paused for the run (its commands are still made and stored, and wait in
// DELIVERIES), and the arrivals are timed at the warehouse target: the pipeline, not the
// demo CRM's plan. Each event is a new order at version 1, so strict ordering never waits.
import { createEnvelope, encodeEnvelope } from '@bus/envelope';
import { driveMax, driveSteady, Run } from './load.js';
import { type ProcStats, procStats, settle } from './proc.js';
import { eventBodies, orderData, orderId, SERVICES, SOURCE, startBusPipeline } from './pipeline.js';
import { fmt, printPairs } from './stats.js';
import { redisAnswers, startBullTwoHop } from './bullmq-two-hop.js';
import { startTwoHop, type TwoHop } from './two-hop.js';

export interface E2eOptions {
  natsUrl: string;
  /** The nats-server's pid when the bench spawned it: its memory and CPU are shown too. */
  natsPid?: number;
  /** Events in the max-throughput phase. */
  events: number;
  /** Requests (and raw PubAcks) in flight in the max-throughput phase. */
  window: number;
  /** Steady phase: events per second, for `seconds`. */
  rate: number;
  seconds: number;
  /** LOG_LEVEL of the services (`bus up` runs them at info). */
  logLevel: string;
  /** When set, each service runs with --cpu-prof and writes its profile into this directory on exit. */
  profileDir?: string;
  /** A Redis for the BullMQ peer (skipped when none answers; empty: skipped). */
  redisUrl?: string;
}

/** The same events as the envelopes ingest would store: the raw pipeline's messages. */
function envelopes(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => encodeEnvelope(createEnvelope(
    { type: 'order.created', entity: { type: 'order', id: orderId('raw', i) }, version: 1, data: orderData(i) }, { source: SOURCE })));
}

type Snapshot = Map<string, ProcStats | undefined>;

export async function e2eBench(o: E2eOptions): Promise<void> {
  const prefix = `e${Date.now().toString(36)}`;
  const sample = (envelopes(1)[0] ?? new Uint8Array()).length;
  console.log(`\n## end to end: POST /events → ingest → EVENTS → transform → DELIVERIES → deliver → HTTP target\n`);
  console.log(`events: order.created with 8 items (envelope ${fmt(sample)} B msgpack), one per request, each a new order at version 1`);
  console.log('(strict ordering on, never waiting); the demo catalog fans each out to crm and warehouse. Timed at the warehouse');
  console.log('target, which has no rate limit. crm is paused for the run — its demo plan allows 50/s, which would measure the');
  console.log('plan, not the pipeline — so its commands are made and stored, and wait in DELIVERIES.');
  console.log('raw two-hop: this process → stream A → worker process (decode, publish with msg id, ack) → stream B → this process.');
  console.log('peer: the same two hops in BullMQ on Redis (bullmq-two-hop.ts): job added → worker process → job added → this process.');
  console.log('Each raw (and peer) phase runs just before its bus phase, with the services started and idle; every phase starts once the');
  console.log('machine is quiet (under 15 % of the CPUs busy over 250 ms, or after 5 s).');

  const pipe = await startBusPipeline({ natsUrl: o.natsUrl, prefix, logLevel: o.logLevel, profileDir: o.profileDir, maxSockets: Math.max(o.window, 256) });
  const { bus, services, runs, target } = pipe;
  let twoHop: TwoHop | undefined;
  let peer: TwoHop | undefined;
  try {
    twoHop = await startTwoHop(o.natsUrl, `h${prefix}`);
    const raw = twoHop;
    if (o.redisUrl && (await redisAnswers(o.redisUrl))) peer = await startBullTwoHop(o.redisUrl, `bench-${prefix}`);
    else console.log(`(peer skipped: ${o.redisUrl ? `no Redis answers at ${o.redisUrl}` : 'BENCH_REDIS_URL is empty'})`);

    const snapshot = (): Snapshot => new Map([
      ...services.map((s) => [s.name, procStats(s.child.pid)] as const),
      ['nats-server', procStats(o.natsPid)],
      ['bench', { rssMb: process.memoryUsage.rss() / 2 ** 20, peakMb: process.resourceUsage().maxRSS / 1024, cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000 }],
    ]);
    /** One bus phase: bodies built first, then sent by `drive`; CPU counted until the last arrival. */
    const phase = async (tag: string, n: number, drive: (run: Run, send: (i: number) => Promise<void>) => Promise<unknown>) => {
      const bodies = eventBodies(tag, n);
      const run = new Run(n);
      runs.set(tag, run);
      await settle(); // not on the heels of the raw (or peer) phase's teardown
      const before = snapshot();
      const extra = await drive(run, (i) => pipe.post(bodies[i]!));
      await pipe.settle(run, tag);
      return { run, n, extra, before, after: snapshot() };
    };

    const idle = snapshot();
    await raw.max(envelopes(500), o.window); // warm-ups: JIT, connections, consumers
    await peer?.max(envelopes(500), o.window);
    await phase('warm', 500, (run, send) => driveMax(run, 16, send));
    // every measured phase, raw, peer or bus, starts on a quiet machine (settle): none carries the one before's tail
    await settle();
    const rawMax = await raw.max(envelopes(o.events), o.window);
    await settle();
    const peerMax = await peer?.max(envelopes(o.events), o.window);
    const max = await phase('max', o.events, (run, send) => driveMax(run, o.window, send));
    // when the bus cannot keep up with the asked rate, its latency there is time in a growing
    // backlog; a second steady phase at half its max rate shows the latency of the pipeline itself
    const busMaxRate = max.run.figure().rate;
    const rates = [o.rate];
    if (busMaxRate < o.rate * 0.9) rates.push(Math.max(50, Math.floor(busMaxRate / 2 / 50) * 50));
    const steadies: { rate: number; raw: Run & { stalls: number; lagMaxMs: number }; peer?: Run; bus: Awaited<ReturnType<typeof phase>> }[] = [];
    for (const [k, rate] of rates.entries()) {
      const count = Math.round(rate * o.seconds);
      await settle();
      const rawSteady = await raw.steady(envelopes(count), rate);
      await settle();
      const peerSteady = await peer?.steady(envelopes(count), rate);
      const busSteady = await phase(`steady${k}`, count, (run, send) => driveSteady(run, rate, 256, send));
      steadies.push({ rate, raw: rawSteady, peer: peerSteady, bus: busSteady });
    }

    // ---- report
    const rawMaxFig = rawMax.figure();
    const busMaxFig = max.run.figure();
    printPairs('end to end beside the raw two-hop (aim: ≥ 33 % of raw; p99 < 50 ms at 1,000/s)', [
      { what: `max: ${fmt(o.events)} events, ${o.window} in flight`, raw: rawMaxFig, bus: busMaxFig },
      ...steadies.map((st) => ({ what: `steady: ${fmt(st.rate)}/s for ${o.seconds} s`, raw: st.raw.figure(), bus: st.bus.run.figure() })),
    ]);
    console.log('\n| send → arrival | phase | sent | accepted/s | arrived | arrived/s | p50 ms | p95 ms | p99 ms |');
    console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
    const row = (what: string, ph: string, f: ReturnType<Run['figure']>) =>
      console.log(`| ${what} | ${ph} | ${fmt(f.sent)} | ${fmt(f.acceptedRate)} | ${fmt(f.arrived)} | ${fmt(f.rate)} | ${fmt(f.p50Ms, 2)} | ${fmt(f.p95Ms, 2)} | ${fmt(f.p99Ms, 2)} |`);
    row('raw two-hop', 'max', rawMaxFig);
    if (peerMax) row('BullMQ two-hop (peer)', 'max', peerMax.figure());
    row('end to end', 'max', busMaxFig);
    for (const st of steadies) {
      row('raw two-hop', `${fmt(st.rate)}/s`, st.raw.figure());
      if (st.peer) row('BullMQ two-hop (peer)', `${fmt(st.rate)}/s`, st.peer.figure());
      row('end to end', `${fmt(st.rate)}/s`, st.bus.run.figure());
    }
    console.log('(accepted/s: PubAcks from stream A, or 200s from ingest; arrived/s: from the first send to the last arrival)');
    const checked: [string, Run][] = [['raw two-hop, max', rawMax], ['end to end, max', max.run], ...(peerMax ? [['BullMQ two-hop, max', peerMax] as [string, Run]] : []),
      ...steadies.flatMap((st): [string, Run][] => [[`raw two-hop, ${st.rate}/s`, st.raw], [`end to end, ${st.rate}/s`, st.bus.run], ...(st.peer ? [[`BullMQ two-hop, ${st.rate}/s`, st.peer] as [string, Run]] : [])])];
    for (const [what, r] of checked) {
      if (r.sendErrors || r.arrivals < r.n || r.duplicates) {
        console.log(`! ${what}: ${r.n - r.arrivals} of ${r.n} did not arrive, ${r.duplicates} arrived twice, ${r.sendErrors} sends failed${r.firstError ? ` (first: ${r.firstError})` : ''}`);
      }
    }
    for (const st of steadies) {
      const f = st.bus.run.figure();
      if (f.rate < st.rate * 0.95) console.log(`! at ${fmt(st.rate)}/s the bus did not keep up (${fmt(f.rate)}/s arrived): its latency there is mostly time waiting in the backlog`);
      const ex = st.bus.extra as { stalls: number; lagMaxMs: number };
      if (st.raw.stalls || ex.stalls) console.log(`! at ${fmt(st.rate)}/s the sender hit 256 unanswered sends: raw ${st.raw.stalls}×, end to end ${ex.stalls}× (sender lag up to ${fmt(st.raw.lagMaxMs, 1)} / ${fmt(ex.lagMaxMs, 1)} ms)`);
      if (process.env.BENCH_E2E_TIMELINE === '1') console.log(`end to end at ${fmt(st.rate)}/s, max ms per second sent: ${st.bus.run.maxPerSecond().map((v) => fmt(v)).join(' ')}`);
      const w = st.bus.run.slowest(0.01);
      console.log(`end to end at ${fmt(st.rate)}/s, the slowest 1 % (${w.count}): ingest's answer p50 ${fmt(w.frontP50Ms, 1)} ms (max ${fmt(w.frontMaxMs, 1)}), ` +
        `then to the target p50 ${fmt(w.backP50Ms, 1)} ms (max ${fmt(w.backMaxMs, 1)}); sent in second ${w.seconds.slice(0, 5).map(([s, n]) => `${s} (${n})`).join(', ')} of the phase (it began ${w.startedAt.toISOString()})`);
    }

    console.log(`\n| process | RSS started, idle | peak RSS (VmHWM) | RSS at the end | CPU per event: max | ${steadies.map((st) => `at ${fmt(st.rate)}/s`).join(' | ')} |`);
    console.log(`|---|---:|---:|---:|---:|${steadies.map(() => '---:|').join('')}`);
    const end = snapshot();
    const cpuPer = (p: { before: Snapshot; after: Snapshot; n: number }, name: string) => {
      const a = p.before.get(name);
      const b = p.after.get(name);
      return a && b ? `${fmt(((b.cpuMs - a.cpuMs) * 1000) / p.n)} µs` : '-';
    };
    for (const name of [...SERVICES, 'nats-server', 'bench']) {
      const s = end.get(name);
      if (!s) continue;
      // the bench process's memory is mostly the earlier parts' prepared messages: only its CPU tells anything here
      const mem = name === 'bench' ? '- | - | -' : `${fmt(idle.get(name)?.rssMb, 1)} MB | ${fmt(s.peakMb, 1)} MB | ${fmt(s.rssMb, 1)} MB`;
      const label = name === 'bench' ? 'bench (load, target, raw two-hop ends)' : name;
      console.log(`| ${label} | ${mem} | ${cpuPer(max, name)} | ${steadies.map((st) => cpuPer(st.bus, name)).join(' | ')} |`);
    }
    console.log('(CPU per event: user + system time of the process over the phase, until its last arrival, divided by its events)');
    // system calls per event: socket writes and reads, robust to the machine's load (a service's writes are the server's reads)
    const callsPer = (p: { before: Snapshot; after: Snapshot; n: number }, name: string) => {
      const a = p.before.get(name);
      const b = p.after.get(name);
      return a?.syscw !== undefined && b?.syscw !== undefined ? `${fmt((b.syscw - a.syscw) / p.n, 2)} / ${fmt((b.syscr! - a.syscr!) / p.n, 2)}` : '-';
    };
    console.log(`\n| process | write / read system calls per event: max | ${steadies.map((st) => `at ${fmt(st.rate)}/s`).join(' | ')} |`);
    console.log(`|---|---:|${steadies.map(() => '---:|').join('')}`);
    for (const name of [...SERVICES, 'nats-server']) console.log(`| ${name} | ${callsPer(max, name)} | ${steadies.map((st) => callsPer(st.bus, name)).join(' | ')} |`);
    const peak = Math.max(...SERVICES.map((n) => end.get(n)?.peakMb ?? 0));

    // AUDIT's share of the server's work: messages and bytes per posted event over all phases (audit writes are
    // unawaited and may be coalesced for a moment: read once the count stops moving)
    let audit = await bus.jsm.streams.info(bus.names.streams.audit);
    for (let last = -1; audit.state.messages !== last; ) {
      last = audit.state.messages;
      await new Promise((r) => setTimeout(r, 300));
      audit = await bus.jsm.streams.info(bus.names.streams.audit);
    }
    const posted = 500 + o.events + steadies.reduce((n, st) => n + st.bus.n, 0);
    // (audit messages carry no msg id: every publish is stored. No subscription counts them here: it would add the
    // server's work of a second copy of each to the figures above)
    console.log(`\nAUDIT: ${fmt(audit.state.messages)} messages stored (${fmt(audit.state.bytes / 1024 / 1024, 1)} MB) for ${fmt(posted)} events: ` +
      `${fmt(audit.state.messages / posted, 2)} messages and ${fmt(audit.state.bytes / posted)} bytes per event (crm paused: its deliveries add none)`);

    const crmInfo = await bus.jsm.consumers.info(bus.names.streams.deliveries, 'deliver-crm').catch(() => undefined);
    const calls = target.calls();
    console.log(`\ncrm (paused): ${fmt(crmInfo?.num_pending)} commands held in DELIVERIES, ${calls.crm} calls reached it${calls.other ? `; ${calls.other} calls to unknown paths` : ''}`);
    // the ordering guard's KV round trips per delivery, from deliver's own counters (warehouse: every timed delivery)
    const metricsUrl = pipe.metricsUrl('deliver');
    if (metricsUrl) {
      const text = await (await fetch(metricsUrl)).text();
      // labels in the registry's order, with the service's default label after them
      const metric = (name: string, labels: string) => Number(text.match(new RegExp(`^${name}\\{${labels}[^}]*\\} (\\S+)$`, 'm'))?.[1] ?? 0);
      const ops = Object.fromEntries(['get', 'create', 'update'].map((op) => [op, metric('deliver_kv_ops_total', `connector="warehouse",op="${op}"`)]));
      const delivered = metric('deliver_outcomes_total', 'connector="warehouse",outcome="delivered"');
      const total = ops.get! + ops.create! + ops.update!;
      console.log(`ordering guard, warehouse: ${fmt(total / Math.max(1, delivered), 2)} KV round trips per delivery (${fmt(ops.get)} get, ${fmt(ops.create)} create, ${fmt(ops.update)} update over ${fmt(delivered)} deliveries)`);
    }
    const first = steadies[0]!.bus.run.figure();
    console.log(`end to end / raw two-hop: ${fmt((busMaxFig.rate / rawMaxFig.rate) * 100)} % (aim ≥ 33 %), p99 at ${fmt(o.rate)}/s ${fmt(first.p99Ms, 1)} ms (aim < 50 ms), largest service peak RSS ${fmt(peak)} MB (aim < 150 MB)`);
    if (peerMax) console.log(`peer: BullMQ two-hop max ${fmt(peerMax.figure().rate)}/s = ${fmt((peerMax.figure().rate / rawMaxFig.rate) * 100)} % of raw; the bus end to end is ${fmt((busMaxFig.rate / peerMax.figure().rate) * 100)} % of BullMQ's two hops (the bus does more per event: signature/validation, mapping, ordering, audit)`);
    const noisy = services.filter((s) => s.warnings > 1); // deliver warns once that crm is paused
    for (const s of noisy) console.log(`! ${s.name} logged ${s.warnings} warnings or errors; last lines:\n${s.tail.slice(-5).join('\n')}`);
  } finally {
    await twoHop?.close();
    await peer?.close();
    if (o.profileDir) console.log(`\nCPU profiles of the services: ${o.profileDir}/<service>.cpuprofile`);
    await pipe.close();
  }
}
