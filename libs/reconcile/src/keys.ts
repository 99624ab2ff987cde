import { hash53 } from '@bus/streams';

/**
 * The target keys the sources explain, for phase 2's listing: a 53-bit hash per key in one
 * growing Float64Array (8 bytes a key, 800 KB per 100,000, against ~100 B a key as a Set of
 * strings), sorted once when the first lookup comes, then binary-searched. A collision can
 * only hide an unknown-to-source record, never invent a difference.
 */
export class KeyHashes {
  private hashes = new Float64Array(1_024);
  private n = 0;
  private sorted = true;

  get size(): number {
    return this.n;
  }

  add(key: string): void {
    if (this.n === this.hashes.length) {
      const bigger = new Float64Array(this.hashes.length * 2);
      bigger.set(this.hashes);
      this.hashes = bigger;
    }
    this.hashes[this.n++] = hash53(key);
    this.sorted = false;
  }

  has(key: string): boolean {
    if (!this.sorted) {
      this.hashes.subarray(0, this.n).sort();
      this.sorted = true;
    }
    const h = hash53(key);
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
