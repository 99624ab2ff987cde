import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { createVerifier, signStandardWebhook } from './index.js';
import { assertRefused, eventBody as body, NOW_MS, NOW_SEC, nowMs, outcome, standardHeaders, whsec } from './provider-signers.js';

const oldSecret = whsec('old-secret');
const newSecret = whsec('new-secret');
const verifier = createVerifier({ scheme: 'standard-webhooks', secrets: [oldSecret, newSecret], nowMs });

describe('standard-webhooks: verify', () => {
  it('a signature from the standardwebhooks library → accepted, webhook-id as delivery id, timestamp in seconds', () => {
    const r = verifier.verify({ headers: standardHeaders(newSecret, body), body });
    assert.deepEqual(r, { ok: true, deliveryId: 'msg_1', timestamp: NOW_SEC, secretIndex: 1 });
  });

  it('rotation (old + new): either secret verifies, and secretIndex says which', () => {
    const byOld = verifier.verify({ headers: standardHeaders(oldSecret, body), body });
    const byNew = verifier.verify({ headers: standardHeaders(newSecret, body), body });
    assert.ok(byOld.ok && byOld.secretIndex === 0, 'old secret');
    assert.ok(byNew.ok && byNew.secretIndex === 1, 'new secret');
  });

  it('several signatures in one header, only the second matching → accepted', () => {
    const wrong = standardHeaders(whsec('someone-else'), body)['webhook-signature'];
    const right = standardHeaders(newSecret, body)['webhook-signature'];
    const headers = { ...standardHeaders(newSecret, body), 'webhook-signature': `${wrong} ${right}` };
    const r = verifier.verify({ headers, body });
    assert.ok(r.ok && r.secretIndex === 1);
  });

  it('a repeated header as Node joins it ("a, b") and an unknown version (v1a) → still accepted', () => {
    const right = standardHeaders(newSecret, body)['webhook-signature'];
    const headers = { ...standardHeaders(newSecret, body), 'webhook-signature': `v1a,c29tZXRoaW5n, ${right}` };
    assert.equal(outcome(verifier.verify({ headers, body })), 'ok');
  });

  it('a tampered body → signature_mismatch', () => {
    const tampered = Buffer.from(body.toString().replace('cus_1', 'cus_2'));
    const h = standardHeaders(newSecret, body);
    assertRefused(verifier.verify({ headers: h, body: tampered }), 'signature_mismatch', h['webhook-signature']!, newSecret);
  });

  it('a wrong secret → signature_mismatch, quoting neither secret nor signature', () => {
    const h = standardHeaders(whsec('attacker'), body);
    assertRefused(verifier.verify({ headers: h, body }), 'signature_mismatch', h['webhook-signature']!.slice(3), oldSecret, newSecret);
  });

  it('each missing header → missing_header naming it', () => {
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      const headers: Record<string, string> = standardHeaders(newSecret, body);
      delete headers[name];
      const r = verifier.verify({ headers, body });
      assertRefused(r, 'missing_header');
      assert.ok(!r.ok && r.detail.includes(name));
    }
  });

  it('an old timestamp (301 s) and a far-future one → timestamp_outside_tolerance; 300 s → accepted', () => {
    assertRefused(verifier.verify({ headers: standardHeaders(newSecret, body, { atMs: NOW_MS - 301_000 }), body }), 'timestamp_outside_tolerance');
    assertRefused(verifier.verify({ headers: standardHeaders(newSecret, body, { atMs: NOW_MS + 3_600_000 }), body }), 'timestamp_outside_tolerance');
    assert.equal(outcome(verifier.verify({ headers: standardHeaders(newSecret, body, { atMs: NOW_MS - 300_000 }), body })), 'ok');
    assert.equal(outcome(verifier.verify({ headers: standardHeaders(newSecret, body, { atMs: NOW_MS + 300_000 }), body })), 'ok');
  });

  it('toleranceSec is configurable', () => {
    const strict = createVerifier({ scheme: 'standard-webhooks', secrets: [newSecret], toleranceSec: 10, nowMs });
    assertRefused(strict.verify({ headers: standardHeaders(newSecret, body, { atMs: NOW_MS - 11_000 }), body }), 'timestamp_outside_tolerance');
    assert.equal(outcome(strict.verify({ headers: standardHeaders(newSecret, body, { atMs: NOW_MS - 9_000 }), body })), 'ok');
  });

  it('a timestamp in milliseconds or not a number, or a signature without v1 → malformed_header', () => {
    const h = standardHeaders(newSecret, body);
    const ms = verifier.verify({ headers: { ...h, 'webhook-timestamp': String(NOW_MS) }, body });
    assertRefused(ms, 'malformed_header');
    assert.ok(!ms.ok && ms.detail.includes('milliseconds'));
    assertRefused(verifier.verify({ headers: { ...h, 'webhook-timestamp': 'yesterday' }, body }), 'malformed_header');
    assertRefused(verifier.verify({ headers: { ...h, 'webhook-signature': 'garbage' }, body }), 'malformed_header');
  });

  it('headers given with other casing are still found', () => {
    const h = standardHeaders(newSecret, body);
    const upper = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toUpperCase(), v]));
    assert.equal(outcome(verifier.verify({ headers: upper, body })), 'ok');
  });
});

describe('standard-webhooks: signStandardWebhook', () => {
  it('our outbound headers verify with the standardwebhooks library (round trip)', () => {
    const payload = '{"a":1,"name":"Zoë"}';
    const h = signStandardWebhook({ secret: newSecret, id: 'msg_out', timestampSec: Math.floor(Date.now() / 1000), body: payload });
    assert.deepEqual(new Webhook(newSecret).verify(payload, h), { a: 1, name: 'Zoë' });
    assert.deepEqual(new Webhook(newSecret).verify(Buffer.from(payload), h), { a: 1, name: 'Zoë' });
  });

  it('signing with old + new during a rotation: a receiver holding either accepts it', () => {
    const h = signStandardWebhook({ secret: [oldSecret, newSecret], id: 'msg_rot', timestampSec: Math.floor(Date.now() / 1000), body: '{}' });
    assert.equal(h['webhook-signature'].split(' ').length, 2);
    assert.deepEqual(new Webhook(oldSecret).verify('{}', h), {});
    assert.deepEqual(new Webhook(newSecret).verify('{}', h), {});
  });

  it('a secret that is not whsec_<base64>, an empty id or a fractional timestamp → WEBHOOK_CONFIG_INVALID naming the field', () => {
    const ok = { secret: newSecret, id: 'm', timestampSec: NOW_SEC, body: '{}' };
    assert.throws(() => signStandardWebhook({ ...ok, secret: 'whsec_not base64!' }), /WEBHOOK_CONFIG_INVALID.*secret: must be whsec_<base64>/);
    assert.throws(() => signStandardWebhook({ ...ok, id: '' }), /id: required/);
    assert.throws(() => signStandardWebhook({ ...ok, timestampSec: 1.5 }), /timestampSec: must be whole unix seconds/);
  });
});
