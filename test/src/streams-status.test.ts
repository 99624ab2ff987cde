import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bus } from '@bus/bus';
import { streamsStatus } from '@bus/cli';
import { startNats, type TestNats, uniquePrefix } from '@bus/testkit';
import { addWorkerConsumer, numbered, testBus } from './support.js';

describe('bus streams status', () => {
  let nats: TestNats;
  let bus: Bus;
  before(async () => {
    nats = await startNats();
    bus = await testBus(nats.url, uniquePrefix());
  });
  after(async () => {
    await bus.close();
    await nats.stop({ removeStore: true });
  });

  it('shows every stream, and per consumer its pending count and the age of its oldest pending message', async () => {
    await addWorkerConsumer(bus, 'lagging', 30);
    for (let n = 0; n < 3; n++) await bus.publishEnvelope(bus.names.subjects.event('test', 'item.created'), numbered(n));
    const status = await streamsStatus(bus);
    assert.deepEqual(status.map((s) => s.stream), [bus.names.streams.events, bus.names.streams.deliveries, bus.names.streams.dlq, bus.names.streams.audit, bus.names.streams.dedup]);
    const events = status[0]!;
    assert.equal(events.messages, 3);
    const lagging = events.consumers.find((c) => c.consumer === 'lagging');
    assert.equal(lagging?.pending, 3);
    assert.ok(lagging?.oldestPendingAgeMs !== undefined && lagging.oldestPendingAgeMs >= 0 && lagging.oldestPendingAgeMs < 60_000);
  });
});
