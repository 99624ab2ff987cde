import type { Settings } from './config.js';
import { decodeSignature, matchingKey } from './crypto.js';
import { checkTimestamp, header, reject } from './request.js';
import type { RequestHeaders, VerifyResult } from './types.js';

/** `t=…,v1=…,v1=…` → the timestamp text and the v1 signatures; other schemes (`v0`) are skipped. */
function parseStripeSignature(value: string): { t: string | undefined; v1: Buffer[]; v1Count: number } {
  let t: string | undefined;
  const v1: Buffer[] = [];
  let v1Count = 0;
  for (const item of value.split(',')) {
    const eq = item.indexOf('=');
    if (eq < 0) continue;
    const key = item.slice(0, eq).trim();
    const text = item.slice(eq + 1).trim();
    if (key === 't' && t === undefined) t = text;
    if (key === 'v1') {
      v1Count++;
      const decoded = decodeSignature(text, 'hex');
      if (decoded) v1.push(decoded);
    }
  }
  return { t, v1, v1Count };
}

/**
 * Verifies Stripe: HMAC-SHA256 (hex) over `${t}.${body}`, keyed with the `whsec_…` string
 * itself. No delivery id is returned: Stripe's is the event's `id` inside the (signed) body,
 * which the caller reads from the payload it parses anyway.
 */
export function stripeVerifier(s: Settings) {
  return (headers: RequestHeaders, body: Uint8Array): VerifyResult => {
    const value = header(headers, 'stripe-signature');
    if (!value) return reject('missing_header', 'Stripe-Signature missing');
    const { t, v1, v1Count } = parseStripeSignature(value);
    if (t === undefined) return reject('malformed_header', 'Stripe-Signature has no t=<timestamp>');
    if (v1.length === 0) {
      return reject('malformed_header', v1Count > 0 ? 'Stripe-Signature v1 values are not hex' : 'Stripe-Signature has no v1=<hex> (test-mode v0 only?)');
    }
    const timestamp = checkTimestamp(t, 'Stripe-Signature t', s.nowMs(), s.toleranceSec);
    if (typeof timestamp !== 'number') return timestamp;
    const i = matchingKey('sha256', s.keys, [`${t}.`, body], v1);
    if (i < 0) {
      return reject('signature_mismatch',
        `none of ${v1.length} v1 signature(s) matches any of ${s.keys.length} secret(s); is the body passed unchanged?`);
    }
    return { ok: true, timestamp, secretIndex: i };
  };
}
