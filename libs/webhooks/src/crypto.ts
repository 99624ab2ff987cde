import { createHmac, timingSafeEqual } from 'node:crypto';

/** A piece of signed content: text (hashed as UTF-8) or raw bytes (the body, untouched). */
export type Part = string | Uint8Array;

/** HMAC of the parts, in order, as raw bytes. */
export function hmac(algorithm: string, key: Uint8Array, parts: readonly Part[]): Buffer {
  const h = createHmac(algorithm, key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/**
 * Index of the first key whose HMAC over `parts` equals one of the candidate signatures, or
 * -1. Every key is hashed and every candidate compared with `timingSafeEqual`, so the time
 * taken says nothing about which one matched or how much of a signature was right. Only a
 * candidate's length can end a comparison early, and it is public (fixed per algorithm).
 */
export function matchingKey(algorithm: string, keys: readonly Uint8Array[], parts: readonly Part[], candidates: readonly Buffer[]): number {
  let found = -1;
  for (let i = 0; i < keys.length; i++) {
    const expected = hmac(algorithm, keys[i]!, parts);
    let matched = false;
    for (const c of candidates) {
      if (c.length === expected.length && timingSafeEqual(c, expected)) matched = true;
    }
    if (matched && found === -1) found = i;
  }
  return found;
}

const HEX = /^(?:[0-9a-fA-F]{2})+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Bytes of a base64 string (padding optional); undefined unless it is canonical base64. */
export function fromBase64(text: string): Buffer | undefined {
  if (!BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  // Buffer decoding is lenient (stray bits, bad length); re-encoding catches both
  const unpadded = (s: string) => s.replace(/=+$/, '');
  return bytes.length > 0 && unpadded(bytes.toString('base64')) === unpadded(text) ? bytes : undefined;
}

/** Decodes a signature as written in a header; undefined when it is not valid in that encoding. */
export function decodeSignature(text: string, encoding: 'hex' | 'base64'): Buffer | undefined {
  if (encoding === 'hex') return HEX.test(text) ? Buffer.from(text, 'hex') : undefined;
  return fromBase64(text);
}

/**
 * The HMAC key of a Standard Webhooks secret: the base64 after `whsec_` (the prefix is
 * optional, as in the standardwebhooks library). Undefined when that is not base64.
 */
export function standardWebhooksKey(secret: string): Buffer | undefined {
  return fromBase64(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret);
}
