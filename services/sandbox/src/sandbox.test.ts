import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSandbox } from './sandbox.js';

describe('demo sandbox targets', () => {
  const app = createSandbox({ crmApiKey: 'k', crmRatePerSec: 3 });
  const put = (key: string, version: number, apiKey = 'k') => app.inject({ method: 'PUT', url: '/crm/contacts/c1', headers: { 'x-api-key': apiKey, 'idempotency-key': key }, payload: { version, fields: { email: `v${version}` } } });

  it('wants its API key, applies an idempotency key once, refuses an older version, and rate-limits with Retry-After', async () => {
    assert.equal((await put('a', 1, 'wrong')).statusCode, 401);
    assert.equal((await put('a', 2)).json().status, 'applied');
    assert.equal((await put('a', 2)).json().status, 'already applied');
    const older = await put('b', 1);
    assert.equal(older.statusCode === 409 || older.statusCode === 429, true);
    const burst = await Promise.all([put('c', 3), put('d', 4), put('e', 5), put('f', 6)]);
    const limited = burst.find((r) => r.statusCode === 429);
    assert.ok(limited, 'some call is rate limited');
    assert.equal(limited.headers['retry-after'], '1');
  });
});
