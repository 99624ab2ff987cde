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

  it('the warehouse wants an OAuth2 bearer token from /oauth/token when a client is configured', async () => {
    const oauth = createSandbox({ crmApiKey: 'k', warehouseClient: { id: 'w', secret: 's' } });
    const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
    const tokenFor = (auth: string) => oauth.inject({ method: 'POST', url: '/oauth/token', headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=client_credentials' });
    assert.equal((await tokenFor(basic('w', 'wrong'))).statusCode, 401);
    const granted = (await tokenFor(basic('w', 's'))).json() as { access_token: string; expires_in: number };
    assert.equal(granted.expires_in, 300);
    const ship = (auth?: string) => oauth.inject({ method: 'PUT', url: '/warehouse/shipments/o1', headers: auth ? { authorization: auth } : {}, payload: { version: 1, fields: {} } });
    assert.equal((await ship()).statusCode, 401);
    assert.equal((await ship('Bearer nope')).statusCode, 401);
    assert.equal((await ship(`Bearer ${granted.access_token}`)).statusCode, 200);
  });

  it('a fault set on a system rejects exactly its next writes with that status, behind the API key', async () => {
    const sandbox = createSandbox({ crmApiKey: 'k' });
    const write = (version: number) => sandbox.inject({ method: 'PUT', url: '/crm/contacts/f1', headers: { 'x-api-key': 'k' }, payload: { version, fields: {} } });
    assert.equal((await sandbox.inject({ method: 'POST', url: '/crm/_faults', headers: { 'x-api-key': 'wrong' }, payload: { status: 422 } })).statusCode, 401);
    assert.equal((await sandbox.inject({ method: 'POST', url: '/crm/_faults', headers: { 'x-api-key': 'k' }, payload: { status: 200 } })).statusCode, 400);
    assert.equal((await sandbox.inject({ method: 'POST', url: '/crm/_faults', headers: { 'x-api-key': 'k' }, payload: { status: 422, times: 2 } })).statusCode, 200);
    assert.equal((await write(1)).statusCode, 422);
    assert.equal((await write(1)).statusCode, 422);
    assert.equal((await write(1)).statusCode, 200);
  });
});
