import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EntryCache } from './apply.js';

describe('projection: the entry cache', () => {
  it('knows which keys it let go of (evicted or forgotten), and that a key it never had is new', () => {
    const cache = new EntryCache(2);
    assert.equal(cache.mayHaveLetGo('a'), false);
    for (const k of ['a', 'b', 'c']) cache.set(k, { revision: 1 });
    assert.equal(cache.get('a'), undefined, 'evicted: the least recently used');
    assert.equal(cache.mayHaveLetGo('a'), true);
    cache.forget('b');
    assert.equal(cache.mayHaveLetGo('b'), true);
    assert.equal(cache.get('c')?.revision, 1);
    const never = Array.from({ length: 1_000 }, (_, i) => `crm.contact.n${i}`).filter((k) => cache.mayHaveLetGo(k));
    assert.deepEqual(never, [], 'no false positives with two keys in a 4-Mbit filter');
  });
});
