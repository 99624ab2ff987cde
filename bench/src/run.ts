// npm run bench: prints this machine's raw JetStream figures and the bus's beside them.
// Never fails on timing; every loop is bounded by a message count.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnNatsServer } from '@bus/nats-server';
import { ingestBench } from './ingest.js';
import { jetstreamBench } from './jetstream.js';
import { medianOf3, printPairs } from './stats.js';

const N = Number(process.env.BENCH_MESSAGES ?? 20_000);

async function main() {
  const storeDir = await mkdtemp(join(tmpdir(), 'bench-nats-'));
  const server = process.env.NATS_URL ? undefined : await spawnNatsServer({ storeDir });
  const url = process.env.NATS_URL ?? server!.url;
  console.log(`# bench — ${new Date().toISOString()} — node ${process.version}, ${N} messages of ~1 KiB, nats at ${url}`);
  try {
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
    await ingestBench(url, Number(process.env.BENCH_HTTP_SEC ?? 10));
  } finally {
    await server?.stop();
    await rm(storeDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(0); // a benchmark never fails the build
});
