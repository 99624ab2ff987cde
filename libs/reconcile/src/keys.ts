import { createHash } from 'node:crypto';

/** 64 bits of SHA-1: two different keys collide with odds of about n² / 2^65 (1 in 3.7 million at 10 million keys). */
const hash64 = (key: string): bigint => createHash('sha1').update(key).digest().readBigUInt64BE(0);

/**
 * The target keys the sources explain, for phase 2's listing: a 64-bit hash per key in one
 * growing typed array (8 bytes a key, 800 KB per 100,000, against ~100 B a key as a Set of
 * strings), sorted once when the first lookup comes, then binary-searched. A collision can
 * only hide an unknown-to-source record, never invent a difference.
 */
export class KeyHashes {
  private hashes = new BigUint64Array(1_024);
  private n = 0;
  private sorted = true;

  get size(): number {
    return this.n;
  }

  add(key: string): void {
    if (this.n === this.hashes.length) {
      const bigger = new BigUint64Array(this.hashes.length * 2);
      bigger.set(this.hashes);
      this.hashes = bigger;
    }
    this.hashes[this.n++] = hash64(key);
    this.sorted = false;
  }

  has(key: string): boolean {
    if (!this.sorted) {
      this.hashes.subarray(0, this.n).sort();
      this.sorted = true;
    }
    const h = hash64(key);
    let lo = 0;
    let hi = this.n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.hashes[mid]!;
      if (v === h) return true;
      if (v < h) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }
}
