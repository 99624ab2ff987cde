import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { TargetReadError, type TargetRecord } from '../target.js';
import { createHttpTarget, HttpTargetSettings } from './http.js';
import { HttpListRoute, httpList } from './http-list.js';

/** 23 contacts at a real HTTP server, listed by keyset (`after`) or by an opaque cursor; `/broken` answers what it is told. */
describe('http target: the list route (keyset and cursor pages)', () => {
  const ids = Array.from({ length: 23 }, (_, i) => `c${String(i).padStart(2, '0')}`);
  let server: Server;
  let base: string;
  const seen: string[] = [];
  let broken: { status: number; body: string } = { status: 200, body: '{}' };
  before(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      seen.push(`${url.pathname}${url.search} ${req.headers['x-api-key'] ?? ''}`);
      const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));
      if (url.pathname === '/broken') return send(broken.status, broken.body);
      const limit = Number(url.searchParams.get('limit') ?? url.searchParams.get('page_size'));
      const record = (id: string) => ({ id, meta: { version: 3 }, email: `${id}@example.com` });
      if (url.pathname === '/contacts') {
        const after = url.searchParams.get('after');
        return send(200, { records: ids.filter((id) => after === null || id > after).slice(0, limit).map(record) });
      }
      if (url.pathname === '/v2/contacts') {
        const from = Number(Buffer.from(url.searchParams.get('cursor') ?? 'MA==', 'base64').toString());
        const page = ids.slice(from, from + limit);
        const next = from + limit < ids.length ? Buffer.from(String(from + limit)).toString('base64') : null;
        return send(200, { data: { items: page.map(record) }, paging: { next } });
      }
      send(404, { error: 'no such route' });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const all = async (list: ReturnType<typeof httpList>, limit: number) => {
    const out: TargetRecord[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 50; pages++) {
      const page = await list('contact', { after, limit }, { timeoutMs: 2_000, headers: { 'x-api-key': 'k' } });
      out.push(...page.records);
      after = page.next;
      if (after === undefined) return { records: out, pages: pages + 1 };
    }
    throw new Error('more than 50 pages: the listing does not end');
  };

  it('keyset: pages after the last id until a short page; versions and fields from the declared paths; headers sent', async () => {
    const route = HttpListRoute.parse({ path: '/contacts', paging: { kind: 'keyset' }, versionField: 'meta.version' });
    const { records, pages } = await all(httpList(route, { baseUrl: base, headers: {} }), 10);
    assert.deepEqual(records.map((r) => r.key.id), ids);
    assert.equal(pages, 3);
    assert.deepEqual(records[0], { key: { type: 'contact', id: 'c00' }, version: 3, fields: { id: 'c00', meta: { version: 3 }, email: 'c00@example.com' } });
    assert.ok(seen.includes('/contacts?limit=10&after=c09 k'), seen.join('\n'));
  });

  it('an http connector that declares a list route pages through it with its own auth header (reconcile finds records unknown to the source)', async () => {
    const s = HttpTargetSettings.parse({ kind: 'http', baseUrlEnv: 'CRM_BASE_URL', routes: { upsert: { method: 'PUT', path: '/contacts/{id}' } },
      auth: { kind: 'api-key', header: 'x-api-key', env: 'CRM_API_KEY' }, list: { path: '/contacts', paging: { kind: 'keyset' }, versionField: 'meta.version' } });
    const target = createHttpTarget(s, { CRM_BASE_URL: base, CRM_API_KEY: 'from-env' }, (what) => new Error(`missing ${what}`));
    assert.ok(target.list, 'the target lists');
    const page = await target.list('contact', { limit: 5 }, { timeoutMs: 2_000 });
    assert.deepEqual(page.records.map((r) => r.key.id), ids.slice(0, 5));
    assert.ok(seen.includes('/contacts?limit=5 from-env'), seen.join('\n'));
    const without = createHttpTarget(HttpTargetSettings.parse({ ...s, list: undefined }), { CRM_BASE_URL: base, CRM_API_KEY: 'k' }, (what) => new Error(what));
    assert.equal(without.list, undefined);
  });

  it('cursor: the answer\'s cursor goes back as given until there is none', async () => {
    const route = HttpListRoute.parse({ path: '/v2/{type}s', paging: { kind: 'cursor', nextField: 'paging.next', limitParam: 'page_size' }, recordsField: 'data.items',
      versionField: 'meta.version' });
    const { records, pages } = await all(httpList(route, { baseUrl: base, headers: {} }), 10);
    assert.deepEqual(records.map((r) => r.key.id), ids);
    assert.equal(pages, 3);
  });

  it('failures are classified: 503 and 429 transient, 403 permanent, a wrong shape permanent naming the setting', async () => {
    const list = httpList(HttpListRoute.parse({ path: '/broken', paging: { kind: 'keyset' } }), { baseUrl: base, headers: {} });
    const read = () => list('contact', { limit: 5 }, { timeoutMs: 2_000 });
    for (const [status, failureClass] of [[503, 'transient'], [429, 'transient'], [403, 'permanent']] as const) {
      broken = { status, body: '{}' };
      await assert.rejects(read(), (e: unknown) => e instanceof TargetReadError && e.failureClass === failureClass && e.status === status);
    }
    broken = { status: 200, body: '{"items": []}' };
    await assert.rejects(read(), /no array at "records"; check the connector's list.recordsField/);
    broken = { status: 200, body: '{"records": [{"version": 1}]}' };
    await assert.rejects(read(), /record 0 has no id at "id"/);
    broken = { status: 200, body: 'not json' };
    await assert.rejects(read(), /not JSON/);
  });

  it('a declared route is checked when the connector is defined', () => {
    assert.throws(() => HttpListRoute.parse({ path: 'contacts', paging: { kind: 'keyset' } }));
    assert.throws(() => HttpListRoute.parse({ path: '/c', paging: { kind: 'offset' } }));
    assert.throws(() => HttpListRoute.parse({ path: '/c', paging: { kind: 'keyset', afterParam: 'a b' } }));
  });
});
