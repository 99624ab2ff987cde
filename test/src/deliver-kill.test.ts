import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Bus } from '@bus/bus';
import { commandHeaders, type DeliveryCommand } from '@bus/connectors';
import { encode } from '@bus/envelope';
import { startNats, startProcess, startTarget, type TestNats, type TestTarget, uniquePrefix, waitFor } from '@bus/testkit';
import { testBus } from './support.js';

const fixture = fileURLToPath(new URL('./fixtures/deliverer.js', import.meta.url));

describe('deliver: a process killed mid-delivery', () => {
  let nats: TestNats;
  let bus: Bus;
  let target: TestTarget;
  let prefix: string;
  before(async () => {
    nats = await startNats();
    prefix = uniquePrefix();
    bus = await testBus(nats.url, prefix);
    target = await startTarget();
  });
  after(async () => {
    await target.close();
    await bus.close();
    await nats.stop({ removeStore: true });
  });

  const command = (id: string): DeliveryCommand => ({
    id: `crm:evt-${id}`, connector: 'crm', action: 'upsert', target: { type: 'contact', id }, fields: { email: `${id}@example.com` }, sourceOwned: ['email'],
    entity: { type: 'contact', id }, version: 1, event: { id: `evt-${id}`, type: 'contact.updated', source: 'test', occurredAt: new Date().toISOString(), schemaVersion: 1 },
    correlationId: `corr-${id}`, idempotencyKey: `crm:evt-${id}`,
  });
  const settled = () => waitFor(async () => {
    const info = await bus.jsm.consumers.info(bus.names.streams.deliveries, 'deliver-crm');
    return info.num_pending === 0 && info.num_ack_pending === 0;
  }, { what: 'the command handled by the second process', timeoutMs: 30_000, intervalMs: 200 });

  it('SIGKILL after the target applied the call, at a target that ignores idempotency keys: the next process looks it up and sends nothing', async () => {
    const start = () => startProcess({ command: process.execPath, args: [fixture], env: { NATS_URL: nats.url, BUS_PREFIX: prefix, TARGET_URL: target.url, LOOKUP: '1' } });
    target.script({ applyThenHang: true });
    const first = start();
    await first.waitForOutput(/delivering/, 'the first deliver process');
    const cmd = command('k2');
    await bus.publish(bus.names.subjects.delivery('crm', 'contact', cmd.entity), encode(cmd), { msgId: cmd.id, headers: commandHeaders(cmd) });
    await waitFor(() => target.calls.some((c) => c.idempotencyKey === cmd.idempotencyKey), { what: 'the first call in flight' });
    first.kill('SIGKILL');
    await first.exited;
    const second = start();
    try {
      await settled();
      const calls = target.calls.filter((c) => c.path === '/contacts/k2');
      assert.deepEqual(calls.map((c) => c.method), ['PUT', 'GET'], 'one PUT, then a lookup that finds it: the attempt of the dead process is in doubt, not forgotten');
      assert.equal(target.records.get('/contacts/k2')?.version, 1);
    } finally {
      second.kill('SIGKILL');
    }
  });

  it('SIGKILL while the target holds the call: another process delivers it, with the same key, once', async () => {
    const start = () => startProcess({ command: process.execPath, args: [fixture], env: { NATS_URL: nats.url, BUS_PREFIX: prefix, TARGET_URL: target.url } });
    target.script({ applyThenHang: true }); // the first call is applied, and its answer never comes
    const first = start();
    await first.waitForOutput(/delivering/, 'the first deliver process');
    const cmd = command('k1');
    await bus.publish(bus.names.subjects.delivery('crm', 'contact', cmd.entity), encode(cmd), { msgId: cmd.id, headers: commandHeaders(cmd) });
    const calls = () => target.calls.filter((c) => c.path === '/contacts/k1');
    await waitFor(() => calls().length === 1, { what: 'the first call in flight' });
    first.kill('SIGKILL');
    await first.exited;
    const second = start();
    try {
      await settled();
      assert.deepEqual(calls().map((c) => c.idempotencyKey), ['crm:evt-k1', 'crm:evt-k1'], 'no lookup: sent again with the same key');
      assert.equal([...target.outcomes.keys()].filter((k) => k === cmd.idempotencyKey).length, 1, 'one business outcome');
    } finally {
      second.kill('SIGKILL');
    }
  });
});
