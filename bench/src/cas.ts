// BENCH_ONLY=cas: is a compare-and-set serialized by this nats-server? Two writes with the same expected revision
// (KV create or update, as the ordering lease, the projection and every lease of the bus write) sent at once to two
// different nodes of an R3 bucket, many rounds; one must fail every time. nats-server before 2.9.21 checked the
// revision before proposing the write to the replicas, not in the replicated log (nats-io/nats-server#4320), so
// both could succeed. The same rounds on a single server (R1) beside it.
import { serverCaveats } from '@bus/bus';
import { startCluster, startNats } from '@bus/testkit';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { fmt } from './stats.js';

interface Race { version: string; rounds: number; both: number; one: number; none: number }

async function race(urls: string[], replicas: number, rounds: number): Promise<Race> {
  const conns: NatsConnection[] = await Promise.all(urls.map((u) => connect({ servers: u, noAsyncTraces: true })));
  try {
    const reader = await new Kvm(conns[0]!).create('bench_cas_race', { replicas, history: 1 });
    // the two writers on different nodes when there are several (each node then proposes to the leader itself)
    const writers = await Promise.all([conns[1 % conns.length]!, conns[2 % conns.length]!].map((nc) => new Kvm(nc).open('bench_cas_race')));
    const r: Race = { version: conns[0]!.info?.version ?? 'unknown', rounds, both: 0, one: 0, none: 0 };
    for (let i = 0; i < rounds; i++) {
      const key = `k${i % 50}`;
      const revision = (await reader.get(key))?.revision ?? 0;
      const write = (w: (typeof writers)[number], who: string) => (revision === 0 ? w.create(key, who) : w.update(key, who, revision)).then(() => 1, () => 0);
      const won = (await Promise.all([write(writers[0]!, 'a'), write(writers[1]!, 'b')])).reduce((a, b) => a + b, 0);
      if (won === 2) r.both++;
      else if (won === 1) r.one++;
      else r.none++;
    }
    return r;
  } finally {
    await Promise.all(conns.map((nc) => nc.close()));
  }
}

export async function casBench(rounds: number): Promise<void> {
  console.log('\n## compare-and-set under contention: two writes with the same revision at once, one must fail\n');
  const single = await startNats();
  let r1: Race;
  try {
    r1 = await race([single.url], 1, rounds);
  } finally {
    await single.stop({ removeStore: true });
  }
  const cluster = await startCluster(3);
  let r3: Race;
  try {
    r3 = await race(cluster.urls, 3, rounds);
  } finally {
    await cluster.stop();
  }
  console.log('| servers | nats-server | rounds | both writes succeeded | one | none |');
  console.log('|---|---|---:|---:|---:|---:|');
  for (const [what, r] of [['one server, R1', r1], ['cluster of 3, R3, writers on two nodes', r3]] as const) {
    console.log(`| ${what} | ${r.version} | ${fmt(r.rounds)} | ${fmt(r.both)} | ${fmt(r.one)} | ${fmt(r.none)} |`);
  }
  const caveats = serverCaveats(r3.version, 3);
  console.log(r3.both > 0
    ? `\n! ${fmt(r3.both)} of ${fmt(r3.rounds)} rounds let both writers in on the cluster: leases are not exclusive there. ${caveats[0] ?? 'This server version is not known to the bus as affected: report it.'}`
    : `\nThe cluster refused every second writer${caveats.length ? ' this time (the version is known to be affected: the race depends on timing)' : ''}.`);
}
