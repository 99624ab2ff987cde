import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BusError } from '@bus/errors';
import { createVerifier, RejectReasons, type VerifierConfig } from './index.js';
import { eventBody as body } from './provider-signers.js';

/** Asserts construction fails with WEBHOOK_CONFIG_INVALID (permanent) and a message matching `field`. */
function refusedConfig(config: unknown, field: RegExp): BusError {
  let thrown: unknown;
  try {
    createVerifier(config as VerifierConfig);
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown instanceof BusError, `expected a BusError, got ${String(thrown)}`);
  assert.equal(thrown.code, 'WEBHOOK_CONFIG_INVALID');
  assert.equal(thrown.failureClass, 'permanent');
  assert.match(thrown.message, field);
  return thrown;
}

describe('config: a bad configuration fails at construction, naming the field', () => {
  it('no secrets, an empty secret, a secret with a trailing newline', () => {
    refusedConfig({ scheme: 'stripe', secrets: [] }, /stripe verifier config is invalid.*secrets: required/);
    refusedConfig({ scheme: 'github' }, /secrets: required/);
    refusedConfig({ scheme: 'github', secrets: ['ok', ''] }, /secrets\[1\]: must be a non-empty string/);
    refusedConfig({ scheme: 'github', secrets: ['shh\n'] }, /secrets\[0\]: has leading or trailing whitespace/);
  });

  it('a whsec_ secret that is not base64 → names secrets[i] and never quotes the secret', () => {
    const err = refusedConfig({ scheme: 'standard-webhooks', secrets: ['whsec_dGVzdA==', 'whsec_top$ecret!'] }, /secrets\[1\]: must be whsec_<base64>/);
    assert.ok(!err.message.includes('top$ecret'));
    refusedConfig({ scheme: 'standard-webhooks', secrets: ['whsec_'] }, /secrets\[0\]/);
  });

  it('an unknown scheme, a bad toleranceSec or nowMs, a misspelt setting', () => {
    refusedConfig({ scheme: 'svix', secrets: ['k'] }, /scheme: must be one of standard-webhooks, stripe, github, hmac/);
    refusedConfig(undefined, /scheme: must be one of/);
    refusedConfig({ scheme: 'stripe', secrets: ['k'], toleranceSec: 0 }, /toleranceSec: must be a number of seconds > 0/);
    refusedConfig({ scheme: 'stripe', secrets: ['k'], toleranceSec: '300' }, /toleranceSec/);
    refusedConfig({ scheme: 'stripe', secrets: ['k'], nowMs: 5 }, /nowMs: must be a function/);
    refusedConfig({ scheme: 'stripe', secrets: ['k'], header: 'x-sig' }, /header: not a stripe setting/);
  });

  it('hmac: header, algorithm, encoding, prefix and header names', () => {
    const hmac = { scheme: 'hmac', secrets: ['k'], header: 'x-sig' };
    refusedConfig({ ...hmac, header: '' }, /hmac verifier config is invalid.*header: required/);
    refusedConfig({ ...hmac, header: 'x sig' }, /header: required/);
    refusedConfig({ ...hmac, algorithm: 'md5' }, /algorithm: must be one of sha256, sha512, sha1/);
    refusedConfig({ ...hmac, algorithm: '' }, /algorithm/);
    refusedConfig({ ...hmac, encoding: 'base32' }, /encoding: must be one of hex, base64/);
    refusedConfig({ ...hmac, prefix: 1 }, /prefix/);
    refusedConfig({ ...hmac, deliveryIdHeader: 'x id' }, /deliveryIdHeader: must be a header name/);
  });

  it('hmac: signedPayload and timestampHeader must agree', () => {
    const hmac = { scheme: 'hmac', secrets: ['k'], header: 'x-sig' };
    refusedConfig({ ...hmac, signedPayload: '{timestamp}.{body}' }, /timestampHeader: required when signedPayload uses \{timestamp\}/);
    refusedConfig({ ...hmac, timestampHeader: 'x-ts' }, /signedPayload: must contain \{timestamp\} when timestampHeader is set/);
    refusedConfig({ ...hmac, signedPayload: '{timestamp}' , timestampHeader: 'x-ts' }, /signedPayload: must contain \{body\} exactly once \(found 0\)/);
    refusedConfig({ ...hmac, signedPayload: '{body}{body}' }, /found 2/);
    refusedConfig({ ...hmac, signedPayload: '{ts}.{body}' }, /unknown placeholder \{ts\}/);
  });

  it('every problem is listed at once', () => {
    const err = refusedConfig({ scheme: 'hmac', secrets: [], header: '', algorithm: 'md5' }, /secrets/);
    assert.match(err.message, /header: required/);
    assert.match(err.message, /algorithm: must be/);
  });

  it('the settings are copied: changing the caller\'s secrets later changes nothing', () => {
    const secrets = ['k'];
    const v = createVerifier({ scheme: 'github', secrets });
    secrets[0] = 'other';
    const r = v.verify({ headers: { 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` }, body });
    assert.ok(!r.ok && r.detail.includes('1 secret'));
  });
});

describe('verify: what is not a request problem', () => {
  it('a body that is not bytes (a parsed object or a string) throws WEBHOOK_BODY_NOT_RAW, not a refusal', () => {
    const v = createVerifier({ scheme: 'github', secrets: ['k'] });
    for (const parsed of [{ id: 'evt_1' }, '{"id":"evt_1"}']) {
      assert.throws(() => v.verify({ headers: {}, body: parsed as unknown as Buffer }), (err: unknown) => err instanceof BusError && err.code === 'WEBHOOK_BODY_NOT_RAW');
    }
  });

  it('RejectReasons lists the four reasons (for per-reason counters)', () => {
    assert.deepEqual([...RejectReasons], ['missing_header', 'malformed_header', 'timestamp_outside_tolerance', 'signature_mismatch']);
  });
});
