import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { defineSource } from './source.js';
import { unsignedDeliveryId } from './verify.js';

const base = {
  name: 'provider', verification: { scheme: 'standard-webhooks' as const }, secretsEnv: 'PROVIDER_SECRET', schema: z.object({ id: z.string() }),
  deliveryId: () => undefined, eventType: () => 't', entity: () => ({ type: 'x', id: '1' }), version: () => 1, occurredAt: () => undefined,
};
const list = async () => ({ items: [], checkpoint: '', more: false });

describe('defineSource: changes', () => {
  it('a listing with defaults is accepted', () => {
    assert.equal(typeof defineSource({ ...base, changes: { list } }).changes?.list, 'function');
  });

  it('a wrong listing fails at start-up naming each field', () => {
    assert.throws(() => defineSource({ ...base, changes: { list: 'no' as never, everySec: 1, pageSize: 5000, requiredEnv: ['api key'] } }),
      /SOURCE_INVALID.*changes\.list must be a function.*changes\.everySec.*changes\.pageSize.*changes\.requiredEnv/);
  });
});

describe('unsignedDeliveryId: the id a listed item carries, read like the verified webhook', () => {
  it('per scheme, header names case-insensitive', () => {
    const src = (verification: never) => defineSource({ ...base, verification });
    assert.equal(unsignedDeliveryId(src({ scheme: 'standard-webhooks' } as never), { 'Webhook-Id': 'msg_1' }), 'msg_1');
    assert.equal(unsignedDeliveryId(src({ scheme: 'github' } as never), { 'x-github-delivery': 'gh-1' }), 'gh-1');
    assert.equal(unsignedDeliveryId(src({ scheme: 'hmac', header: 'x-sig', algorithm: 'sha256', encoding: 'hex', deliveryIdHeader: 'X-Request-Id' } as never), { 'x-request-id': 'r-1' }), 'r-1');
    assert.equal(unsignedDeliveryId(src({ scheme: 'stripe' } as never), { 'webhook-id': 'ignored' }), undefined);
  });
});

describe('defineSource: expectEverySec', () => {
  it('a declared rhythm of seconds (fractions too) is accepted', () => {
    assert.equal(defineSource({ ...base, expectEverySec: 2 }).expectEverySec, 2);
    assert.equal(defineSource({ ...base, expectEverySec: 1.5 }).expectEverySec, 1.5);
  });
  it('zero, negative, over a week or not a number fails at start-up naming the field', () => {
    for (const bad of [0, -5, 8 * 86_400, '2s' as unknown as number]) {
      assert.throws(() => defineSource({ ...base, expectEverySec: bad }), /source "provider" is invalid: expectEverySec must be a number of seconds from 1 to 604800/);
    }
  });
});
