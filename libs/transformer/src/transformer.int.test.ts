import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, type Consumption, decodeDeadLetter, loadBusConfig, readStream } from '@bus/bus';
import { demoConnectors, demoSchemas } from '@bus/catalog';
import { type DeliveryCommand, defineConnector } from '@bus/connectors';
import { createEnvelope, decode, type Envelope } from '@bus/envelope';
import { createLogger, createMetrics } from '@bus/observability';
import { topology } from '@bus/streams';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { createTransformMetrics, createTransformer } from './index.js';

const silent = createLogger({ service: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

async function setUp(url: string, connectors = demoConnectors) {
  const prefix = uniquePrefix();
  const metrics = createMetrics('transform-test');
  const bus = await connectBus({ config: loadBusConfig({ NATS_URL: url, BUS_PREFIX: prefix }), name: 'test', log: silent, metrics });
  await bus.applyTopology(topology({ prefix }));
  const tm = createTransformMetrics(metrics.registry);
  const running = await createTransformer({ bus, connectors, schemas: demoSchemas, log: silent, metrics: tm, concurrency: 8 }).start();
  return { bus, metrics, running };
}

async function all<T>(bus: Bus, stream: string, decodeFn: (b: Uint8Array) => T): Promise<{ subject: string; value: T }[]> {
  const out: { subject: string; value: T }[] = [];
  for await (const m of readStream(bus.jsm, stream)) out.push({ subject: m.subject, value: decodeFn(m.data) });
  return out;
}
const commands = (bus: Bus) => all(bus, bus.names.streams.deliveries, (b) => decode(b) as DeliveryCommand);

function event(source: string, type: string, id: string, data: Record<string, unknown>, version = 1): Envelope {
  return createEnvelope({ type, entity: { type: type.split('.')[0]!, id }, version, data }, { source });
}
const publish = (bus: Bus, env: Envelope, msgId = env.id) => bus.publishEnvelope(bus.names.subjects.event(env.source, env.type), env, { msgId });
const stopAll = async (running: Map<string, Consumption>) => Promise.all([...running.values()].map((c) => c.stop()));

describe('transform: one event, one command per subscribing connector', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop({ removeStore: true }));

  it('fans out to every subscribing connector and to no other; a filter excludes what it should', async () => {
    const t = await setUp(nats.url);
    try {
      await publish(t.bus, event('standard', 'contact.updated', 'c1', { id: 'c1', version: 1, email: 'ada@example.com' }));
      await publish(t.bus, event('shop', 'order.created', 'o1', { total: 10, items: [{ sku: 'A', quantity: 1 }] }));
      await publish(t.bus, event('shop', 'order.created', 'o2', { total: 0 })); // nothing to ship: the warehouse filter skips it
      const cmds = await waitFor(async () => {
        const c = await commands(t.bus);
        return c.length >= 4 ? c : undefined;
      }, { what: 'four commands' });
      const byConnector = cmds.map((c) => `${c.value.connector}:${c.value.target.type}:${c.value.target.id}`).sort();
      assert.deepEqual(byConnector, ['crm:contact:c1', 'crm:order:o1', 'crm:order:o2', 'warehouse:shipment:o1']);
      const shipment = cmds.find((c) => c.value.connector === 'warehouse');
      // the source entity is in the subject, so what is pending for one entity can be found by subject (pendingVersions)
      assert.equal(shipment?.subject, t.bus.names.subjects.delivery('warehouse', 'shipment', { type: 'order', id: 'o1' }));
      assert.equal(shipment?.subject.endsWith('deliveries.warehouse.shipment.order.o1'), true);
      const text = await t.metrics.registry.metrics();
      assert.match(text, /transform_skipped_total\{connector="warehouse",type="order.created",reason="filter",service="transform-test"\} 1/);
      assert.match(text, /transform_skipped_total\{connector="warehouse",type="contact.updated",reason="not_subscribed",service="transform-test"\} 1/);
    } finally {
      await stopAll(t.running);
      await t.bus.close();
    }
  });

  it('an event stored twice produces one command per connector (the command ids are the same: DELIVERIES stores each once)', async () => {
    const t = await setUp(nats.url);
    try {
      const env = event('shop', 'order.created', 'o9', { total: 5, items: [{ sku: 'B', quantity: 2 }] });
      await publish(t.bus, env, `${env.id}-first`);
      await waitFor(async () => (await commands(t.bus)).length === 2, { what: 'the first two commands' });
      await publish(t.bus, env, `${env.id}-again`); // a different Nats-Msg-Id: the stream stores it twice
      await waitFor(async () => {
        const i = await t.bus.jsm.consumers.info(t.bus.names.streams.events, 'transform-crm');
        const w = await t.bus.jsm.consumers.info(t.bus.names.streams.events, 'transform-warehouse');
        return i.num_pending + i.num_ack_pending + w.num_pending + w.num_ack_pending === 0 && i.delivered.stream_seq === 2;
      }, { what: 'both copies handled' });
      assert.equal((await commands(t.bus)).length, 2);
      // transform keeps no dedup state of its own (issue #16): the second copy was mapped again and its commands refused by the window
      assert.match(await t.metrics.registry.metrics(), /transform_commands_total\{connector="crm",type="order.created",service="transform-test"\} 2/);
    } finally {
      await stopAll(t.running);
      await t.bus.close();
    }
  });

  it('an invalid event lands in the DLQ with its issues and stops nothing else; a drifting event flows and is counted', async () => {
    const t = await setUp(nats.url);
    try {
      await publish(t.bus, event('standard', 'contact.updated', 'bad', { id: 'bad', version: 1, email: 'not-an-email' }));
      await publish(t.bus, event('standard', 'contact.updated', 'c2', { id: 'c2', version: 1, email: 'b@example.com', nickname: 'B' }));
      const dlq = await waitFor(async () => {
        const d = await all(t.bus, t.bus.names.streams.dlq, decodeDeadLetter);
        return d.length ? d : undefined;
      }, { what: 'the invalid event in the DLQ' });
      assert.equal(dlq.length, 1);
      assert.equal(dlq[0]!.value.connector, 'crm');
      assert.equal(dlq[0]!.value.code, 'TRANSFORM_EVENT_INVALID');
      assert.deepEqual((dlq[0]!.value.details!.issues as { path: string }[]).map((i) => i.path), ['email']);
      const cmds = await waitFor(async () => {
        const c = await commands(t.bus);
        return c.length ? c : undefined;
      }, { what: 'the drifting event transformed' });
      assert.equal(cmds[0]!.value.target.id, 'c2');
      assert.equal('nickname' in cmds[0]!.value.fields, false, 'unknown fields do not leak into commands');
      assert.match(await t.metrics.registry.metrics(), /transform_drift_total\{connector="crm",type="contact.updated",field="nickname",service="transform-test"\} 1/);
    } finally {
      await stopAll(t.running);
      await t.bus.close();
    }
  });

  it('metric labels from input stay bounded: an unknown type and the 51st drifted field name are counted as other', async () => {
    const t = await setUp(nats.url);
    try {
      const junk = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`junk${i}`, i]));
      await publish(t.bus, event('standard', 'contact.updated', 'c9', { id: 'c9', version: 1, email: 'c@example.com', ...junk }));
      await publish(t.bus, event('standard', 'made_up.type_one', 'x1', { id: 'x1' }));
      await waitFor(async () => /transform_skipped_total\{[^}]*reason="not_subscribed"/.test(await t.metrics.registry.metrics()) && (await commands(t.bus)).length > 0, { what: 'both events handled' });
      const text = await t.metrics.registry.metrics();
      const fields = new Set([...text.matchAll(/transform_drift_total\{[^}]*field="([^"]+)"/g)].map((m) => m[1]));
      assert.equal(fields.size, 51, '50 field names, then other');
      assert.ok(fields.has('other'));
      assert.match(text, /transform_drift_total\{connector="crm",type="contact.updated",field="other",service="transform-test"\} 10/);
      assert.doesNotMatch(text, /made_up/, 'a type no connector subscribes to is not a label value');
      assert.match(text, /transform_skipped_total\{connector="(crm|warehouse)",type="other",reason="not_subscribed"/);
    } finally {
      await stopAll(t.running);
      await t.bus.close();
    }
  });

  it('target-owned fields are never in a command; source-owned ones always are', async () => {
    const t = await setUp(nats.url);
    try {
      await publish(t.bus, event('shop', 'order.created', 'o5', { total: 7, contactId: 'c1' }));
      const [cmd] = await waitFor(async () => {
        const c = await commands(t.bus);
        return c.length ? c : undefined;
      }, { what: 'the crm order command' });
      assert.deepEqual(Object.keys(cmd!.value.fields).sort(), ['contactId', 'currency', 'total']);
      assert.equal('stage' in cmd!.value.fields, false, 'stage is the CRM\'s');
      assert.deepEqual(cmd!.value.sourceOwned.sort(), ['contactId', 'currency', 'total']);
      assert.equal(cmd!.value.idempotencyKey, cmd!.value.id);
    } finally {
      await stopAll(t.running);
      await t.bus.close();
    }
  });

  it('one connector failing on every event, or stopped, does not hold the others back', async () => {
    const broken = defineConnector({ name: 'broken', subscribes: [{ type: 'order.created', map: () => {
      throw new Error('mapping bug');
    } }] }, demoSchemas);
    const t = await setUp(nats.url, [broken, ...demoConnectors]);
    try {
      await t.running.get('crm')!.stop(); // crm is down too
      for (let i = 0; i < 20; i++) await publish(t.bus, event('shop', 'order.created', `o${i}`, { total: 1, items: [{ sku: 'S', quantity: 1 }] }));
      const shipped = await waitFor(async () => {
        const c = (await commands(t.bus)).filter((x) => x.value.connector === 'warehouse');
        return c.length === 20 ? c : undefined;
      }, { what: 'all 20 warehouse commands while crm is stopped and broken fails' });
      assert.equal(shipped.length, 20);
      const dlq = await waitFor(async () => {
        const d = (await all(t.bus, t.bus.names.streams.dlq, decodeDeadLetter)).filter((x) => x.value.connector === 'broken');
        return d.length === 20 ? d : undefined;
      }, { what: 'the broken connector\'s 20 dead-letters' });
      assert.equal(dlq[0]!.value.code, 'TRANSFORM_MAPPING_FAILED');
      const crm = await t.bus.jsm.consumers.info(t.bus.names.streams.events, 'transform-crm');
      assert.equal(crm.num_pending, 20, 'crm\'s events wait in the stream for it');
    } finally {
      await stopAll(t.running);
      await t.bus.close();
    }
  });
  it('connectors share one read-only event: a mapping that writes into it is dead-lettered, and the others see the event as stored', async () => {
    // the same event object and validated data serve every connector's mapping (decoded once per process)
    const seen: unknown[] = [];
    const writer = defineConnector({ name: 'writer', subscribes: [{ type: 'order.created', map: (data) => {
      (data as { total: number }).total = 999;
      return { action: 'upsert', target: { type: 'order', id: 'x' }, fields: {} };
    } }] }, demoSchemas);
    const reader = defineConnector({ name: 'reader', subscribes: [{ type: 'order.created', map: (data) => {
      seen.push(data.total);
      return { action: 'upsert', target: { type: 'order', id: 'x' }, fields: { total: data.total } };
    } }] }, demoSchemas);
    const t = await setUp(nats.url, [writer, reader]);
    try {
      await publish(t.bus, event('shop', 'order.created', 'o-w', { total: 10, items: [{ sku: 'S', quantity: 1 }] }));
      const dlq = await waitFor(async () => {
        const d = (await all(t.bus, t.bus.names.streams.dlq, decodeDeadLetter)).filter((x) => x.value.connector === 'writer');
        return d.length === 1 ? d : undefined;
      }, { what: "the writer's event in the DLQ" });
      assert.equal(dlq[0]!.value.code, 'TRANSFORM_MAPPING_FAILED');
      const cmd = await waitFor(async () => (await commands(t.bus)).find((c) => c.value.connector === 'reader'), { what: "the reader's command" });
      assert.equal(cmd.value.fields.total, 10);
      assert.deepEqual(seen, [10]);
    } finally {
      await stopAll(t.running);
      await t.bus.close();
    }
  });
});
