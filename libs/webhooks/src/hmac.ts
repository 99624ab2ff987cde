import { createHmac, timingSafeEqual } from 'node:crypto';

/** HMAC of `parts` joined, as raw bytes. */
export function hmac(algorithm: string, key: Buffer | string, ...parts: (string | Buffer)[]): Buffer {
  const h = createHmac(algorithm, key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Constant-time comparison of an expected digest with any of the given candidates. */
export function matchesAny(expected: Buffer, candidates: Buffer[]): boolean {
  let ok = false;
  for (const c of candidates) {
    // compare every candidate so the time does not tell which one matched
    if (c.length === expected.length && timingSafeEqual(c, expected)) ok = true;
  }
  return ok;
}

/** Decodes a signature; undefined when it is not valid in that encoding. */
export function decodeSignature(value: string, encoding: 'hex' | 'base64'): Buffer | undefined {
  if (encoding === 'hex') return /^[0-9a-fA-F]+$/.test(value) && value.length % 2 === 0 ? Buffer.from(value, 'hex') : undefined;
  return /^[A-Za-z0-9+/]+={0,2}$/.test(value) ? Buffer.from(value, 'base64') : undefined;
}

export function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
