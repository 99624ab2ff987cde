import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { topology, workerConsumer } from '@bus/streams';
import { AckPolicy } from '@nats-io/jetstream';
import { startNats, type TestNats, uniquePrefix } from '@bus/testkit';
import { testBus } from './test-support.js';
import { deliveryLimitOf, ensureConsumer } from './topology.js';
import type { Bus } from './connect.js';

describe('applyTopology against a real nats-server', () => {
  let nats: TestNats;
  let bus: Bus;
  let prefix: string;
  before(async () => {
    nats = await startNats();
    prefix = uniquePrefix();
    bus = await testBus(nats.url, prefix);
  });
  after(async () => {
    await bus?.close();
    await nats?.stop({ removeStore: true });
  });

  it('creates every stream and bucket, and a second apply changes nothing', async () => {
    const topo = topology({ prefix, eventsDuplicateWindowSec: 60 });
    const streams = await bus.jsm.streams.names().next();
    for (const s of topo.streams) assert.ok(streams.includes(s.name), `${s.name} exists`);
    for (const b of topo.kv) assert.ok(streams.includes(`KV_${b.bucket}`), `bucket ${b.bucket} exists`);

    const again = await bus.applyTopology(topo);
    assert.deepEqual(again.created, []);
    assert.deepEqual(again.updated, []);
    assert.deepEqual(again.drift, []);
    assert.equal(again.unchanged.length, topo.streams.length + topo.kv.length);
    await bus.kv(topo.names.kv.versions); // the KV client can bind to what we created
  });

  it('updates what JetStream allows (max age, duplicate window) in place', async () => {
    const topo = topology({ prefix, eventsDuplicateWindowSec: 30 });
    const report = await bus.applyTopology(topo);
    assert.deepEqual(report.updated, [{ resource: `stream ${topo.names.streams.events}`, fields: ['duplicate_window'] }]);
    assert.deepEqual(report.drift, []);
    const info = await bus.jsm.streams.info(topo.names.streams.events);
    assert.equal(info.config.duplicate_window, 30e9);
  });

  it('reports a change JetStream cannot make (storage, retention) as drift and leaves the stream alone', async () => {
    const topo = topology({ prefix, eventsDuplicateWindowSec: 30 });
    const events = topo.streams[0]!;
    events.storage = 'memory';
    events.retention = 'interest';
    const report = await bus.applyTopology(topo);
    assert.deepEqual(report.drift.map((d) => [d.resource, d.field, d.have, d.want]).sort(), [
      [`stream ${events.name}`, 'retention', 'limits', 'interest'],
      [`stream ${events.name}`, 'storage', 'file', 'memory'],
    ]);
    assert.match(report.drift[0]!.reason, /cannot change/);
    const info = await bus.jsm.streams.info(events.name);
    assert.equal(info.config.storage, 'file');
    assert.equal(info.config.retention, 'limits');
  });

  it('reports an update JetStream refuses (subjects overlapping another stream) as drift', async () => {
    const topo = topology({ prefix, eventsDuplicateWindowSec: 30 });
    const dlq = topo.streams.find((s) => s.name === topo.names.streams.dlq)!;
    dlq.subjects = [...dlq.subjects, topo.names.subjects.all.events];
    const report = await bus.applyTopology(topo);
    const drift = report.drift.filter((d) => d.resource === `stream ${dlq.name}`);
    assert.deepEqual(drift.map((d) => d.field), ['subjects']);
    assert.match(drift[0]!.reason, /refused the update: .*overlap/i);
    assert.deepEqual((await bus.jsm.streams.info(dlq.name)).config.subjects, [topo.names.subjects.all.dlq]);
  });

  it('a consumer gets JetStream max_deliver -1, an existing one is updated to it, and its maxDeliver is left to consume()', async () => {
    const topo = topology({ prefix, eventsDuplicateWindowSec: 30 });
    const stream = topo.names.streams.events;
    // made before consume counted deliveries: JetStream's max_deliver 20
    await bus.jsm.consumers.add(stream, { durable_name: 'old-worker', ack_policy: AckPolicy.Explicit, max_deliver: 20, ack_wait: 30e9, max_ack_pending: 1_000 });
    const def = workerConsumer({ stream, durable: 'old-worker', description: 'a worker made before' });
    const report = await ensureConsumer(bus.jsm, def);
    assert.deepEqual(report.updated.find((u) => u.resource === `consumer ${stream}/old-worker`)?.fields.includes('max_deliver'), true);
    assert.deepEqual(report.drift, []);
    assert.equal((await bus.jsm.consumers.info(stream, 'old-worker')).config.max_deliver, -1);
    assert.equal(deliveryLimitOf(stream, 'old-worker'), def.maxDeliver);

    await ensureConsumer(bus.jsm, workerConsumer({ stream, durable: 'new-worker', description: 'made now', maxDeliver: 5 }));
    assert.equal((await bus.jsm.consumers.info(stream, 'new-worker')).config.max_deliver, -1);
    assert.equal(deliveryLimitOf(stream, 'new-worker'), 5);
    assert.deepEqual((await ensureConsumer(bus.jsm, workerConsumer({ stream, durable: 'new-worker', description: 'made now', maxDeliver: 5 }))).unchanged,
      [`consumer ${stream}/new-worker`]);
    // JetStream refuses -1 beside a backoff list: a bound no message reaches
    await ensureConsumer(bus.jsm, workerConsumer({ stream, durable: 'backoff-worker', description: 'backoff', maxDeliver: 5, backoffSec: [1, 5] }));
    assert.ok(((await bus.jsm.consumers.info(stream, 'backoff-worker')).config.max_deliver ?? 0) > 1e9);
  });
});
