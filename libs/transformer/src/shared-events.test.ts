import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { demoSchemas } from '@bus/catalog';
import { createEnvelope, encodeEnvelope } from '@bus/envelope';
import { createSharedEvents } from './shared-events.js';

const order = (id: string) => encodeEnvelope(createEnvelope({ type: 'order.created', entity: { type: 'order', id }, version: 1,
  data: { total: 10, items: [{ sku: 'S', quantity: 1 }] } }, { source: 'shop' }));

describe('shared events: one decode and one validation per event for all connectors', () => {
  it('the same stream sequence gives the same read-only envelope and validation; another sequence its own', () => {
    let validations = 0;
    const schemas = { validate: (...a: Parameters<typeof demoSchemas.validate>) => {
      validations++;
      return demoSchemas.validate(...a);
    } } as typeof demoSchemas;
    const shared = createSharedEvents({ schemas });
    const bytes = order('o-1');
    const a = shared.decode(bytes, 7);
    const b = shared.decode(bytes, 7);
    assert.equal(a, b);
    assert.equal(shared.validate(a), shared.validate(b));
    assert.equal(validations, 1);
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.data) && Object.isFrozen((a.data.items as object[])[0]));
    const v = shared.validate(a);
    assert.ok(v.kind !== 'invalid' && Object.isFrozen(v.data));
    assert.throws(() => { (a.data as { total: number }).total = 1; }, TypeError);
    assert.notEqual(shared.decode(order('o-2'), 8), a);
  });

  it('keeps a bounded number of events: the oldest is decoded again', () => {
    const shared = createSharedEvents({ schemas: demoSchemas, size: 2 });
    const first = shared.decode(order('o-1'), 1);
    shared.decode(order('o-2'), 2);
    shared.decode(order('o-3'), 3);
    assert.notEqual(shared.decode(order('o-1'), 1), first);
  });
});
