import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, type Consumption, decodeDeadLetter, loadBusConfig, readStream } from '@bus/bus';
import { defineConnector, type DeliveryCommand } from '@bus/connectors';
import { encode } from '@bus/envelope';
import { createLogger, createMetrics } from '@bus/observability';
import { topology } from '@bus/streams';
import { startNats, startTarget, type TestNats, type TestTarget, uniquePrefix, waitFor } from '@bus/testkit';
import { createDeliverer, createDeliverMetrics, resolveDelivery } from './index.js';

const silent = createLogger({ service: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const connector = defineConnector({
  name: 'crm',
  subscribes: [{ type: 'contact.updated', map: () => null }],
  delivery: {
    kind: 'http', baseUrlEnv: 'CRM_BASE_URL', routes: { upsert: { method: 'PUT', path: '/{type}s/{id}' } },
    retry: { initialDelayMs: 50, maxDelayMs: 200, maxAttempts: 4, attemptTimeoutMs: 400, jitter: 'none' },
    breaker: { failureThreshold: 50 }, ordering: 'strict',
  },
});

let n = 0;
function command(entity: string, version: number): DeliveryCommand {
  const eventId = `evt-${++n}`;
  return {
    id: `crm:${eventId}`, connector: 'crm', action: 'upsert', target: { type: 'contact', id: entity }, fields: { email: `${entity}@example.com` },
    sourceOwned: ['email'], entity: { type: 'contact', id: entity }, version,
    event: { id: eventId, type: 'contact.updated', source: 'standard', occurredAt: new Date().toISOString(), schemaVersion: 1 },
    correlationId: `corr-${eventId}`, idempotencyKey: `crm:${eventId}`,
  };
}

describe('deliver: classified failures against a real HTTP target', () => {
  let nats: TestNats;
  let bus: Bus;
  let target: TestTarget;
  let running: Consumption;
  const busMetrics = createMetrics('deliver-test');
  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'deliver-test', log: silent, metrics: busMetrics });
    await bus.applyTopology(topology({ prefix }));
    target = await startTarget();
    const delivery = resolveDelivery(connector, { CRM_BASE_URL: target.url });
    running = await createDeliverer({ bus, delivery, log: silent, metrics: createDeliverMetrics(createMetrics('d').registry), concurrency: 4 }).start();
  });
  after(async () => {
    await running.stop();
    await target.close();
    await bus.close();
    await nats.stop({ removeStore: true });
  });
  const send = (cmd: DeliveryCommand) =>
    bus.publish(bus.names.subjects.delivery('crm', 'contact'), encode(cmd), { msgId: cmd.id, headers: { 'Bus-Correlation-Id': cmd.correlationId } });
  const callsFor = (cmd: DeliveryCommand) => target.calls.filter((c) => c.idempotencyKey === cmd.idempotencyKey);
  const dlq = async () => {
    const out = [];
    for await (const m of readStream(bus.jsm, bus.names.streams.dlq)) out.push(decodeDeadLetter(m.data));
    return out;
  };

  it('503 then 200: delivered once after a backoff, with one idempotency key on both calls', async () => {
    target.script({ status: 503 });
    const cmd = command('a', 1);
    await send(cmd);
    await waitFor(() => target.outcomes.has(cmd.idempotencyKey), { what: 'the delivery' });
    const calls = callsFor(cmd);
    assert.equal(calls.length, 2);
    assert.ok(calls[1]!.at - calls[0]!.at >= 50, 'backed off');
    assert.equal(calls[0]!.path, '/contacts/a');
    assert.deepEqual((calls[1]!.body as { fields: unknown }).fields, { email: 'a@example.com' });
  });

  it('429 with Retry-After: no attempt before it', async () => {
    target.script({ status: 429, headers: { 'retry-after': '1' } });
    const cmd = command('b', 1);
    await send(cmd);
    await waitFor(() => target.outcomes.has(cmd.idempotencyKey), { what: 'the delivery after Retry-After', timeoutMs: 5_000 });
    const calls = callsFor(cmd);
    assert.equal(calls.length, 2);
    assert.ok(calls[1]!.at - calls[0]!.at >= 1_000, `waited ${calls[1]!.at - calls[0]!.at} ms`);
  });

  it('422: straight to the DLQ as business, no retry', async () => {
    target.script({ status: 422, body: { error: 'email invalid' } });
    const cmd = command('c', 1);
    await send(cmd);
    const [entry] = await waitFor(async () => {
      const d = (await dlq()).filter((e) => e.correlationId === cmd.correlationId);
      return d.length ? d : undefined;
    }, { what: 'the DLQ entry' });
    assert.equal(entry!.failureClass, 'business');
    assert.match(entry!.reason, /422 .*email invalid/);
    assert.equal(callsFor(cmd).length, 1);
  });

  it('a target that applies the request and then times out: retried with the same key, one business outcome', async () => {
    target.script({ applyThenHang: true });
    const cmd = command('d', 1);
    await send(cmd);
    await waitFor(() => callsFor(cmd).length === 2, { what: 'the retry after the ambiguous timeout', timeoutMs: 5_000 });
    await waitFor(async () => (await bus.jsm.consumers.info(bus.names.streams.deliveries, 'deliver-crm')).num_ack_pending === 0, { what: 'the command done' });
    assert.equal([...target.outcomes.keys()].filter((k) => k === cmd.idempotencyKey).length, 1);
    assert.equal(new Set(callsFor(cmd).map((c) => c.idempotencyKey)).size, 1);
  });

  it('versions of one entity arrive out of order: delivered in order', async () => {
    const [v1, v2, v3] = [command('e', 1), command('e', 2), command('e', 3)];
    await send(v3);
    await send(v1);
    await send(v2);
    await waitFor(() => [v1, v2, v3].every((c) => target.outcomes.has(c.idempotencyKey)), { what: 'all three versions' });
    const order = target.calls.filter((c) => c.path === '/contacts/e').map((c) => Number(c.headers['x-entity-version']));
    assert.deepEqual(order, [1, 2, 3]);
  });

  it('401: permanent — DLQ and the connector paused; nothing more is sent until it is resumed', async () => {
    target.script({ status: 401 });
    const cmd = command('f', 1);
    await send(cmd);
    await waitFor(async () => (await dlq()).some((e) => e.correlationId === cmd.correlationId && e.failureClass === 'permanent'), { what: 'the permanent failure in the DLQ' });
    const state = await (await bus.kv(bus.names.kv.connectors)).get('crm');
    assert.equal((state!.json() as { paused: boolean }).paused, true);
    const callsBefore = target.calls.length;
    const next = command('g', 1);
    await send(next);
    await waitFor(async () => /bus_consumed_total\{consumer="deliver-crm",outcome="deferred",service="deliver-test"\} [1-9]/.test(await busMetrics.registry.metrics()),
      { what: 'the next command deferred while paused' });
    assert.equal(target.calls.length, callsBefore, 'paused: no call');
    await (await bus.kv(bus.names.kv.connectors)).put('crm', JSON.stringify({ paused: false }));
  });
});
