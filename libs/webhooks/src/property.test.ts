import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createVerifier, type VerifyResult } from './index.js';
import { githubSignature, NOW_SEC, nowMs, outcome, standardHeaders, stripeSignature, stripeV1, whsec } from './provider-signers.js';

// Bodies are any Unicode text sent as UTF-8 (the providers' libraries sign text); the flipped
// byte may then make invalid UTF-8, which must fail too: we verify bytes, not text.
const bodies = fc.string({ unit: 'binary', minLength: 1, maxLength: 400 }).map((s) => Buffer.from(s, 'utf8'));
const flip = fc.record({ at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) });

function flipped(body: Buffer, { at, mask }: { at: number; mask: number }): Buffer {
  const copy = Buffer.from(body);
  const i = at % copy.length;
  copy[i] = copy[i]! ^ mask;
  return copy;
}

/** For any body: the provider's signature verifies, and flipping any one byte fails it. */
function holds(verify: (body: Buffer) => VerifyResult, tampered: Buffer, body: Buffer): void {
  assert.equal(outcome(verify(body)), 'ok');
  assert.equal(outcome(verify(tampered)), 'signature_mismatch');
}

describe('property: a provider signature verifies, and one flipped byte breaks it', () => {
  it('standard-webhooks (standardwebhooks library)', () => {
    const secret = whsec('property');
    const v = createVerifier({ scheme: 'standard-webhooks', secrets: [whsec('other'), secret], nowMs });
    fc.assert(fc.property(bodies, flip, (body, f) => {
      const headers = standardHeaders(secret, body);
      holds((b) => v.verify({ headers, body: b }), flipped(body, f), body);
    }), { numRuns: 200 });
  });

  it('stripe (stripe library), with random secrets', () => {
    const secrets = fc.stringMatching(/^whsec_[A-Za-z0-9]{8,40}$/);
    fc.assert(fc.property(bodies, flip, secrets, (body, f, secret) => {
      const v = createVerifier({ scheme: 'stripe', secrets: [secret], nowMs });
      const headers = { 'stripe-signature': stripeSignature(secret, body) };
      holds((b) => v.verify({ headers, body: b }), flipped(body, f), body);
    }), { numRuns: 200 });
  });

  it('github (@octokit/webhooks-methods), with random secrets', async () => {
    const secrets = fc.stringMatching(/^[!-~]{1,40}$/);
    await fc.assert(fc.asyncProperty(bodies, flip, secrets, async (body, f, secret) => {
      const v = createVerifier({ scheme: 'github', secrets: [secret] });
      const headers = { 'x-hub-signature-256': await githubSignature(secret, body) };
      holds((b) => v.verify({ headers, body: b }), flipped(body, f), body);
    }), { numRuns: 200 });
  });

  it('hmac, timestamp template (stripe library digest)', () => {
    const v = createVerifier({ scheme: 'hmac', header: 'x-sig', timestampHeader: 'x-ts', signedPayload: '{timestamp}.{body}', secrets: ['k'], nowMs });
    fc.assert(fc.property(bodies, flip, (body, f) => {
      const headers = { 'x-sig': stripeV1('k', body), 'x-ts': String(NOW_SEC) };
      holds((b) => v.verify({ headers, body: b }), flipped(body, f), body);
    }), { numRuns: 200 });
  });
});
