import { fileURLToPath } from 'node:url';
import { type Bus, connectBus, ensureConsumer, loadBusConfig } from '@bus/bus';
import { createEnvelope } from '@bus/envelope';
import { createLogger } from '@bus/observability';
import { topology, workerConsumer } from '@bus/streams';
import { startProcess } from '@bus/testkit';

export const silent = createLogger({ service: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export async function testBus(url: string, prefix: string): Promise<Bus> {
  const bus = await connectBus({ config: loadBusConfig({ NATS_URL: url, BUS_PREFIX: prefix, BUS_PUBLISH_TIMEOUT_MS: '1000' }), name: 'test', log: silent });
  await bus.applyTopology(topology({ prefix }));
  return bus;
}

export function numbered(n: number) {
  return createEnvelope({ type: 'item.created', entity: { type: 'item', id: `i${n}` }, version: 1, data: { n } }, { source: 'test', id: `item-${n}` });
}

export async function addWorkerConsumer(bus: Bus, durable: string, ackWaitSec: number) {
  await ensureConsumer(bus.jsm, workerConsumer({ stream: bus.names.streams.events, durable, description: 'fault test', ackWaitSec, maxDeliver: 10 }));
}

/** A worker process; with autoRelease false it holds each message until release() is called. */
export function startWorker(url: string, prefix: string, durable: string, autoRelease: boolean) {
  return startProcess({
    command: process.execPath,
    args: ['--enable-source-maps', fileURLToPath(new URL('./fixtures/worker.js', import.meta.url))],
    env: { NATS_URL: url, BUS_PREFIX: prefix, DURABLE: durable, AUTO_RELEASE: autoRelease ? '1' : '0', LOG_LEVEL: 'warn' },
  });
}

/** Lets every message the workers hold right now finish. */
export async function release(bus: Bus): Promise<void> {
  bus.nc.publish(`${bus.config.BUS_PREFIX}.release`);
  await bus.nc.flush();
}

/** The numbers a worker printed for `word` (got / done). */
export function numbersIn(output: string, word: 'got' | 'done'): number[] {
  return [...output.matchAll(new RegExp(`^${word} (\\d+)$`, 'gm'))].map((m) => Number(m[1]));
}

/** Array.fromAsync for Node 20. */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}
