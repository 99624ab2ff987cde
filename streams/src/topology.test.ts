import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { names, projectionBucket, topology } from './index.js';

describe('streams as code', () => {
  it('defines the streams of docs/architecture.md with one subject root each', () => {
    const t = topology();
    assert.deepEqual(t.streams.map((s) => [s.name, s.subjects]), [
      ['EVENTS', ['events.>']],
      ['DELIVERIES', ['deliveries.>']],
      ['DLQ', ['dlq.>']],
      ['AUDIT', ['audit.>']],
      ['DEDUP', ['dedup.>']],
    ]);
    assert.ok(!t.kv.some((b) => b.bucket === 'bus_dedup'), 'no key per event: dedup is batched into DEDUP (issue #16)');
    assert.equal(t.streams.find((s) => s.name === 'DELIVERIES')?.retention, 'workqueue');
  });

  it('a prefix isolates every stream, subject and bucket', () => {
    const t = topology({ prefix: 'tab12' });
    for (const s of t.streams) assert.match(s.name, /^TAB12_/);
    for (const s of t.streams) for (const subj of s.subjects) assert.match(subj, /^tab12\./);
    for (const b of t.kv) assert.match(b.bucket, /^tab12_/);
    assert.equal(t.names.subjects.event('stripe', 'customer.created'), 'tab12.events.stripe.customer.created');
  });

  it('replicas come from options and are validated', () => {
    assert.ok(topology({ replicas: 3 }).streams.every((s) => s.replicas === 3));
    assert.throws(() => topology({ replicas: 0 }), /BUS_REPLICAS/);
  });

  it('rejects a prefix that cannot be a stream name', () => {
    assert.throws(() => names('a.b'), /BUS_PREFIX/);
  });

  it('projection: one control bucket in the topology; generation buckets named per generation, made on demand', () => {
    const t = topology({ prefix: 'tab12', replicas: 3 });
    assert.equal(t.names.kv.projection, 'tab12_bus_projection');
    assert.ok(t.kv.some((b) => b.bucket === 'tab12_bus_projection'));
    assert.ok(!t.kv.some((b) => b.bucket.startsWith('tab12_bus_projection_')), 'generations are not applied with the topology');
    const g = projectionBucket({ prefix: 'tab12', replicas: 3 }, 4);
    assert.deepEqual([g.bucket, g.history, g.ttlSec, g.replicas], ['tab12_bus_projection_4', 1, 0, 3]);
    assert.equal(names().projectionBucket(1), 'bus_projection_1');
    assert.throws(() => projectionBucket({}, 0), /whole number from 1/);
  });
});
