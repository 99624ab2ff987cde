import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, type Consumption, deadLetter, defer, done, ensureConsumer, loadBusConfig } from '@bus/bus';
import { decode, encode } from '@bus/envelope';
import { createLogger } from '@bus/observability';
import { topology, workerConsumer } from '@bus/streams';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { createOrderingGuard, type OrderingMode } from './index.js';

const silent = createLogger({ service: 'test', level: 'silent' });
const ENTITIES = 10;
const VERSIONS = 20;

/** A target that records what it applies and notices two commands for one entity at once. */
function fakeTarget() {
  const applied = new Map<string, number[]>();
  const inFlight = new Set<string>();
  let overlaps = 0;
  return {
    applied, get overlaps() {
      return overlaps;
    },
    async apply(entity: string, version: number) {
      if (inFlight.has(entity)) overlaps++;
      inFlight.add(entity);
      await new Promise((r) => setImmediate(r)); // the call takes a moment
      applied.set(entity, [...(applied.get(entity) ?? []), version]);
      inFlight.delete(entity);
    },
  };
}

function shuffled<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

async function deliverProcess(url: string, prefix: string, durable: string, mode: OrderingMode, target: ReturnType<typeof fakeTarget>): Promise<{ bus: Bus; c: Consumption }> {
  const bus = await connectBus({ config: loadBusConfig({ NATS_URL: url, BUS_PREFIX: prefix }), name: 'deliver-test', log: silent });
  const guard = createOrderingGuard({ kv: await bus.kv(bus.names.kv.versions), connector: durable, mode, recheckMs: 20, gapWaitMs: 30_000 });
  const c = await bus.consume<{ entity: string; version: number }>({
    stream: bus.names.streams.deliveries, durable, stage: 'deliver', connector: durable, concurrency: 8,
    decode: (b) => decode(b) as { entity: string; version: number },
    handler: async (cmd, ctx) => {
      const b = await guard.begin({ entity: { type: 'contact', id: cmd.entity }, version: cmd.version, storedAtMs: ctx.storedAtMs });
      if (b.kind === 'skip') return done();
      if (b.kind === 'wait') return defer(b.delayMs, b.reason);
      if (b.kind === 'gap-expired') return deadLetter('business', 'ORDERING_GAP', `missing ${b.missing.join(',')}`);
      await target.apply(cmd.entity, cmd.version);
      await guard.commit(b.token);
      return done();
    },
  });
  return { bus, c };
}

describe('per-entity ordering across two deliver processes', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop({ removeStore: true }));

  for (const mode of ['strict', 'latest'] as const) {
    it(`${mode}: versions 1..${VERSIONS} of ${ENTITIES} entities, shuffled and duplicated, through two processes`, async () => {
      const prefix = uniquePrefix();
      const setup = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'setup', log: silent });
      await setup.applyTopology(topology({ prefix }));
      const durable = `deliver-${mode}`;
      await ensureConsumer(setup.jsm, workerConsumer({ stream: setup.names.streams.deliveries, durable, description: 'test',
        filterSubject: setup.names.subjects.delivery(durable, '>'), maxDeliver: -1 }));
      const target = fakeTarget();
      const procs = [await deliverProcess(nats.url, prefix, durable, mode, target), await deliverProcess(nats.url, prefix, durable, mode, target)];
      try {
        const commands = shuffled(Array.from({ length: ENTITIES * VERSIONS }, (_, i) => ({ entity: `e${i % ENTITIES}`, version: Math.floor(i / ENTITIES) + 1 })));
        const dupes = commands.filter((_, i) => i % 7 === 0); // some arrive twice (new msg ids: the stream keeps both)
        for (const [i, cmd] of [...commands, ...shuffled(dupes)].entries()) {
          await setup.publish(setup.names.subjects.delivery(durable, 'contact'), encode(cmd), { msgId: `${cmd.entity}-${cmd.version}-${i}` });
        }
        await waitFor(async () => {
          const info = await setup.jsm.consumers.info(setup.names.streams.deliveries, durable);
          return info.num_pending === 0 && info.num_ack_pending === 0;
        }, { what: 'every command handled', timeoutMs: 60_000, intervalMs: 100 });
        assert.equal(target.overlaps, 0, 'never two commands for one entity in flight');
        for (let e = 0; e < ENTITIES; e++) {
          const seen = target.applied.get(`e${e}`) ?? [];
          if (mode === 'strict') assert.deepEqual(seen, Array.from({ length: VERSIONS }, (_, i) => i + 1), `e${e} in order, each once`);
          else {
            assert.ok(seen.every((v, i) => i === 0 || v > seen[i - 1]!), `e${e} never older over newer: ${seen.join(',')}`);
            assert.equal(seen.at(-1), VERSIONS);
          }
        }
      } finally {
        for (const p of procs) {
          await p.c.stop();
          await p.bus.close();
        }
        await setup.close();
      }
    });
  }
});
