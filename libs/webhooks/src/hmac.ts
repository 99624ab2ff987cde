import type { HmacSettings } from './config.js';
import { decodeSignature, matchingKey, type Part } from './crypto.js';
import { checkTimestamp, header, reject } from './request.js';
import type { RequestHeaders, Verified, VerifyResult } from './types.js';

/**
 * Verifies a generic HMAC: `<prefix><signature>` in one header, over `signedPayload` with
 * `{body}` the raw bytes and `{timestamp}` the timestamp header's text exactly as sent.
 */
export function hmacVerifier(s: HmacSettings) {
  const expected = `${s.prefix}<${s.encoding} ${s.algorithm}>`;
  return (headers: RequestHeaders, body: Uint8Array): VerifyResult => {
    const value = header(headers, s.header);
    if (!value) return reject('missing_header', `${s.header} missing`);
    let timestampText = '';
    let timestamp: number | undefined;
    if (s.timestampHeader) {
      timestampText = header(headers, s.timestampHeader) ?? '';
      if (!timestampText) return reject('missing_header', `${s.timestampHeader} missing`);
      const checked = checkTimestamp(timestampText, s.timestampHeader, s.nowMs(), s.toleranceSec);
      if (typeof checked !== 'number') return checked;
      timestamp = checked;
    }
    const trimmed = value.trim();
    const candidate = trimmed.startsWith(s.prefix) ? decodeSignature(trimmed.slice(s.prefix.length), s.encoding) : undefined;
    if (!candidate) return reject('malformed_header', `${s.header} must be ${expected}`);
    const parts: Part[] = s.template.map((p) => (p === 'body' ? body : p === 'timestamp' ? timestampText : p.text));
    const i = matchingKey(s.algorithm, s.keys, parts, [candidate]);
    if (i < 0) return reject('signature_mismatch', `the signature matches none of ${s.keys.length} secret(s); is the body passed unchanged?`);
    const result: Verified = { ok: true, secretIndex: i };
    if (timestamp !== undefined) result.timestamp = timestamp;
    const deliveryId = s.deliveryIdHeader ? header(headers, s.deliveryIdHeader) : undefined;
    if (deliveryId !== undefined) result.deliveryId = deliveryId;
    return result;
  };
}
