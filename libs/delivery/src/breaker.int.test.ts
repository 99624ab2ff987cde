import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, type Consumption, loadBusConfig } from '@bus/bus';
import { defineConnector, type DeliveryCommand } from '@bus/connectors';
import { encode } from '@bus/envelope';
import { createLogger, createMetrics } from '@bus/observability';
import { topology } from '@bus/streams';
import { startNats, startTarget, type TestNats, type TestTarget, uniquePrefix, waitFor } from '@bus/testkit';
import { createDeliverer, createDeliverMetrics, resolveDelivery } from './index.js';

const silent = createLogger({ service: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const BACKLOG = 300;

function command(i: number): DeliveryCommand {
  const eventId = `evt-${i}`;
  return {
    id: `down:${eventId}`, connector: 'down', action: 'upsert', target: { type: 'contact', id: `c${i}` }, fields: { n: i },
    sourceOwned: ['n'], entity: { type: 'contact', id: `c${i}` }, version: 1,
    event: { id: eventId, type: 'contact.updated', source: 'standard', occurredAt: new Date().toISOString(), schemaVersion: 1 },
    correlationId: `corr-${eventId}`, idempotencyKey: `down:${eventId}`,
  };
}

describe('deliver: a target that is down, with a backlog', () => {
  let nats: TestNats;
  let bus: Bus;
  let target: TestTarget;
  let running: Consumption;
  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'breaker-test', log: silent, metrics: createMetrics('b') });
    await bus.applyTopology(topology({ prefix }));
    target = await startTarget({ fallback: { status: 503 } });
    const down = defineConnector({
      name: 'down', subscribes: [{ type: 'contact.updated', map: () => null }],
      delivery: { kind: 'http', baseUrlEnv: 'BASE', routes: { upsert: { method: 'PUT', path: '/{type}s/{id}' } }, ordering: 'none',
        retry: { initialDelayMs: 100, maxDelayMs: 300, maxAttempts: 100, attemptTimeoutMs: 1_000, jitter: 'none' },
        breaker: { failureThreshold: 3, openMs: 1_500 } },
    });
    running = await createDeliverer({ bus, delivery: resolveDelivery(down, { BASE: target.url }), log: silent,
      metrics: createDeliverMetrics(createMetrics('d').registry), concurrency: 8 }).start();
  });
  after(async () => {
    await running.stop();
    await target.close();
    await bus.close();
    await nats.stop({ removeStore: true });
  });

  it('the circuit opens: the consumer stops pulling (the stream keeps the backlog); when the target is back every command lands once', async () => {
    for (let i = 0; i < BACKLOG; i++) await bus.publish(bus.names.subjects.delivery('down', 'contact'), encode(command(i)), { msgId: `down:evt-${i}` });
    const info = () => bus.jsm.consumers.info(bus.names.streams.deliveries, 'deliver-down');
    // a few failures open the circuit; then only probes reach the target
    await waitFor(() => target.calls.length >= 3, { what: 'the first failures' });
    const deliveredAtOpen = (await info()).delivered.consumer_seq;
    const callsAtOpen = target.calls.length;
    // bus connectors list shows it: every change is recorded in bus_connectors
    const circuit = await waitFor(async () => (await (await bus.kv(bus.names.kv.connectors)).get('down.circuit'))?.json() as { state: string } | undefined, { what: 'the circuit recorded' });
    assert.ok(['open', 'half-open'].includes(circuit.state));
    // three probe periods of an open circuit
    await waitFor(() => target.calls.length >= callsAtOpen + 2, { what: 'two probes', timeoutMs: 10_000 });
    const i = await info();
    assert.ok(i.num_pending > BACKLOG / 2, `the stream still holds the backlog (${i.num_pending} never pulled)`);
    // without holding off, every probe period would pull and hand back the whole backlog
    assert.ok(i.delivered.consumer_seq - deliveredAtOpen < BACKLOG / 2, `pulled ${i.delivered.consumer_seq - deliveredAtOpen} messages while open`);
    assert.ok(target.calls.length - callsAtOpen <= 12, `${target.calls.length - callsAtOpen} calls while open: only probes`);

    target.respondWith({ status: 200 });
    await waitFor(() => target.outcomes.size === BACKLOG, { what: `all ${BACKLOG} commands delivered`, timeoutMs: 60_000 });
    await waitFor(async () => (await info()).num_ack_pending === 0 && (await info()).num_pending === 0, { what: 'the queue empty' });
    assert.equal(target.outcomes.size, BACKLOG, 'each once');
  });
});
