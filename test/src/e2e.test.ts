// One business action from webhook to target, followed by `bus trace`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bus, Consumption } from '@bus/bus';
import { connectorStates, setPaused, traceOf } from '@bus/cli';
import { defineConnector, SchemaRegistry } from '@bus/connectors';
import { createDeliverer, createDeliverMetrics, resolveDelivery } from '@bus/delivery';
import { createIntake, createIntakeMetrics } from '@bus/intake';
import { createMetrics } from '@bus/observability';
import { startNats, startTarget, type TestNats, type TestTarget, uniquePrefix, waitFor } from '@bus/testkit';
import { createTransformer, createTransformMetrics } from '@bus/transformer';
import { Webhook } from 'standardwebhooks';
import { Contact, contactSource } from './fixtures/contact-source.js';
import { silent, testBus } from './support.js';

const secret = `whsec_${Buffer.from('e2e-secret-e2e-secret').toString('base64')}`;
const source = contactSource();
const schemas = new SchemaRegistry().add('contact.updated', 1, Contact);
const crm = defineConnector({
  name: 'crm',
  subscribes: [{ type: 'contact.updated', map: (d) => ({ action: 'upsert', target: { type: 'contact', id: String(d.id) }, fields: { email: d.email, score: 1 } }) }],
  ownership: { targetOwned: ['score'] },
  delivery: { kind: 'http', baseUrlEnv: 'CRM_BASE_URL', routes: { upsert: { method: 'PUT', path: '/contacts/{id}' } }, retry: { initialDelayMs: 50, jitter: 'none' } },
}, schemas);

describe('end to end: webhook → EVENTS → transform → DELIVERIES → deliver → target, then bus trace', () => {
  let nats: TestNats;
  let bus: Bus;
  let target: TestTarget;
  const running: Consumption[] = [];
  let deliverer: ReturnType<typeof createDeliverer>;
  before(async () => {
    nats = await startNats();
    bus = await testBus(nats.url, uniquePrefix());
    target = await startTarget();
    const registry = createMetrics('e2e').registry;
    running.push(...(await createTransformer({ bus, connectors: [crm], schemas, log: silent, metrics: createTransformMetrics(registry) }).start()).values());
    deliverer = createDeliverer({ bus, delivery: resolveDelivery(crm, { CRM_BASE_URL: target.url }), log: silent, metrics: createDeliverMetrics(registry) });
    running.push(await deliverer.start());
  });
  after(async () => {
    for (const c of running) await c.stop();
    await target.close();
    await bus.close();
    await nats.stop({ removeStore: true });
  });

  const intake = () => createIntake({ bus, sources: [source], env: { STANDARD_WEBHOOK_SECRET: secret }, log: silent, metrics: createIntakeMetrics(createMetrics('i').registry) });
  async function webhook(id: string, data: Record<string, unknown>) {
    const payload = JSON.stringify({ type: 'contact.updated', data });
    const at = new Date();
    return intake().receive('standard', {
      'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(secret).sign(id, at, payload),
    }, Buffer.from(payload));
  }

  it('a webhook reaches the target once, without target-owned fields, and bus trace shows every step', async () => {
    const res = await webhook('msg_e2e_1', { id: 'c-1', version: 1, email: 'ada@example.com' });
    assert.equal(res.status, 202);
    const correlationId = String(res.body.correlationId);
    await waitFor(() => target.outcomes.size === 1, { what: 'the delivery at the target' });
    const call = target.calls[0]!;
    assert.equal(call.path, '/contacts/c-1');
    assert.deepEqual((call.body as { fields: unknown }).fields, { email: 'ada@example.com' });
    assert.equal(call.headers['x-correlation-id'], correlationId);
    const trace = await waitFor(async () => {
      const t = await traceOf(bus, correlationId);
      return t.some((r) => r.stage === 'deliver' && r.outcome === 'delivered') ? t : undefined;
    }, { what: 'the whole trace' });
    assert.deepEqual(trace.map((r) => `${r.stage}:${r.outcome}`), ['ingest:stored', 'transform:transformed', 'deliver:delivered']);
  });

  it('bus connectors pause holds deliveries in the stream; resume lets them through', async () => {
    await setPaused(bus, 'crm', true, 'maintenance window');
    await waitFor(() => deliverer.paused() === 'maintenance window', { what: 'deliver to see the pause' });
    const states = await connectorStates(bus);
    assert.deepEqual(states.map((s) => [s.connector, s.paused, s.reason]), [['crm', true, 'maintenance window']]);
    const before = target.calls.length;
    await webhook('msg_e2e_2', { id: 'c-2', version: 1, email: 'bob@example.com' });
    await waitFor(async () => (await bus.jsm.consumers.info(bus.names.streams.deliveries, 'deliver-crm')).delivered.stream_seq >= 2, { what: 'the command seen by deliver', timeoutMs: 15_000 });
    assert.equal(target.calls.length, before, 'nothing sent while paused');
    await setPaused(bus, 'crm', false, 'resumed');
    assert.equal((await connectorStates(bus))[0]!.paused, false);
    await waitFor(() => target.calls.length === before + 1, { what: 'the held command delivered after resume', timeoutMs: 15_000 });
  });
});
