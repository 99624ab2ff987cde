import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { auditTrace, connectBus, loadBusConfig, type Bus } from '@bus/bus';
import { EnvelopeError } from '@bus/envelope';
import { createLogger } from '@bus/observability';
import { topology } from '@bus/streams';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { createBusClient } from './index.js';

describe('@bus/client', () => {
  let nats: TestNats;
  let bus: Bus;
  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 't', log: createLogger({ service: 't', level: 'silent' }) });
    await bus.applyTopology(topology({ prefix }));
  });
  after(async () => {
    await bus.close();
    await nats.stop({ removeStore: true });
  });

  it('publishes a typed domain event with the version the service assigns; the same id again is a duplicate', async () => {
    const client = createBusClient({ bus, source: 'billing' });
    const first = await client.publish({ id: 'inv-1-v3', type: 'invoice.issued', entity: { type: 'invoice', id: 'inv-1' }, version: 3, data: { amount: 12 } });
    assert.equal(first.status, 'stored');
    const again = await client.publish({ id: 'inv-1-v3', type: 'invoice.issued', entity: { type: 'invoice', id: 'inv-1' }, version: 3, data: { amount: 12 } });
    assert.equal(again.status, 'duplicate');
    assert.equal(again.seq, first.seq);
  });

  it('a stored event is audited as ingest stored, which indexes it: its id and entity find the action (a duplicate is not audited again)', async () => {
    const client = createBusClient({ bus, source: 'billing' });
    const event = { id: 'inv-9-v1', type: 'invoice.voided', entity: { type: 'invoice', id: 'inv-9' }, version: 1, data: {}, correlationId: 'corr-inv-9' };
    await client.publish(event);
    await client.publish(event);
    for (const key of ['corr-inv-9', 'inv-9-v1', 'invoice/inv-9']) {
      const t = await waitFor(async () => { const r = await auditTrace(bus, key); return r.correlations.length ? r : undefined; }, { what: `the trace by ${key}` });
      assert.deepEqual(t.correlations.map((c) => c.records.map((r) => `${r.stage} ${r.outcome} ${r.eventId} ${r.source}`)), [['ingest stored inv-9-v1 billing']], key);
    }
  });

  it('an invalid event is refused with its fields named, and nothing is stored', async () => {
    const client = createBusClient({ bus, source: 'billing' });
    const before = (await bus.jsm.streams.info(bus.names.streams.events)).state.messages;
    await assert.rejects(client.publish({ type: 'invoice issued', entity: { type: 'invoice', id: '' }, version: 0, data: {} }),
      (err) => err instanceof EnvelopeError && ['type', 'entity.id', 'version'].every((p) => err.issues.some((i) => i.path === p)));
    assert.equal((await bus.jsm.streams.info(bus.names.streams.events)).state.messages, before);
  });

  it('a server outage during publish: retried with the same id, stored once when the server is back', async (t) => {
    if (!nats.canRestart) return t.skip('NATS_URL is set: the server cannot be stopped');
    const client = createBusClient({ bus, source: 'billing', attempts: 30, retryDelayMs: 100 });
    await nats.stop();
    const pending = client.publish({ id: 'inv-2-v1', type: 'invoice.issued', entity: { type: 'invoice', id: 'inv-2' }, version: 1, data: {} });
    await nats.start();
    const r = await pending;
    assert.equal(r.eventId, 'inv-2-v1');
    const info = await bus.jsm.streams.info(bus.names.streams.events, { subjects_filter: '>' });
    assert.equal(Object.entries(info.state.subjects ?? {}).filter(([s]) => s.endsWith('invoice.issued')).reduce((n, [, c]) => n + c, 0), 2);
  });
});
