import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Bus } from '@bus/bus';
import type { DeliveryCommand } from '@bus/connectors';
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

  it('SIGKILL while the target holds the call: another process delivers it, with the same key, once', async () => {
    const start = () => startProcess({ command: process.execPath, args: [fixture], env: { NATS_URL: nats.url, BUS_PREFIX: prefix, TARGET_URL: target.url } });
    target.script({ applyThenHang: true }); // the first call is applied, and its answer never comes
    const first = start();
    await first.waitForOutput(/delivering/, 'the first deliver process');
    const cmd: DeliveryCommand = {
      id: 'crm:evt-k1', connector: 'crm', action: 'upsert', target: { type: 'contact', id: 'k1' }, fields: { email: 'k@example.com' }, sourceOwned: ['email'],
      entity: { type: 'contact', id: 'k1' }, version: 1, event: { id: 'evt-k1', type: 'contact.updated', source: 'test', occurredAt: new Date().toISOString(), schemaVersion: 1 },
      correlationId: 'corr-k1', idempotencyKey: 'crm:evt-k1',
    };
    await bus.publish(bus.names.subjects.delivery('crm', 'contact'), encode(cmd), { msgId: cmd.id });
    await waitFor(() => target.calls.length === 1, { what: 'the first call in flight' });
    first.kill('SIGKILL');
    await first.exited;
    const second = start();
    try {
      await waitFor(async () => {
        const info = await bus.jsm.consumers.info(bus.names.streams.deliveries, 'deliver-crm');
        return info.num_pending === 0 && info.num_ack_pending === 0 && target.calls.length >= 2;
      }, { what: 'the command delivered by the second process', timeoutMs: 30_000, intervalMs: 200 });
      assert.deepEqual(target.calls.map((c) => c.idempotencyKey), ['crm:evt-k1', 'crm:evt-k1']);
      assert.equal(target.outcomes.size, 1, 'one business outcome');
    } finally {
      second.kill('SIGKILL');
    }
  });
});
