import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, loadBusConfig } from '@bus/bus';
import { demoSchemas as schemas } from '@bus/catalog';
import { defineConnector } from '@bus/connectors';
import { createEnvelope } from '@bus/envelope';
import { createLogger, createMetrics } from '@bus/observability';
import { topology } from '@bus/streams';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { createTransformer, createTransformMetrics } from './index.js';

const silent = createLogger({ service: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const map = (d: Record<string, unknown>) => ({ action: 'upsert' as const, target: { type: 'contact', id: String(d.id) }, fields: { email: d.email } });
const anySource = defineConnector({
  name: 'anycrm', subscribes: [{ type: 'contact.updated', map }],
  delivery: { kind: 'http', baseUrlEnv: 'X_URL', routes: { upsert: { method: 'PUT', path: '/c/{id}' } } },
}, schemas);
const oneSource = defineConnector({
  name: 'shopcrm', subscribes: [{ type: 'contact.updated', source: 'shop', map }],
  delivery: { kind: 'http', baseUrlEnv: 'X_URL', routes: { upsert: { method: 'PUT', path: '/c/{id}' } } },
}, schemas);

describe('bus replay: the range is found by the server, not by reading EVENTS from its start', () => {
  let nats: TestNats;
  let bus: Bus;
  let splitMs: number;
  const transformer = () => createTransformer({ bus, connectors: [anySource, oneSource], schemas, log: silent, metrics: createTransformMetrics(createMetrics('t').registry) });
  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'test', log: silent });
    await bus.applyTopology(topology({ prefix }));
    const put = (source: string, id: string) => bus.publishEnvelope(bus.names.subjects.event(source, 'contact.updated'),
      createEnvelope({ type: 'contact.updated', entity: { type: 'contact', id }, version: 1, data: { id, version: 1, email: `${id}@example.com` } }, { source }));
    for (const id of ['a', 'b', 'c']) await put('shop', id); // seqs 1..3: yesterday, say
    const last = await bus.jsm.streams.getMessage(bus.names.streams.events, { seq: 3 });
    splitMs = Math.floor(Date.parse(last!.timestamp)) + 1;
    await waitFor(() => Date.now() > splitMs, { what: 'the clock past the third event' });
    await put('crm', 'd'); // 4
    await put('shop', 'e'); // 5
  });
  after(async () => {
    await bus?.close();
    await nats?.stop({ removeStore: true });
  });

  it('--since starts at the first event stored since then, and maps only those', async () => {
    const r = await transformer().replay(anySource, { sinceMs: splitMs });
    assert.deepEqual(r, { events: 2, handled: 2, invalid: 0, firstSeq: 4, lastSeq: 5 });
    const deliveries = await bus.jsm.streams.info(bus.names.streams.deliveries, { subjects_filter: bus.names.subjects.delivery('anycrm', '>') });
    assert.equal(deliveries.state.messages, 2);
  });

  it('--from-seq / --to-seq still work, and so does --since with --to-seq', async () => {
    assert.deepEqual(await transformer().replay(anySource, { fromSeq: 2, toSeq: 3 }), { events: 2, handled: 2, invalid: 0, firstSeq: 2, lastSeq: 3 });
    assert.deepEqual(await transformer().replay(anySource, { sinceMs: splitMs, toSeq: 4 }), { events: 1, handled: 1, invalid: 0, firstSeq: 4, lastSeq: 4 });
    assert.deepEqual(await transformer().replay(anySource, { sinceMs: Date.now() + 60_000 }), { events: 0, handled: 0, invalid: 0, firstSeq: undefined, lastSeq: undefined });
  });

  it('a connector on one source reads only that source\'s events', async () => {
    assert.deepEqual(await transformer().replay(oneSource, { sinceMs: splitMs }), { events: 1, handled: 1, invalid: 0, firstSeq: 5, lastSeq: 5 });
    assert.deepEqual(await transformer().replay(oneSource, { fromSeq: 1 }), { events: 4, handled: 4, invalid: 0, firstSeq: 1, lastSeq: 5 });
  });
});
