import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createEnvelope, decodeEnvelope } from '@bus/envelope';
import { startNats, type TestNats, uniquePrefix } from '@bus/testkit';
import { PublishError } from './publish.js';
import { testBus } from './test-support.js';
import type { Bus } from './connect.js';

describe('publish against a real nats-server', () => {
  let nats: TestNats;
  let bus: Bus;
  before(async () => {
    nats = await startNats();
    bus = await testBus(nats.url, uniquePrefix());
  });
  after(async () => {
    await bus?.close();
    await nats?.stop({ removeStore: true });
  });

  const event = () =>
    createEnvelope({ type: 'order.created', entity: { type: 'order', id: 'o-1' }, version: 1, data: { total: 10 } }, { source: 'shop' });

  it('the same id published twice is stored once; the second is reported as a duplicate', async () => {
    const env = event();
    const subject = bus.names.subjects.event('shop', 'order.created');
    const first = await bus.publishEnvelope(subject, env);
    const second = await bus.publishEnvelope(subject, env);
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(second.seq, first.seq);
    const info = await bus.jsm.streams.info(bus.names.streams.events);
    assert.equal(info.state.messages, 1);
    const stored = await bus.jsm.streams.getMessage(bus.names.streams.events, { seq: first.seq });
    assert.deepEqual(decodeEnvelope(stored!.data), env);
    assert.equal(stored!.header.get('Nats-Msg-Id'), env.id);
    assert.equal(stored!.header.get('Bus-Correlation-Id'), env.correlationId);
  });

  it('publishes started in one turn, each from its own microtask, leave in one socket write', async () => {
    // a spy on the client's socket writes (internal API: the only place a write is visible)
    const transport = (bus.nc as unknown as { protocol: { transport: { send(b: Uint8Array): void } } }).protocol.transport;
    const send = transport.send.bind(transport);
    let writes = 0;
    transport.send = (b) => {
      writes++;
      send(b);
    };
    try {
      const subject = bus.names.subjects.event('shop', 'order.created');
      // as consume's handlers do: each publish comes after a different number of microtask hops
      const hops = async (n: number) => {
        for (let i = 0; i < n; i++) await Promise.resolve();
      };
      const acks = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
        await hops(i);
        return bus.publishEnvelope(subject, event());
      }));
      assert.equal(new Set(acks.map((a) => a.seq)).size, 20);
      assert.equal(writes, 1);
    } finally {
      transport.send = send;
    }
  });

  it('a subject no stream takes is a classified error, not a hang', async () => {
    await assert.rejects(bus.publish(`nostream${Date.now()}.x`, new Uint8Array([1]), { msgId: 'm1', timeoutMs: 500 }), (err) => {
      assert.ok(err instanceof PublishError);
      assert.equal(err.failureClass, 'transient');
      assert.match(err.code, /PUBLISH_(NO_STREAM_RESPONDED|TIMEOUT)/);
      return true;
    });
  });

  it('a publish without a msgId is refused before it leaves', async () => {
    await assert.rejects(bus.publish(bus.names.subjects.event('s', 't'), new Uint8Array(), { msgId: '' }), /PUBLISH_NO_MSG_ID/);
  });

  it('JetStream down: the publish fails as transient within its timeout', async (t) => {
    if (!nats.canRestart) return t.skip('NATS_URL points at a server this test cannot stop');
    await nats.stop();
    try {
      const started = Date.now();
      await assert.rejects(
        bus.publish(bus.names.subjects.event('shop', 'x'), new Uint8Array([1]), { msgId: 'down-1', timeoutMs: 500 }),
        (err) => err instanceof PublishError && err.failureClass === 'transient',
      );
      assert.ok(Date.now() - started < 5_000);
    } finally {
      await nats.start();
    }
  });
});
