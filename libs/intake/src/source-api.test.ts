import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createSourceClient, type SourceApiError } from './source-api.js';

describe('a source\'s one client: auth, retries, failure classes', () => {
  let server: Server;
  let base: string;
  const script: number[] = [];
  const seen: { url: string; auth?: string }[] = [];
  before(async () => {
    server = createServer((req, res) => {
      seen.push({ url: req.url ?? '', auth: req.headers.authorization });
      const status = script.shift() ?? 200;
      res.writeHead(status, { 'content-type': 'application/json', ...(status === 429 ? { 'retry-after': '0' } : {}) });
      res.end(status === 200 ? JSON.stringify({ ok: true, url: req.url }) : JSON.stringify({ error: `status ${status}` }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));
  const api = { baseUrlEnv: 'SRC_BASE', auth: { kind: 'bearer' as const, env: 'SRC_KEY' }, retry: { maxAttempts: 3, initialDelayMs: 10, maxDelayMs: 20, jitter: 'none' as const } };
  const client = () => createSourceClient('src', api, { SRC_BASE: base, SRC_KEY: 'k1' });

  it('sends the bearer key and the query; answers the body and the source\'s clock', async () => {
    seen.length = 0;
    const r = await client().get('/v1/things/a', { query: { limit: '2' } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ok: true, url: '/v1/things/a?limit=2' });
    assert.equal(seen[0]!.auth, 'Bearer k1');
    assert.ok(r.dateMs && Math.abs(r.dateMs - Date.now()) < 5_000);
  });
  it('a 404 is an answer (the record is gone), not a failure', async () => {
    script.push(404);
    assert.equal((await client().get('/v1/things/gone')).status, 404);
  });
  it('5xx and 429 are retried within the call; an answer after them is returned', async () => {
    seen.length = 0;
    script.push(503, 429);
    assert.equal((await client().get('/x')).status, 200);
    assert.equal(seen.length, 3);
  });
  it('transient past the attempts: SourceApiError transient naming the status and the attempts', async () => {
    script.push(500, 500, 500);
    await assert.rejects(client().get('/x'), (err: SourceApiError) => err.failureClass === 'transient' && err.code === 'SOURCE_API_500' && /after 3 attempts/.test(err.message));
  });
  it('401 is permanent at once, naming the key variable; 422 business', async () => {
    seen.length = 0;
    script.push(401);
    await assert.rejects(client().get('/x'), (err: SourceApiError) => err.failureClass === 'permanent' && /check SRC_KEY/.test(err.message));
    assert.equal(seen.length, 1, 'not retried');
    script.push(422);
    await assert.rejects(client().get('/x'), (err: SourceApiError) => err.failureClass === 'business');
  });
  it('nothing listening: transient, no answer', async () => {
    const c = createSourceClient('src', api, { SRC_BASE: 'http://127.0.0.1:9', SRC_KEY: 'k1' });
    await assert.rejects(c.get('/x'), (err: SourceApiError) => err.failureClass === 'transient' && err.code === 'SOURCE_API_UNREACHABLE');
  });
  it('an unset base URL or key: permanent, naming the variable', async () => {
    await assert.rejects(createSourceClient('src', api, { SRC_KEY: 'k' }).get('/x'), /set SRC_BASE/);
    await assert.rejects(createSourceClient('src', api, { SRC_BASE: base }).get('/x'), /set SRC_KEY/);
  });
});
