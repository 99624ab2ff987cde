import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseApiTokens } from './events-api.js';

describe('INGEST_API_TOKENS', () => {
  it('token:source|source, comma-separated; no list → any source but the webhook ones; * → any', () => {
    assert.deepEqual(parseApiTokens('old:shop|billing, new:shop|billing,svc,ops:*'), [
      { token: 'old', sources: ['shop', 'billing'] }, { token: 'new', sources: ['shop', 'billing'] },
      { token: 'svc', sources: 'services' }, { token: 'ops', sources: '*' },
    ]);
  });
  it('an entry without a token or with an empty list is refused, naming the entry and the format', () => {
    assert.throws(() => parseApiTokens(':shop'), /\[CONFIG_INVALID\] INGEST_API_TOKENS is invalid: entry 1 has no token.*Format: token:source\|source/);
    assert.throws(() => parseApiTokens('a:shop,b:'), /entry 2 lists no source/);
    assert.throws(() => parseApiTokens(' , '), /no token/);
  });
});
