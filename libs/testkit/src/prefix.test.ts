import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { uniquePrefix } from './index.js';

describe('uniquePrefix', () => {
  it('is t + 8 base-36 characters and does not repeat in 10 000 calls', () => {
    const prefixes = Array.from({ length: 10_000 }, uniquePrefix);
    for (const p of prefixes.slice(0, 100)) assert.match(p, /^t[0-9a-z]{8}$/);
    assert.equal(new Set(prefixes).size, prefixes.length);
  });
});
