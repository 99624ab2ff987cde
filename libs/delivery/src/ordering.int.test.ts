import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, type Consumption, decodeDeadLetter, loadBusConfig, readStream } from '@bus/bus';
import { commandHeaders, defineConnector, type DeliveryCommand } from '@bus/connectors';
import { encode } from '@bus/envelope';
import { createLogger, createMetrics } from '@bus/observability';
import { topology } from '@bus/streams';
import { startNats, startTarget, type TestNats, type TestTarget, uniquePrefix, waitFor } from '@bus/testkit';
import { createDeliverer, createDeliverMetrics, resolveDelivery } from './index.js';

const silent = createLogger({ service: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const GAP_WAIT_MS = 1_000;
const connector = defineConnector({
  name: 'crm',
  subscribes: [{ type: 'contact.updated', map: () => null }],
  delivery: {
    kind: 'http', baseUrlEnv: 'CRM_BASE_URL', routes: { upsert: { method: 'PUT', path: '/{type}s/{id}' } },
    retry: { initialDelayMs: 50, maxDelayMs: 200, maxAttempts: 4, attemptTimeoutMs: 400, jitter: 'none' },
    ordering: 'strict', gapWaitMs: GAP_WAIT_MS, reorderWindowMs: 500,
  },
});

let n = 0;
function command(entity: string, version: number, versionKind?: 'stamp'): DeliveryCommand {
  const eventId = `evt-${++n}`;
  return {
    id: `crm:${eventId}`, connector: 'crm', action: 'upsert', target: { type: 'contact', id: entity }, fields: { email: `${entity}@example.com` },
    sourceOwned: ['email'], entity: { type: 'contact', id: entity }, version, ...(versionKind ? { versionKind } : {}),
    event: { id: eventId, type: 'contact.updated', source: 'standard', occurredAt: new Date().toISOString(), schemaVersion: 1 },
    correlationId: `corr-${eventId}`, idempotencyKey: `crm:${eventId}`,
  };
}

/** A seeded shuffle (mulberry32), so a failure can be replayed. */
function shuffled<T>(xs: T[], seed: number): T[] {
  let a = seed >>> 0;
  const random = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('deliver: ordering under pauses, backlogs and stamp versions', () => {
  let nats: TestNats;
  let bus: Bus;
  let target: TestTarget;
  let running: Consumption;
  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'deliver-test', log: silent });
    await bus.applyTopology(topology({ prefix }));
    target = await startTarget();
    const delivery = resolveDelivery(connector, { CRM_BASE_URL: target.url });
    running = await createDeliverer({ bus, delivery, log: silent, metrics: createDeliverMetrics(createMetrics('d').registry), concurrency: 8 }).start();
  });
  after(async () => {
    await running.stop();
    await target.close();
    await bus.close();
    await nats.stop({ removeStore: true });
  });
  const send = (cmd: DeliveryCommand) => bus.publish(bus.names.subjects.delivery('crm', 'contact', cmd.entity), encode(cmd), { msgId: cmd.id, headers: commandHeaders(cmd) });
  const drained = () => waitFor(async () => {
    const i = await bus.jsm.consumers.info(bus.names.streams.deliveries, 'deliver-crm');
    return i.num_pending === 0 && i.num_ack_pending === 0;
  }, { what: 'every command handled', timeoutMs: 30_000, intervalMs: 100 });
  const dlq = async () => {
    const out = [];
    for await (const m of readStream(bus.jsm, bus.names.streams.dlq)) out.push(decodeDeadLetter(m.data));
    return out;
  };
  const order = (id: string) => target.calls.filter((c) => c.method === 'PUT' && c.path === `/contacts/${id}`).map((c) => Number(c.headers['x-entity-version']));
  const connectorsKv = () => bus.kv(bus.names.kv.connectors);

  it('an operator pause longer than the gap wait: the shuffled backlog is delivered in order, nothing dead-lettered as a gap', async () => {
    await (await connectorsKv()).put('crm', JSON.stringify({ paused: true, reason: 'test: operator pause' }));
    const entities = Array.from({ length: 10 }, (_, i) => `p${i}`);
    const commands = shuffled(entities.flatMap((id) => [1, 2, 3, 4].map((v) => command(id, v))), 11);
    for (const cmd of commands) await send(cmd);
    const storedAt = Date.now();
    // the scenario itself: the backlog waits paused for three gap waits
    await waitFor(() => Date.now() - storedAt > 3 * GAP_WAIT_MS, { what: 'the pause to outlast the gap wait', timeoutMs: 10_000 });
    await (await connectorsKv()).put('crm', JSON.stringify({ paused: false }));
    await drained();
    for (const id of entities) assert.deepEqual(order(id), [1, 2, 3, 4], `${id}: every version once, in order`);
    assert.deepEqual((await dlq()).map((e) => e.code), [], 'nothing dead-lettered');
  });

  it('a version that never comes is dead-lettered after the gap wait of real absence, naming it', async () => {
    await send(command('gap', 1));
    await send(command('gap', 3));
    const [entry] = await waitFor(async () => {
      const d = (await dlq()).filter((e) => e.code === 'DELIVER_ORDER_GAP');
      return d.length ? d : undefined;
    }, { what: 'the gap dead-lettered', timeoutMs: 15_000 });
    assert.match(entry!.reason, /contact gap version 3: versions 2 were neither pending nor in flight/);
    assert.deepEqual(order('gap'), [1]);
  });

  it('stamp versions under strict: never waits for the numbers in between; older first when both are there; an older stamp after a newer is skipped', async () => {
    const t0 = 1_760_000_000;
    const [older, newer, late] = [command('st', t0, 'stamp'), command('st', t0 + 50, 'stamp'), command('st', t0 + 10, 'stamp')];
    await send(newer);
    await send(older);
    await drained();
    assert.deepEqual(order('st'), [t0, t0 + 50], 'held the reorder window, then in increasing order');
    await send(late);
    await drained();
    assert.deepEqual(order('st'), [t0, t0 + 50], 'never older over newer');
    assert.deepEqual((await dlq()).map((e) => e.code).filter((c) => c !== 'DELIVER_ORDER_GAP'), [], 'nothing else dead-lettered');
  });
});
