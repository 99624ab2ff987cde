import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sign as githubSign } from '@octokit/webhooks-methods';
import { decodeAuditRecords, readStream } from '@bus/bus';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { Webhook } from 'standardwebhooks';
import Stripe from 'stripe';
import { env, events, ingestFor, quarantined, standardSource, WH_SECRET, WH_SECRET_OLD } from './test-support.js';

const stripe = new Stripe('sk_test_not_a_real_key');
let n = 0;
function standardDelivery(data: Record<string, unknown> = {}, opts: { secret?: string; at?: Date; id?: string } = {}) {
  const id = opts.id ?? `msg_${++n}_${Date.now()}`;
  const payload = JSON.stringify({ type: 'contact.updated', data: { id: `c${n}`, version: 1, email: 'a@example.com', ...data } });
  const at = opts.at ?? new Date();
  const headers = {
    'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(opts.secret ?? WH_SECRET).sign(id, at, payload),
  };
  return { id, payload, headers };
}

describe('ingest: POST /webhooks/:source', () => {
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
  const post = (source: string, payload: string, headers: Record<string, string>) =>
    t.app.inject({ method: 'POST', url: `/webhooks/${source}`, payload, headers });

  it('Standard Webhooks signed by the standardwebhooks library → 202, stored once with the delivery id as Nats-Msg-Id', async () => {
    const d = standardDelivery();
    const res = await post('standard', d.payload, d.headers);
    assert.equal(res.statusCode, 202, res.body);
    const body = res.json();
    assert.equal(body.status, 'stored');
    assert.equal(res.headers['x-correlation-id'], body.correlationId);
    const stored = (await events(t.bus, 'standard')).filter((e) => e.msgId === `standard:${d.id}`);
    assert.equal(stored.length, 1);
    assert.equal(stored[0]!.value.correlationId, body.correlationId);
    assert.equal(stored[0]!.value.entity.type, 'contact');
  });

  it('Stripe signed by stripe.webhooks.generateTestHeaderString → 202; the event id is the delivery id', async () => {
    const payload = JSON.stringify({ id: `evt_${Date.now()}`, type: 'customer.updated', created: 1_764_000_000, data: { object: { id: 'cus_9' } } });
    const header = stripe.webhooks.generateTestHeaderString({ payload, secret: env.STRIPE_WEBHOOK_SECRET });
    const res = await post('stripe', payload, { 'content-type': 'application/json', 'stripe-signature': header });
    assert.equal(res.statusCode, 202, res.body);
    assert.match(res.json().eventId, /^stripe:evt_/);
  });

  it('GitHub signed by @octokit/webhooks-methods → 202, X-GitHub-Delivery as the id', async () => {
    const payload = JSON.stringify({ action: 'opened', repository: { id: 42, full_name: 'o/r' } });
    const res = await post('github', payload, {
      'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': `gh-${Date.now()}`,
      'x-hub-signature-256': await githubSign(env.GITHUB_WEBHOOK_SECRET, payload),
    });
    assert.equal(res.statusCode, 202, res.body);
  });

  it('a rotated secret list accepts the old secret and the new one', async () => {
    for (const secret of [WH_SECRET_OLD, WH_SECRET]) {
      const d = standardDelivery({}, { secret });
      assert.equal((await post('standard', d.payload, d.headers)).statusCode, 202);
    }
  });

  it('tampered body, wrong secret, missing header, old timestamp → 401 problem+json, nothing stored, audited without payload', async () => {
    const before = (await events(t.bus)).length;
    const good = standardDelivery({ email: 'secret-person@example.com' });
    const wrong = standardDelivery({}, { secret: `whsec_${Buffer.from('not-ours').toString('base64')}` });
    const old = standardDelivery({}, { at: new Date(Date.now() - 10 * 60_000) });
    const { 'webhook-signature': _s, ...missing } = good.headers;
    const cases: [string, Record<string, string>, string][] = [
      [good.payload.replace('secret-person', 'tampered-person'), good.headers, 'signature_mismatch'],
      [wrong.payload, wrong.headers, 'signature_mismatch'],
      [good.payload, missing, 'missing_header'],
      [old.payload, old.headers, 'timestamp_outside_tolerance'],
    ];
    for (const [payload, headers, reason] of cases) {
      const res = await post('standard', payload, headers);
      assert.equal(res.statusCode, 401);
      assert.match(String(res.headers['content-type']), /application\/problem\+json/);
      assert.equal(res.json().reason, reason);
    }
    assert.equal((await events(t.bus)).length, before);
    const rejected = await waitFor(async () => {
      const got: Uint8Array[] = [];
      // a message holds one record or a flush's list of them (a correlation's records coalesced)
      for await (const m of readStream(t.bus.jsm, t.bus.names.streams.audit)) {
        const records = decodeAuditRecords(m.data).filter((r) => r.stage === 'ingest' && r.outcome === 'rejected');
        for (const _ of records) got.push(m.data);
      }
      return got.length >= 4 ? got : undefined;
    }, { what: 'four rejected audit records' });
    for (const data of rejected) assert.ok(!Buffer.from(data).toString('latin1').includes('secret-person'), 'no payload in the audit');
  });

  it('the same delivery twice stores one event; the second answer is 200 duplicate', async () => {
    const d = standardDelivery();
    assert.equal((await post('standard', d.payload, d.headers)).statusCode, 202);
    const again = await post('standard', d.payload, d.headers);
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().status, 'duplicate');
    assert.equal((await events(t.bus, 'standard')).filter((e) => e.msgId === `standard:${d.id}`).length, 1);
  });

  it('an authentic payload failing its schema is quarantined in the DLQ with its issues (202), and replaying it after the schema is relaxed stores it', async () => {
    const d = standardDelivery({ email: 'not-an-email' });
    const res = await post('standard', d.payload, d.headers);
    assert.equal(res.statusCode, 202);
    assert.equal(res.json().status, 'quarantined');
    assert.deepEqual(res.json().issues.map((i: { path: string }) => i.path), ['data.email']);
    const [entry] = (await quarantined(t.bus)).filter((q) => q.value.original.msgId === d.id);
    assert.ok(entry, 'in the DLQ');
    assert.equal(entry.value.failureClass, 'business');
    assert.equal(entry.value.stage, 'ingest');
    assert.equal(Buffer.from(entry.value.original.data).toString(), d.payload);
    assert.equal((await events(t.bus, 'standard')).filter((e) => e.msgId === `standard:${d.id}`).length, 0);

    const relaxed = await ingestFor(nats.url, t.bus.names.prefix, [standardSource(false)]);
    try {
      const replayed = await relaxed.intake.replayQuarantined(entry.value);
      assert.equal(replayed.status, 202, JSON.stringify(replayed.body));
      const stored = (await events(t.bus, 'standard')).filter((e) => e.msgId === `standard:${d.id}`);
      assert.equal(stored.length, 1);
      assert.equal(stored[0]!.value.correlationId, entry.value.correlationId, 'the replay keeps the correlation id');
    } finally {
      await relaxed.bus.close();
    }
  });

  it('oversized → 413, not JSON → 400, unknown source → 404, and the service keeps serving', async () => {
    const big = standardDelivery({ pad: 'x'.repeat(5000) });
    const tooBig = await post('standard', big.payload, big.headers);
    assert.equal(tooBig.statusCode, 413);
    assert.match(String(tooBig.headers['content-type']), /problem\+json/);
    const id = `msg_raw_${Date.now()}`;
    const at = new Date();
    const junk = await post('standard', '{not json', {
      'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(WH_SECRET).sign(id, at, '{not json'),
    });
    assert.equal(junk.statusCode, 400);
    const unknown = await post('nosuch', '{}', {});
    assert.equal(unknown.statusCode, 404);
    for (const name of ['standard', 'stripe', 'github']) assert.ok(!unknown.body.includes(name), `the 404 names no configured source: ${unknown.body}`);
    const ok = standardDelivery();
    assert.equal((await post('standard', ok.payload, ok.headers)).statusCode, 202);
  });

  it('the correlation id comes from X-Correlation-Id or traceparent, and is on the response and the envelope', async () => {
    const d1 = standardDelivery();
    const r1 = await post('standard', d1.payload, { ...d1.headers, 'x-correlation-id': 'order-flow-77' });
    assert.equal(r1.headers['x-correlation-id'], 'order-flow-77');
    const d2 = standardDelivery();
    const r2 = await post('standard', d2.payload, { ...d2.headers, traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
    assert.equal(r2.headers['x-correlation-id'], '4bf92f3577b34da6a3ce929d0e0e4736');
    const stored = (await events(t.bus, 'standard')).find((e) => e.msgId === `standard:${d2.id}`);
    assert.equal(stored?.value.correlationId, '4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it('metrics count received, stored, duplicates, rejections by reason and quarantines', async () => {
    const text = await t.metrics.registry.metrics();
    assert.match(text, /ingest_stored_total\{source="standard",service="ingest-test"\} \d+/);
    assert.match(text, /ingest_rejected_total\{source="standard",reason="signature_mismatch",service="ingest-test"\} 2/);
    assert.match(text, /ingest_quarantined_total\{source="standard",service="ingest-test"\} 1/);
    assert.match(text, /ingest_duplicate_total\{source="standard",where="(stream|dedup)",service="ingest-test"\} \d/);
  });
});
