import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bus, Consumption } from '@bus/bus';
import { defineConnector, SchemaRegistry } from '@bus/connectors';
import { createDeliverer, createDeliverMetrics, resolveDelivery } from '@bus/delivery';
import { createEnvelope } from '@bus/envelope';
import { createMetrics } from '@bus/observability';
import { startNats, startTarget, type TestNats, type TestTarget, uniquePrefix, waitFor } from '@bus/testkit';
import { createTransformer, createTransformMetrics } from '@bus/transformer';
import { z } from 'zod';
import { silent, testBus } from './support.js';

const schemas = new SchemaRegistry().add('contact.updated', 1, z.object({ id: z.string(), email: z.string() }));
const newTarget = defineConnector({
  name: 'newcrm',
  subscribes: [{ type: 'contact.updated', map: (d) => ({ action: 'upsert', target: { type: 'contact', id: String(d.id) }, fields: { email: d.email } }) }],
  delivery: { kind: 'http', baseUrlEnv: 'NEWCRM_URL', routes: { upsert: { method: 'PUT', path: '/contacts/{id}' } }, ordering: 'latest' },
}, schemas);

describe('bus replay: a range of EVENTS re-delivered to one connector', () => {
  let nats: TestNats;
  let bus: Bus;
  let target: TestTarget;
  let delivering: Consumption;
  before(async () => {
    nats = await startNats();
    bus = await testBus(nats.url, uniquePrefix());
    target = await startTarget();
    delivering = await createDeliverer({ bus, delivery: resolveDelivery(newTarget, { NEWCRM_URL: target.url }), log: silent, metrics: createDeliverMetrics(createMetrics('r').registry) }).start();
  });
  after(async () => {
    await delivering.stop();
    await target.close();
    await bus.close();
    await nats.stop({ removeStore: true });
  });

  it('a new target gets the history once; replaying again sends it nothing twice', async () => {
    for (const id of ['a', 'b', 'c']) {
      await bus.publishEnvelope(bus.names.subjects.event('crm', 'contact.updated'),
        createEnvelope({ type: 'contact.updated', entity: { type: 'contact', id }, version: 1, data: { id, email: `${id}@example.com` } }, { source: 'crm' }));
    }
    const transformer = createTransformer({ bus, connectors: [newTarget], schemas, log: silent, metrics: createTransformMetrics(createMetrics('t').registry) });
    const first = await transformer.replay(newTarget, { fromSeq: 1 });
    assert.deepEqual(first, { events: 3, handled: 3, invalid: 0, firstSeq: 1, lastSeq: 3 });
    await waitFor(() => target.outcomes.size === 3, { what: 'the three contacts at the new target' });
    const calls = target.calls.length;

    const again = await transformer.replay(newTarget, { fromSeq: 1 });
    assert.equal(again.handled, 3);
    await waitFor(async () => {
      const info = await bus.jsm.consumers.info(bus.names.streams.deliveries, 'deliver-newcrm');
      return info.num_pending === 0 && info.num_ack_pending === 0 && info.delivered.stream_seq >= 6;
    }, { what: 'the replayed commands handled' });
    assert.equal(target.calls.length, calls, 'the version guard skipped them: no call');
  });
});
