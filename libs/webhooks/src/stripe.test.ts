import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createVerifier } from './index.js';
import { assertRefused, eventBody as body, NOW_SEC, nowMs, outcome, stripeSignature, stripeV1 } from './provider-signers.js';

// Stripe keys the HMAC with the whole `whsec_…` string (not base64-decoded, unlike Standard Webhooks)
const oldSecret = 'whsec_old_stripe_endpoint_secret';
const newSecret = 'whsec_new_stripe_endpoint_secret';
const verifier = createVerifier({ scheme: 'stripe', secrets: [oldSecret, newSecret], nowMs });
const verify = (signature: string, b = body) => verifier.verify({ headers: { 'stripe-signature': signature }, body: b });

describe('stripe: verify', () => {
  it('a header from stripe.webhooks.generateTestHeaderString → accepted; no delivery id (the event id is in the body)', () => {
    assert.deepEqual(verify(stripeSignature(newSecret, body)), { ok: true, timestamp: NOW_SEC, secretIndex: 1 });
  });

  it('rotation (old + new): either secret verifies, and secretIndex says which', () => {
    const byOld = verify(stripeSignature(oldSecret, body));
    const byNew = verify(stripeSignature(newSecret, body));
    assert.ok(byOld.ok && byOld.secretIndex === 0, 'old secret');
    assert.ok(byNew.ok && byNew.secretIndex === 1, 'new secret');
  });

  it('several v1 values, only the second matching → accepted (as Stripe sends while an endpoint secret rolls)', () => {
    const signature = `t=${NOW_SEC},v1=${stripeV1('whsec_someone_else', body)},v1=${stripeV1(newSecret, body)}`;
    assert.equal(outcome(verify(signature)), 'ok');
  });

  it('a v0 (test-mode) entry and spaces after commas are ignored', () => {
    const signature = `t=${NOW_SEC}, v0=${stripeV1('x', body)}, v1=${stripeV1(newSecret, body)}`;
    assert.equal(outcome(verify(signature)), 'ok');
  });

  it('a tampered body → signature_mismatch', () => {
    const signature = stripeSignature(newSecret, body);
    assertRefused(verify(signature, Buffer.from(`${body.toString()} `)), 'signature_mismatch', signature, newSecret);
  });

  it('a wrong secret → signature_mismatch, quoting neither secret nor signature', () => {
    const v1 = stripeV1('whsec_attacker', body);
    assertRefused(verify(`t=${NOW_SEC},v1=${v1}`), 'signature_mismatch', v1, oldSecret, newSecret);
  });

  it('no Stripe-Signature header → missing_header', () => {
    assertRefused(verifier.verify({ headers: { 'content-type': 'application/json' }, body }), 'missing_header');
    assertRefused(verifier.verify({ headers: { 'stripe-signature': '' }, body }), 'missing_header');
  });

  it('garbage, no t=, no v1= or a v1 that is not hex → malformed_header', () => {
    assertRefused(verify('garbage'), 'malformed_header');
    assertRefused(verify(`v1=${stripeV1(newSecret, body)}`), 'malformed_header');
    assertRefused(verify(`t=${NOW_SEC}`), 'malformed_header');
    assertRefused(verify(`t=${NOW_SEC},v1=not-hex`), 'malformed_header');
    assertRefused(verify(`t=soon,v1=${stripeV1(newSecret, body)}`), 'malformed_header');
  });

  it('an old (10 min) and a far-future (1 h ahead) timestamp → timestamp_outside_tolerance', () => {
    assertRefused(verify(stripeSignature(newSecret, body, NOW_SEC - 600)), 'timestamp_outside_tolerance');
    // the stripe library itself only refuses old timestamps; we refuse both directions
    assertRefused(verify(stripeSignature(newSecret, body, NOW_SEC + 3600)), 'timestamp_outside_tolerance');
  });

  it('toleranceSec is configurable', () => {
    const lax = createVerifier({ scheme: 'stripe', secrets: [newSecret], toleranceSec: 900, nowMs });
    const signature = stripeSignature(newSecret, body, NOW_SEC - 600);
    assert.equal(outcome(lax.verify({ headers: { 'stripe-signature': signature }, body })), 'ok');
  });
});
