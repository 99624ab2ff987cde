import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createVerifier } from './index.js';
import { assertRefused, eventBody as body, githubSignature } from './provider-signers.js';

const verifier = createVerifier({ scheme: 'github', secrets: ['gh-old-secret', 'gh-new-secret'] });
const delivery = '72d3162e-cc78-11e3-81ab-4c9367dc0958';

describe('github: verify', () => {
  it('sign() from @octokit/webhooks-methods → accepted, X-GitHub-Delivery as delivery id, no timestamp', async () => {
    const headers = { 'x-hub-signature-256': await githubSignature('gh-new-secret', body), 'x-github-delivery': delivery, 'x-github-event': 'push' };
    assert.deepEqual(verifier.verify({ headers, body }), { ok: true, deliveryId: delivery, secretIndex: 1 });
  });

  it('rotation (old + new): either secret verifies, and secretIndex says which', async () => {
    const byOld = verifier.verify({ headers: { 'x-hub-signature-256': await githubSignature('gh-old-secret', body) }, body });
    const byNew = verifier.verify({ headers: { 'x-hub-signature-256': await githubSignature('gh-new-secret', body) }, body });
    assert.ok(byOld.ok && byOld.secretIndex === 0, 'old secret');
    assert.ok(byNew.ok && byNew.secretIndex === 1, 'new secret');
  });

  it('no X-GitHub-Delivery → accepted without a delivery id', async () => {
    const r = verifier.verify({ headers: { 'x-hub-signature-256': await githubSignature('gh-new-secret', body) }, body });
    assert.deepEqual(r, { ok: true, secretIndex: 1 });
  });

  it('a tampered body → signature_mismatch', async () => {
    const signature = await githubSignature('gh-new-secret', body);
    assertRefused(verifier.verify({ headers: { 'x-hub-signature-256': signature }, body: Buffer.from('{}') }), 'signature_mismatch', signature);
  });

  it('a wrong secret → signature_mismatch, quoting neither secret nor signature', async () => {
    const signature = await githubSignature('not-our-secret', body);
    assertRefused(verifier.verify({ headers: { 'x-hub-signature-256': signature }, body }), 'signature_mismatch',
      signature.slice('sha256='.length), 'gh-old-secret', 'gh-new-secret');
  });

  it('no X-Hub-Signature-256 (even with the SHA-1 X-Hub-Signature) → missing_header', () => {
    assertRefused(verifier.verify({ headers: { 'x-github-delivery': delivery }, body }), 'missing_header');
    const legacy = verifier.verify({ headers: { 'x-hub-signature': 'sha1=0000000000' }, body });
    assertRefused(legacy, 'missing_header');
    assert.ok(!legacy.ok && legacy.detail.includes('SHA-1'));
  });

  it('a value that is not sha256=<hex> → malformed_header', async () => {
    const hex = (await githubSignature('gh-new-secret', body)).slice('sha256='.length);
    assertRefused(verifier.verify({ headers: { 'x-hub-signature-256': hex }, body }), 'malformed_header');
    assertRefused(verifier.verify({ headers: { 'x-hub-signature-256': `sha1=${hex}` }, body }), 'malformed_header');
    assertRefused(verifier.verify({ headers: { 'x-hub-signature-256': 'sha256=xyz' }, body }), 'malformed_header');
  });
});
