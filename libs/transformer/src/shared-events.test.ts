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
    const shared = createSharedEvents({ schemas, takers: () => 3 });
    const bytes = order('o-1');
    const a = shared.decode(bytes, 7, 'events.shop.order.created');
    const b = shared.decode(bytes, 7, 'events.shop.order.created');
    assert.equal(a, b);
    assert.equal(shared.validate(a), shared.validate(b));
    assert.equal(validations, 1);
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.data) && Object.isFrozen((a.data.items as object[])[0]));
    const v = shared.validate(a);
    assert.ok(v.kind !== 'invalid' && Object.isFrozen(v.data));
    assert.throws(() => { (a.data as { total: number }).total = 1; }, TypeError);
    assert.notEqual(shared.decode(order('o-2'), 8, 'events.shop.order.created'), a);
    // the third taker has it too; then it is let go (a redelivery decodes again)
    assert.equal(shared.decode(bytes, 7, 'events.shop.order.created'), a);
    assert.notEqual(shared.decode(bytes, 7, 'events.shop.order.created'), a);
  });

  it('keeps a bounded number of events: the oldest is decoded again; an event only one consumer takes is not kept', () => {
    const shared = createSharedEvents({ schemas: demoSchemas, size: 2, takers: (s) => (s === 'one' ? 1 : 2) });
    const first = shared.decode(order('o-1'), 1, 'two');
    shared.decode(order('o-2'), 2, 'two');
    shared.decode(order('o-3'), 3, 'two');
    assert.notEqual(shared.decode(order('o-1'), 1, 'two'), first);
    const alone = shared.decode(order('o-4'), 4, 'one');
    assert.notEqual(shared.decode(order('o-4'), 4, 'one'), alone);
  });
});
