import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNats, type TestNats, uniquePrefix } from '@bus/testkit';
import { events, ingestFor } from './test-support.js';

describe('ingest: POST /events (publish API)', () => {
  let nats: TestNats;
  let t: Awaited<ReturnType<typeof ingestFor>>;
  before(async () => {
    nats = await startNats();
    t = await ingestFor(nats.url, uniquePrefix());
  });
  after(async () => {
    await t.app.close();
    await t.bus.close();
    await nats.stop({ removeStore: true });
  });
  const post = (body: unknown, token = 'api-token') =>
    t.app.inject({ method: 'POST', url: '/events', payload: JSON.stringify(body), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
  const order = (id: string, version: number) => ({ id: `shop-${id}-v${version}`, type: 'order.created', entity: { type: 'order', id }, version, data: { total: 10 } });

  it('a batch is stored with one result per event, carrying the versions the service assigned', async () => {
    const res = await post({ source: 'shop', events: [order('o1', 1), order('o1', 2)] });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().results.map((r: { status: string }) => r.status), ['stored', 'stored']);
    const stored = await events(t.bus, 'shop');
    assert.deepEqual(stored.map((e) => e.value.version).sort(), [1, 2]);
  });

  it('a batch with one invalid event: 207, the bad event names its fields, the others are stored; a resend is duplicate', async () => {
    const bad = { ...order('o2', 1), id: 'shop-bad', version: 0 };
    const res = await post({ source: 'shop', events: [order('o2', 1), bad] });
    assert.equal(res.statusCode, 207);
    const [ok, invalid] = res.json().results;
    assert.equal(ok.status, 'stored');
    assert.equal(invalid.status, 'invalid');
    assert.deepEqual(invalid.issues.map((i: { path: string }) => i.path), ['version']);
    const again = await post({ source: 'shop', events: [order('o2', 1)] });
    assert.equal(again.json().results[0].status, 'duplicate');
  });

  it('a wrong or missing bearer token → 401, nothing stored; the old token of a rotation still works', async () => {
    const before = (await events(t.bus)).length;
    assert.equal((await post({ source: 'shop', events: [order('o3', 1)] }, 'nope')).statusCode, 401);
    assert.equal((await t.app.inject({ method: 'POST', url: '/events', payload: '{}' })).statusCode, 401);
    assert.equal((await events(t.bus)).length, before);
    assert.equal((await post({ source: 'shop', events: [order('o3', 1)] }, 'old-token')).statusCode, 200);
  });

  it('a token bound to shop gets 403 publishing as standard (a webhook source), nothing stored', async () => {
    const before = (await events(t.bus)).length;
    const res = await post({ source: 'standard', events: [order('o4', 1)] });
    assert.equal(res.statusCode, 403);
    assert.equal(res.json().type.endsWith('source-not-allowed'), true, res.body);
    assert.match(res.json().detail, /may publish as shop, billing; not as "standard"/);
    assert.equal((await post({ source: 'billing', events: [order('o4', 1)] }, 'old-token')).statusCode, 200, 'the rotation\'s old token has the same sources');
    assert.equal((await events(t.bus, 'standard')).length, 0);
    assert.equal((await events(t.bus)).length, before + 1);
  });

  it('a token without a source list: any service source, never a webhook source', async () => {
    assert.equal((await post({ source: 'inventory', events: [order('o5', 1)] }, 'service-token')).statusCode, 200);
    for (const webhook of ['standard', 'stripe', 'github']) {
      assert.equal((await post({ source: webhook, events: [order('o5', 2)] }, 'service-token')).statusCode, 403, webhook);
    }
    assert.equal((await events(t.bus, 'standard')).length, 0);
  });

  it('not a batch → 400 saying what a batch is', async () => {
    const res = await post({ events: [] });
    assert.equal(res.statusCode, 400);
    assert.match(res.json().detail, /Expected \{"source"/);
  });
});
