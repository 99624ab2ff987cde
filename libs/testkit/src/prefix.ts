import { randomBytes } from 'node:crypto';

/**
 * A fresh isolation prefix: `t` + 8 base-36 characters, e.g. `t0k3x9q2a` (9 characters,
 * lowercase letters and digits, starts with a letter). Valid as a stream-name part and a
 * subject token; 36^8 ≈ 2.8e12 values, so two suites practically never collide.
 */
export function uniquePrefix(): string {
  const n = randomBytes(6).readUIntBE(0, 6);
  return `t${n.toString(36).padStart(8, '0').slice(-8)}`;
}
