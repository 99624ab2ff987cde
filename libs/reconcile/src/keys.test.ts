import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyHashes } from './keys.js';
import { prefetched } from './prefetch.js';

describe('expected keys as 53-bit hashes', () => {
  it('knows every key added, and not others, across growth', () => {
    const keys = new KeyHashes();
    for (let i = 0; i < 5_000; i++) keys.add(`contact/c${i}`);
    assert.equal(keys.size, 5_000);
    for (let i = 0; i < 5_000; i++) assert.ok(keys.has(`contact/c${i}`), `contact/c${i}`);
    for (let i = 5_000; i < 10_000; i++) assert.ok(!keys.has(`contact/c${i}`));
    assert.ok(!keys.has('order/c1'));
  });

  it('an empty set holds nothing; a key added after a lookup is found', () => {
    const keys = new KeyHashes();
    assert.ok(!keys.has('a/b'));
    keys.add('a/b');
    assert.ok(keys.has('a/b'));
  });
});

describe('prefetched', () => {
  it('reads the next item while the current one is worked on, and yields all in order', async () => {
    const asked: number[] = [];
    async function* pages() {
      for (let i = 0; i < 4; i++) {
        asked.push(i);
        yield i;
      }
    }
    const seen: Array<[number, number[]]> = [];
    for await (const p of prefetched(pages())) {
      await Promise.resolve(); // let the read-ahead run
      await Promise.resolve();
      seen.push([p, [...asked]]);
    }
    assert.deepEqual(seen.map(([p]) => p), [0, 1, 2, 3]);
    assert.ok(seen[0]![1].includes(1), 'page 1 asked for while page 0 was worked on');
  });

  it('a caller that stops early closes the source', async () => {
    let closed = false;
    async function* pages() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closed = true;
      }
    }
    for await (const p of prefetched(pages())) if (p === 2) break;
    assert.ok(closed);
  });
});
