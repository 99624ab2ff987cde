import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { Webhook } from 'standardwebhooks';
import { events, ingestFor, WH_SECRET } from './test-support.js';

function delivery(id: string) {
  const payload = JSON.stringify({ type: 'contact.updated', data: { id: 'c1', version: 1, email: 'a@example.com' } });
  return () => {
    const at = new Date();
    return { payload, headers: { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(WH_SECRET).sign(id, at, payload) } };
  };
}

describe('ingest: outages and duplicates past the window', () => {
  let nats: TestNats;
  let t: Awaited<ReturnType<typeof ingestFor>>;
  before(async () => {
    nats = await startNats();
    t = await ingestFor(nats.url, uniquePrefix(), undefined, 1); // a 1 s dedup window, to test past it
  });
  after(async () => {
    await t.app.close();
    await t.bus.close();
    await nats.stop({ removeStore: true });
  });
  const post = (d: { payload: string; headers: Record<string, string> }) =>
    t.app.inject({ method: 'POST', url: '/webhooks/standard', payload: d.payload, headers: d.headers });

  it('a retry that arrives after the JetStream dedup window is still a duplicate (dedup bucket)', async () => {
    const d = delivery(`late_${Date.now()}`);
    assert.equal((await post(d())).statusCode, 202);
    // wait until JetStream itself has forgotten the id: a probe id published now and again must store twice
    const probe = t.bus.names.subjects.event('probe', 'x');
    await waitFor(async () => {
      const id = `probe-${Date.now()}`;
      await t.bus.publish(probe, new Uint8Array([1]), { msgId: id });
      return (await t.bus.jsm.streams.info(t.bus.names.streams.events)).config.duplicate_window === 1e9;
    }, { what: 'the 1 s window in force' });
    const firstProbe = await t.bus.publish(probe, new Uint8Array([1]), { msgId: 'probe-window' });
    assert.equal(firstProbe.duplicate, false);
    await waitFor(async () => !(await t.bus.publish(probe, new Uint8Array([1]), { msgId: 'probe-window' })).duplicate, { what: 'the stream window to pass', timeoutMs: 10_000, intervalMs: 200 });
    const late = await post(d());
    assert.equal(late.statusCode, 200);
    assert.equal(late.json().status, 'duplicate');
    assert.equal((await events(t.bus, 'standard')).filter((e) => e.value.id.startsWith('standard:late_')).length, 1);
  });

  it('nats-server stopped: 503 with Retry-After and nothing stored; after restart the retry is stored exactly once', async (tc) => {
    if (!nats.canRestart) return tc.skip('NATS_URL is set: the server cannot be stopped');
    const d = delivery(`outage_${Date.now()}`);
    await nats.stop();
    try {
      const res = await post(d());
      assert.equal(res.statusCode, 503, res.body);
      assert.equal(res.headers['retry-after'], '2');
      assert.match(String(res.headers['content-type']), /problem\+json/);
    } finally {
      await nats.start();
    }
    const retried = await waitFor(async () => {
      const r = await post(d());
      return r.statusCode === 202 ? r : undefined;
    }, { what: 'the provider retry to be stored', timeoutMs: 20_000, intervalMs: 250 });
    assert.equal(retried.json().status, 'stored');
    const again = await post(d());
    assert.equal(again.statusCode, 200);
    assert.equal((await events(t.bus, 'standard')).filter((e) => e.value.id.startsWith('standard:outage_')).length, 1);
  });
});
