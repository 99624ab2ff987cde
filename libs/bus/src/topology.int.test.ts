import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { topology } from '@bus/streams';
import { startNats, type TestNats, uniquePrefix } from '@bus/testkit';
import { testBus } from './test-support.js';
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
});
