// Transform keeps no dedup state (issue #16): an event handled again — a redelivery after a lost
// ack, hours later past DELIVERIES' duplicate window — makes commands deliver skips by the applied
// version, so the target gets it once.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bus, Consumption } from '@bus/bus';
import { defineConnector, SchemaRegistry } from '@bus/connectors';
import { createDeliverer, createDeliverMetrics, resolveDelivery } from '@bus/delivery';
import { createEnvelope } from '@bus/envelope';
import { createMetrics } from '@bus/observability';
import { topology } from '@bus/streams';
import { startNats, startTarget, type TestNats, type TestTarget, uniquePrefix, waitFor } from '@bus/testkit';
import { createTransformer, createTransformMetrics } from '@bus/transformer';
import { Contact } from './fixtures/contact-source.js';
import { silent, testBus } from './support.js';

const schemas = new SchemaRegistry().add('contact.updated', 1, Contact);
const connector = (ordering: 'strict' | 'latest') => defineConnector({
  name: 'crm',
  subscribes: [{ type: 'contact.updated', map: (d) => ({ action: 'upsert', target: { type: 'contact', id: String(d.id) }, fields: { email: d.email } }) }],
  delivery: { kind: 'http', baseUrlEnv: 'CRM_BASE_URL', routes: { upsert: { method: 'PUT', path: '/contacts/{id}' } }, ordering, retry: { initialDelayMs: 50, jitter: 'none' } },
}, schemas);

for (const ordering of ['strict', 'latest'] as const) {
  describe(`transform without dedup state (${ordering}): a redelivered event makes no second delivery`, () => {
    let nats: TestNats;
    let bus: Bus;
    let target: TestTarget;
    let running: Consumption;
    before(async () => {
      nats = await startNats();
      const prefix = uniquePrefix();
      bus = await testBus(nats.url, prefix);
      // DELIVERIES forgets command ids after 1 s here (10 min in production), so the second copy is stored
      const topo = topology({ prefix });
      for (const s of topo.streams) if (s.name === bus.names.streams.deliveries) s.duplicateWindowSec = 1;
      await bus.applyTopology(topo);
      target = await startTarget();
      running = await createDeliverer({ bus, delivery: resolveDelivery(connector(ordering), { CRM_BASE_URL: target.url }), log: silent, metrics: createDeliverMetrics(createMetrics('d').registry) }).start();
    });
    after(async () => {
      await running.stop();
      await target.close();
      await bus.close();
      await nats.stop({ removeStore: true });
    });

    it('the same event handled twice, past the DELIVERIES window: stored twice in DELIVERIES, applied once at the target', async () => {
      const transformer = createTransformer({ bus, connectors: [connector(ordering)], schemas, log: silent, metrics: createTransformMetrics(createMetrics('t').registry) });
      const env = createEnvelope({ type: 'contact.updated', entity: { type: 'contact', id: 'c-1' }, version: 1, data: { id: 'c-1', version: 1, email: 'ada@example.com' } }, { source: 'standard' });
      const handleOnce = () => transformer.handle(connector(ordering), env, { log: silent, seq: 1 });
      assert.equal((await handleOnce()).kind, 'done');
      await waitFor(() => target.outcomes.size === 1, { what: 'the first delivery' });
      // past the window: a probe id is accepted again
      const probe = bus.names.subjects.delivery('nobody', 'probe'); // a subject no deliverer reads
      await bus.publish(probe, new Uint8Array([1]), { msgId: 'probe-window' });
      const probeSeq = await waitFor(async () => {
        const p = await bus.publish(probe, new Uint8Array([1]), { msgId: 'probe-window' });
        return p.duplicate ? undefined : p.seq;
      }, { what: 'the DELIVERIES window to pass', timeoutMs: 10_000, intervalMs: 200 });
      assert.equal((await handleOnce()).kind, 'done'); // the redelivery
      const deliveries = bus.names.streams.deliveries;
      await waitFor(async () => {
        const c = await bus.jsm.consumers.info(deliveries, 'deliver-crm');
        // a stream sequence after the probe: the second command was stored, and deliver has finished with it
        return c.delivered.stream_seq > probeSeq && c.num_pending === 0 && c.num_ack_pending === 0;
      }, { what: 'deliver to have handled the second command', timeoutMs: 15_000 });
      assert.equal(target.calls.filter((c) => c.path === '/contacts/c-1').length, 1, 'the target was called once');
    });
  });
}
