import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { createVerifier, type HmacConfig } from './index.js';
import { assertRefused, eventBody as body, githubSignature, NOW_SEC, nowMs, outcome, stripeV1 } from './provider-signers.js';

// The generic scheme has no library of its own. Its sha256 signatures are taken from the
// providers' libraries, which compute the same HMACs: octokit signs the body alone (hex),
// stripe signs `{timestamp}.{body}` (hex); base64 is the same bytes re-encoded.
const hexToBase64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');
const bodyHex = async (secret: string) => (await githubSignature(secret, body)).slice('sha256='.length);
const base: HmacConfig = { scheme: 'hmac', header: 'x-signature', secrets: ['k-old', 'k-new'], nowMs };

describe('hmac: body only', () => {
  it('hex with a sha256= prefix → accepted, delivery id from deliveryIdHeader', async () => {
    const v = createVerifier({ ...base, prefix: 'sha256=', deliveryIdHeader: 'X-Request-Id' });
    const r = v.verify({ headers: { 'x-signature': await githubSignature('k-new', body), 'x-request-id': 'req-7' }, body });
    assert.deepEqual(r, { ok: true, deliveryId: 'req-7', secretIndex: 1 });
  });

  it('hex without prefix, rotation: either secret verifies, and secretIndex says which', async () => {
    const v = createVerifier(base);
    const byOld = v.verify({ headers: { 'x-signature': await bodyHex('k-old') }, body });
    const byNew = v.verify({ headers: { 'x-signature': await bodyHex('k-new') }, body });
    assert.ok(byOld.ok && byOld.secretIndex === 0, 'old secret');
    assert.ok(byNew.ok && byNew.secretIndex === 1, 'new secret');
  });

  it('base64 → accepted; hex sent to a base64 verifier → refused', async () => {
    const v = createVerifier({ ...base, encoding: 'base64' });
    assert.equal(outcome(v.verify({ headers: { 'x-signature': hexToBase64(await bodyHex('k-new')) }, body })), 'ok');
    assert.notEqual(outcome(v.verify({ headers: { 'x-signature': await bodyHex('k-new') }, body })), 'ok');
  });

  it('a tampered body or a wrong secret → signature_mismatch; no header → missing_header', async () => {
    const v = createVerifier({ ...base, prefix: 'sha256=' });
    const signature = await githubSignature('k-new', body);
    assertRefused(v.verify({ headers: { 'x-signature': signature }, body: Buffer.from('{"id":"evt_2"}') }), 'signature_mismatch', signature);
    const wrong = await githubSignature('k-attacker', body);
    assertRefused(v.verify({ headers: { 'x-signature': wrong }, body }), 'signature_mismatch', wrong.slice(7), 'k-old', 'k-new');
    assertRefused(v.verify({ headers: {}, body }), 'missing_header');
  });

  it('a missing prefix or a value not in the encoding → malformed_header', async () => {
    const v = createVerifier({ ...base, prefix: 'sha256=' });
    assertRefused(v.verify({ headers: { 'x-signature': await bodyHex('k-new') }, body }), 'malformed_header');
    assertRefused(v.verify({ headers: { 'x-signature': 'sha256=nothex' }, body }), 'malformed_header');
  });

  it('sha512 and sha1 (no provider library: node:crypto is the reference)', () => {
    for (const algorithm of ['sha512', 'sha1'] as const) {
      const v = createVerifier({ ...base, algorithm, encoding: 'base64' });
      const signature = createHmac(algorithm, 'k-new').update(body).digest('base64');
      assert.equal(outcome(v.verify({ headers: { 'x-signature': signature }, body })), 'ok', algorithm);
      const sha256 = createHmac('sha256', 'k-new').update(body).digest('base64');
      assertRefused(v.verify({ headers: { 'x-signature': sha256 }, body }), 'signature_mismatch');
    }
  });
});

describe('hmac: timestamp template {timestamp}.{body}', () => {
  const timed: HmacConfig = { ...base, timestampHeader: 'x-timestamp', signedPayload: '{timestamp}.{body}' };
  const headers = (signature: string, ts: number = NOW_SEC) => ({ 'x-signature': signature, 'x-timestamp': String(ts) });

  it('hex and base64 → accepted, with the signed timestamp', () => {
    const hex = createVerifier(timed);
    assert.deepEqual(hex.verify({ headers: headers(stripeV1('k-new', body)), body }), { ok: true, timestamp: NOW_SEC, secretIndex: 1 });
    const b64 = createVerifier({ ...timed, encoding: 'base64' });
    assert.deepEqual(b64.verify({ headers: headers(hexToBase64(stripeV1('k-old', body))), body }), { ok: true, timestamp: NOW_SEC, secretIndex: 0 });
  });

  it('a timestamp header changed after signing → signature_mismatch', () => {
    const v = createVerifier(timed);
    assertRefused(v.verify({ headers: headers(stripeV1('k-new', body), NOW_SEC + 1), body }), 'signature_mismatch');
  });

  it('an old and a far-future timestamp → timestamp_outside_tolerance', () => {
    const v = createVerifier(timed);
    const old = NOW_SEC - 301;
    const future = NOW_SEC + 86_400;
    assertRefused(v.verify({ headers: headers(stripeV1('k-new', body, old), old), body }), 'timestamp_outside_tolerance');
    assertRefused(v.verify({ headers: headers(stripeV1('k-new', body, future), future), body }), 'timestamp_outside_tolerance');
  });

  it('no timestamp header → missing_header naming it; a tampered body → signature_mismatch', () => {
    const v = createVerifier(timed);
    const r = v.verify({ headers: { 'x-signature': stripeV1('k-new', body) }, body });
    assertRefused(r, 'missing_header');
    assert.ok(!r.ok && r.detail.includes('x-timestamp'));
    assertRefused(v.verify({ headers: headers(stripeV1('k-new', body)), body: Buffer.from('{}') }), 'signature_mismatch');
  });
});
