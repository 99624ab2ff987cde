import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSandbox } from './sandbox.js';

describe('the sandbox\'s fake Stripe (customers and events)', () => {
  const app = createSandbox({ crmApiKey: 'k', stripe: { apiKey: 'sk_test_x', seed: true } });
  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: Record<string, unknown>, key = 'sk_test_x') =>
    app.inject({ method, url: `/stripe${url}`, headers: { authorization: `Bearer ${key}` }, ...(payload ? { payload } : {}) });

  it('wants its API key, as Stripe does', async () => {
    const r = await call('GET', '/v1/customers/cus_demo', undefined, 'sk_wrong');
    assert.equal(r.statusCode, 401);
    assert.match(r.json().error.message, /Invalid API Key/);
  });

  it('a customer is read back as it is now; deleted answers deleted: true; unknown 404 resource_missing', async () => {
    assert.equal((await call('GET', '/v1/customers/cus_demo')).json().email, 'grace@example.com');
    await call('POST', '/v1/customers', { id: 'cus_a', email: 'a@example.com' });
    await call('POST', '/v1/customers/cus_a', { email: 'a2@example.com' });
    assert.equal((await call('GET', '/v1/customers/cus_a')).json().email, 'a2@example.com');
    await call('DELETE', '/v1/customers/cus_a');
    assert.deepEqual((await call('GET', '/v1/customers/cus_a')).json(), { id: 'cus_a', object: 'customer', deleted: true });
    const missing = await call('GET', '/v1/customers/cus_nobody');
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().error.code, 'resource_missing');
  });

  it('every change is an event; /v1/events lists newest first and pages like Stripe (starting_after back, ending_before forward)', async () => {
    const all = (await call('GET', '/v1/events?limit=100')).json() as { data: { id: string; type: string }[]; has_more: boolean };
    assert.deepEqual(all.data.map((e) => e.type), ['customer.deleted', 'customer.updated', 'customer.created', 'customer.created']);
    assert.equal(all.has_more, false);
    const first = (await call('GET', '/v1/events?limit=2')).json() as { data: { id: string }[]; has_more: boolean };
    assert.deepEqual(first.data.map((e) => e.id), all.data.slice(0, 2).map((e) => e.id));
    assert.equal(first.has_more, true);
    const older = (await call('GET', `/v1/events?limit=2&starting_after=${first.data[1]!.id}`)).json() as { data: { id: string }[] };
    assert.deepEqual(older.data.map((e) => e.id), all.data.slice(2, 4).map((e) => e.id));
    // forward from the oldest: the `limit` events right after it, newest of them first
    const newer = (await call('GET', `/v1/events?limit=2&ending_before=${all.data[3]!.id}`)).json() as { data: { id: string }[]; has_more: boolean };
    assert.deepEqual(newer.data.map((e) => e.id), [all.data[1]!.id, all.data[2]!.id]);
    assert.equal(newer.has_more, true);
  });
});
