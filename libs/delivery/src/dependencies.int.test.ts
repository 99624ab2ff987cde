import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, loadBusConfig } from '@bus/bus';
import { commandHeaders, type DeliveryCommand } from '@bus/connectors';
import { encode } from '@bus/envelope';
import { createLogger } from '@bus/observability';
import { createOrderingGuard } from '@bus/ordering';
import { topology } from '@bus/streams';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { createDependencies } from './dependencies.js';

const silent = createLogger({ service: 'test', level: 'silent' });

describe('dependency checks: applied, pending, missing, and the wait clock', () => {
  let nats: TestNats;
  let bus: Bus;
  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'deps-test', log: silent });
    await bus.applyTopology(topology({ prefix }));
  });
  after(async () => {
    await bus.close();
    await nats.stop({ removeStore: true });
  });
  const order = (id: string, contact: string): DeliveryCommand => ({
    id: `crm:evt-${id}`, connector: 'crm', action: 'upsert', target: { type: 'order', id }, fields: {}, sourceOwned: [], entity: { type: 'order', id }, version: 1,
    event: { id: `evt-${id}`, type: 'order.created', source: 'shop', occurredAt: new Date().toISOString(), schemaVersion: 1 }, correlationId: `c-${id}`, idempotencyKey: `crm:evt-${id}`,
    needs: [{ type: 'contact', id: contact }],
  });
  const contactCmd = (id: string): DeliveryCommand => ({ ...order(`x${id}`, id), id: `crm:evt-contact-${id}`, target: { type: 'contact', id }, entity: { type: 'contact', id }, needs: undefined });

  it('not there yet: waits; pending in DELIVERIES: waits (sooner); applied: ready', async () => {
    const deps = createDependencies({ bus, connector: 'crm', waitMs: 60_000, log: silent });
    const cmd = order('o1', 'k1');
    assert.deepEqual(await deps.check(cmd, Date.now()), { kind: 'wait', need: { type: 'contact', id: 'k1' }, why: 'not there yet', delayMs: 1_000 });
    const c = contactCmd('k1');
    await bus.publish(bus.names.subjects.delivery('crm', 'contact', c.entity), encode(c), { msgId: c.id, headers: commandHeaders(c) });
    assert.deepEqual(await deps.check(cmd, Date.now()), { kind: 'wait', need: { type: 'contact', id: 'k1' }, why: 'pending or in flight', delayMs: 250 });
    const guard = createOrderingGuard({ kv: await bus.kv(bus.names.kv.versions), connector: 'crm', mode: 'strict' });
    const b = await guard.begin({ entity: c.entity, version: 1, storedAtMs: Date.now() });
    assert.equal(b.kind, 'go');
    if (b.kind === 'go') await guard.commit(b.token);
    assert.deepEqual(await deps.check(cmd, Date.now()), { kind: 'ready' });
  });

  it('the wait counts only time spent waiting: a command stored long ago (a backlog, an outage) gets the whole wait from its first look', async () => {
    const deps = createDependencies({ bus, connector: 'crm', waitMs: 300, log: silent });
    const cmd = order('o2', 'k2');
    const storedLongAgo = Date.now() - 3_600_000;
    const firstLook = Date.now();
    assert.equal((await deps.check(cmd, storedLongAgo)).kind, 'wait', 'an hour in the stream is not an hour of waiting');
    const missing = await waitFor(async () => {
      const r = await deps.check(cmd, storedLongAgo);
      return r.kind === 'missing' ? r : undefined;
    }, { what: 'the wait to run out', timeoutMs: 5_000, intervalMs: 50 });
    assert.ok(Date.now() - firstLook >= 300, 'not before waitMs of waiting');
    assert.match(missing.kind === 'missing' ? missing.why : '', /had not reached crm after \d+ s \(dependencies\.waitMs 300\)/);
  });
});
