import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sign as githubSign } from '@octokit/webhooks-methods';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import Stripe from 'stripe';
import { createVerifier, signStandardWebhook, type VerifyResult } from './index.js';

// Secrets and signatures below are made by the providers' own libraries, never by ours.
const stripeLib = new Stripe('sk_test_not_a_real_key');
const body = Buffer.from(JSON.stringify({ id: 'evt_1', type: 'customer.created', data: { object: { id: 'cus_1' } } }));
const NOW = 1_764_000_000_000;
const nowMs = () => NOW;
const whOld = `whsec_${Buffer.from('old-secret-of-32-bytes-0123456789').toString('base64')}`;
const whNew = `whsec_${Buffer.from('new-secret-of-32-bytes-0123456789').toString('base64')}`;

function standardHeaders(secret: string, payload: Buffer | string, at = new Date(NOW), id = 'msg_1'): Record<string, string> {
  const signature = new Webhook(secret).sign(id, at, payload.toString());
  return { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': signature };
}
function stripeHeader(secret: string, payload: Buffer | string, timestamp = NOW / 1000) {
  return { 'stripe-signature': stripeLib.webhooks.generateTestHeaderString({ payload: payload.toString(), secret, timestamp }) };
}
const reason = (r: VerifyResult) => (r.ok ? 'ok' : r.reason);

describe('Standard Webhooks', () => {
  const v = createVerifier({ scheme: 'standard-webhooks', secrets: [whOld, whNew], nowMs });
  it('accepts a signature made by the standardwebhooks library, with its id as delivery id', () => {
    assert.deepEqual(v.verify({ headers: standardHeaders(whNew, body), body }), { ok: true, deliveryId: 'msg_1', timestamp: NOW / 1000, secretIndex: 1 });
  });
  it('rotation: the old secret still verifies, and says it was the old one', () => {
    const r = v.verify({ headers: standardHeaders(whOld, body), body });
    assert.ok(r.ok && r.secretIndex === 0);
  });
  it('several signatures in one header: the second matching is enough', () => {
    const h = standardHeaders(whNew, body);
    h['webhook-signature'] = `v1,${Buffer.alloc(32).toString('base64')} ${h['webhook-signature']}`;
    assert.equal(reason(v.verify({ headers: h, body })), 'ok');
  });
  it('refuses a tampered body, a wrong secret, a missing header, an old and a future timestamp', () => {
    const other = `whsec_${Buffer.from('someone-else').toString('base64')}`;
    assert.equal(reason(v.verify({ headers: standardHeaders(whNew, body), body: Buffer.from(`${body} `) })), 'signature_mismatch');
    assert.equal(reason(v.verify({ headers: standardHeaders(other, body), body })), 'signature_mismatch');
    const { 'webhook-signature': _drop, ...missing } = standardHeaders(whNew, body);
    assert.equal(reason(v.verify({ headers: missing, body })), 'missing_header');
    assert.equal(reason(v.verify({ headers: standardHeaders(whNew, body, new Date(NOW - 301_000)), body })), 'timestamp_outside_tolerance');
    assert.equal(reason(v.verify({ headers: standardHeaders(whNew, body, new Date(NOW + 301_000)), body })), 'timestamp_outside_tolerance');
  });
  it('what we sign for outbound webhooks verifies with the standardwebhooks library', () => {
    const h = signStandardWebhook({ secret: whNew, id: 'msg_out', timestampSec: Math.floor(Date.now() / 1000), body: '{"a":1}' });
    assert.deepEqual(new Webhook(whNew).verify('{"a":1}', h), { a: 1 });
  });
  it('flipping any byte of the body breaks the signature (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.nat(), (bytes, at) => {
      const payload = Buffer.from(bytes);
      const h = standardHeaders(whNew, payload.toString('latin1'));
      const signed = Buffer.from(payload.toString('latin1'));
      assert.equal(reason(v.verify({ headers: h, body: signed })), 'ok');
      const tampered = Buffer.from(signed);
      const i = at % tampered.length;
      tampered[i] = tampered[i]! ^ 0xff;
      assert.equal(reason(v.verify({ headers: h, body: tampered })), 'signature_mismatch');
    }), { numRuns: 100 });
  });
});

describe('Stripe', () => {
  const v = createVerifier({ scheme: 'stripe', secrets: ['whsec_old', 'whsec_new'], nowMs });
  it('accepts stripe.webhooks.generateTestHeaderString, with either rotated secret', () => {
    assert.equal(reason(v.verify({ headers: stripeHeader('whsec_new', body), body })), 'ok');
    const r = v.verify({ headers: stripeHeader('whsec_old', body), body });
    assert.ok(r.ok && r.secretIndex === 0);
  });
  it('several v1 values: any one matching is enough', () => {
    const h = stripeHeader('whsec_new', body)['stripe-signature'];
    const t = h.split(',')[0];
    const v1 = h.split(',').find((p) => p.startsWith('v1='));
    assert.equal(reason(v.verify({ headers: { 'stripe-signature': `${t},v1=${'00'.repeat(32)},${v1}` }, body })), 'ok');
  });
  it('refuses a tampered body, a wrong secret, a missing or malformed header, an old timestamp', () => {
    assert.equal(reason(v.verify({ headers: stripeHeader('whsec_new', body), body: Buffer.from('{}') })), 'signature_mismatch');
    assert.equal(reason(v.verify({ headers: stripeHeader('whsec_other', body), body })), 'signature_mismatch');
    assert.equal(reason(v.verify({ headers: {}, body })), 'missing_header');
    assert.equal(reason(v.verify({ headers: { 'stripe-signature': 'garbage' }, body })), 'malformed_header');
    assert.equal(reason(v.verify({ headers: stripeHeader('whsec_new', body, NOW / 1000 - 600), body })), 'timestamp_outside_tolerance');
  });
});

describe('GitHub', () => {
  const v = createVerifier({ scheme: 'github', secrets: ['gh-old', 'gh-new'] });
  it('accepts @octokit/webhooks-methods sign(), with X-GitHub-Delivery as delivery id', async () => {
    const h = { 'x-hub-signature-256': await githubSign('gh-new', body.toString()), 'x-github-delivery': 'd-1' };
    assert.deepEqual(v.verify({ headers: h, body }), { ok: true, deliveryId: 'd-1', secretIndex: 1 });
  });
  it('refuses a tampered body, a wrong secret and a missing header', async () => {
    assert.equal(reason(v.verify({ headers: { 'x-hub-signature-256': await githubSign('gh-new', body.toString()) }, body: Buffer.from('x') })), 'signature_mismatch');
    assert.equal(reason(v.verify({ headers: { 'x-hub-signature-256': await githubSign('nope', body.toString()) }, body })), 'signature_mismatch');
    assert.equal(reason(v.verify({ headers: {}, body })), 'missing_header');
  });
});

describe('generic HMAC', () => {
  it('hex with a prefix, no timestamp', async () => {
    const v = createVerifier({ scheme: 'hmac', header: 'x-signature', prefix: 'sha256=', secrets: ['k'] });
    // same construction as GitHub's, so the provider library can sign it
    assert.equal(reason(v.verify({ headers: { 'x-signature': await githubSign('k', body.toString()) }, body })), 'ok');
    assert.equal(reason(v.verify({ headers: { 'x-signature': await githubSign('k', 'other') }, body })), 'signature_mismatch');
  });
  it('base64 over a timestamp template, with tolerance', () => {
    const v = createVerifier({ scheme: 'hmac', header: 'x-sig', encoding: 'base64', timestampHeader: 'x-ts', signedPayload: '{timestamp}.{body}', secrets: ['k'], nowMs });
    // the Stripe construction, hex → base64: the provider lib makes the digest
    const stripeSig = stripeHeader('k', body)['stripe-signature'].split(',').find((p) => p.startsWith('v1='))!.slice(3);
    const sig = Buffer.from(stripeSig, 'hex').toString('base64');
    assert.equal(reason(v.verify({ headers: { 'x-sig': sig, 'x-ts': String(NOW / 1000) }, body })), 'ok');
    assert.equal(reason(v.verify({ headers: { 'x-sig': sig, 'x-ts': String(NOW / 1000 + 1) }, body })), 'signature_mismatch');
    assert.equal(reason(v.verify({ headers: { 'x-sig': sig }, body })), 'missing_header');
  });
});

describe('configuration', () => {
  it('a bad configuration fails at construction, naming the field', () => {
    assert.throws(() => createVerifier({ scheme: 'stripe', secrets: [] }), /stripe verifier: secrets must list/);
    assert.throws(() => createVerifier({ scheme: 'standard-webhooks', secrets: ['whsec_!!!'] }), /secrets\[0\] must be whsec_<base64>/);
    assert.throws(() => createVerifier({ scheme: 'hmac', header: '', secrets: ['k'] }), /hmac verifier: header/);
    assert.throws(() => createVerifier({ scheme: 'hmac', header: 'x', signedPayload: '{timestamp}.{body}', secrets: ['k'] }), /timestampHeader is required/);
    assert.throws(() => createVerifier({ scheme: 'nope', secrets: ['k'] } as never), /scheme must be/);
  });
  it('a rejection never echoes a secret or the signature', () => {
    const v = createVerifier({ scheme: 'github', secrets: ['super-secret'] });
    const r = v.verify({ headers: { 'x-hub-signature-256': `sha256=${'ab'.repeat(32)}` }, body });
    assert.ok(!r.ok && !r.detail.includes('super-secret') && !r.detail.includes('abab'));
  });
});
