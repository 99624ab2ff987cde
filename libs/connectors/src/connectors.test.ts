import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createEnvelope } from '@bus/envelope';
import { z } from 'zod';
import { defineConnector, SchemaRegistry, subscriptionsFor, toCommands } from './index.js';

const schemas = new SchemaRegistry().add('contact.updated', 1, z.object({
  id: z.string(), version: z.number().int(), email: z.email(), name: z.string().optional(), address: z.object({ city: z.string() }).optional(),
}));
const crm = defineConnector({
  name: 'crm',
  subscribes: [{ type: 'contact.updated', map: (d) => ({ action: 'upsert', target: { type: 'contact', id: String(d.id) }, fields: { email: d.email, name: d.name, leadScore: 0, owner: 'bus' } }) }],
  ownership: { targetOwned: ['leadScore', 'owner'] },
}, schemas);
const event = (data: Record<string, unknown>) =>
  createEnvelope({ type: 'contact.updated', entity: { type: 'contact', id: String(data.id) }, version: 2, data }, { source: 'standard' });

describe('event schemas', () => {
  it('valid, valid with drift (unknown fields named, nested too), invalid (every bad field named)', () => {
    assert.equal(schemas.validate('contact.updated', 1, { id: 'c1', version: 1, email: 'a@b.co' }).kind, 'valid');
    const drift = schemas.validate('contact.updated', 1, { id: 'c1', version: 1, email: 'a@b.co', phone: '1', address: { city: 'X', zip: '9' } });
    assert.deepEqual(drift.kind === 'drift' && drift.unknownFields, ['phone', 'address.zip']);
    const invalid = schemas.validate('contact.updated', 1, { id: 'c1', email: 'nope' });
    assert.deepEqual(invalid.kind === 'invalid' && invalid.issues.map((i) => i.path), ['version', 'email']);
    assert.equal(schemas.validate('contact.updated', 2, {}).kind, 'invalid');
  });
});

describe('defineConnector', () => {
  it('target-owned fields are never in a command; source-owned ones always are', () => {
    const [cmd] = toCommands(crm, crm.subscribes[0]!, { id: 'c1', email: 'a@b.co', name: 'Ada' }, event({ id: 'c1', version: 2, email: 'a@b.co' }));
    assert.deepEqual(cmd!.fields, { email: 'a@b.co', name: 'Ada' });
    assert.deepEqual(cmd!.sourceOwned, ['email', 'name']);
    assert.equal(cmd!.idempotencyKey, cmd!.id);
    assert.match(cmd!.id, /^crm:/);
  });

  it('what a mapping needs first is carried on its command (ids as strings); none → no needs field', () => {
    const c = defineConnector({ name: 'n', subscribes: [{ type: 'order.created', map: (d) => ({ action: 'upsert', target: { type: 'order', id: 'o1' },
      ...(d.contactId ? { needs: [{ type: 'contact', id: d.contactId as string }] } : {}) }) }] });
    const ev = (data: Record<string, unknown>) => createEnvelope({ type: 'order.created', entity: { type: 'order', id: 'o1' }, version: 1, data }, { source: 'shop', id: 'o1' });
    assert.deepEqual(toCommands(c, c.subscribes[0]!, { contactId: 'c-1' }, ev({ contactId: 'c-1' }))[0]!.needs, [{ type: 'contact', id: 'c-1' }]);
    assert.equal('needs' in toCommands(c, c.subscribes[0]!, {}, ev({}))[0]!, false);
  });

  it('matches subscriptions by type and source', () => {
    const c = defineConnector({ name: 'w', subscribes: [{ type: 'order.created', source: 'shop', map: () => null }] });
    assert.equal(subscriptionsFor(c, { type: 'order.created', source: 'shop', schemaVersion: 1 }).length, 1);
    assert.equal(subscriptionsFor(c, { type: 'order.created', source: 'stripe', schemaVersion: 1 }).length, 0);
  });

  it('a broken definition fails at start-up, naming the connector and the field', () => {
    assert.throws(() => defineConnector({ name: 'bad name', subscribes: [] }), /connector "bad name": name must be/);
    assert.throws(() => defineConnector({ name: 'x', subscribes: [] }), /connector "x": subscribes must list/);
    assert.throws(() => defineConnector({ name: 'x', subscribes: [{ type: 'a.b', map: 'nope' as never }] }), /subscribes\[0\]\.map must be a function/);
    assert.throws(() => defineConnector({ name: 'x', subscribes: [{ type: 'order.deleted', map: () => null }] }, schemas), /subscribes\[0\]\.type has no schema order\.deleted@1/);
    assert.throws(() => defineConnector({ name: 'x', subscribes: [{ type: 'a.b', map: () => null }], ownership: { targetOwned: ['f'], sourceOwned: ['f'] } }), /ownership\.f is both/);
    assert.throws(() => defineConnector({ name: 'x', subscribes: [{ type: 'a.b', map: () => null }], delivery: { ordering: 'fifo' as never } }), /delivery\.ordering/);
  });
});
