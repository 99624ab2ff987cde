import type { Settings } from './config.js';
import { decodeSignature, matchingKey } from './crypto.js';
import { header, reject } from './request.js';
import type { RequestHeaders, VerifyResult } from './types.js';

/**
 * Verifies GitHub: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 over the body alone.
 * GitHub signs no timestamp, so nothing here stops a replay: dedup on the delivery id does,
 * and `X-GitHub-Delivery` is not signed. `X-GitHub-Event` (the event type) is the caller's
 * to read; the legacy SHA-1 `X-Hub-Signature` is never accepted.
 */
export function githubVerifier(s: Settings) {
  return (headers: RequestHeaders, body: Uint8Array): VerifyResult => {
    const value = header(headers, 'x-hub-signature-256');
    if (!value) {
      const legacy = header(headers, 'x-hub-signature') ? ' (only the SHA-1 X-Hub-Signature came, which is not accepted)' : '';
      return reject('missing_header', `X-Hub-Signature-256 missing${legacy}`);
    }
    const candidate = value.startsWith('sha256=') ? decodeSignature(value.slice('sha256='.length), 'hex') : undefined;
    if (!candidate) return reject('malformed_header', 'X-Hub-Signature-256 must be sha256=<hex>');
    const i = matchingKey('sha256', s.keys, [body], [candidate]);
    if (i < 0) return reject('signature_mismatch', `the signature matches none of ${s.keys.length} secret(s); is the body passed unchanged?`);
    const deliveryId = header(headers, 'x-github-delivery');
    return deliveryId === undefined ? { ok: true, secretIndex: i } : { ok: true, deliveryId, secretIndex: i };
  };
}
