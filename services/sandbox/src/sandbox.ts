import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { addFakeStripe } from './stripe.js';

/** One demo target system: records by type and id, in memory. */
interface Store {
  records: Map<string, { version: number; fields: Record<string, unknown>; appliedKeys: string[] }>;
  keys: Map<string, number>;
}

/**
 * Demo targets for `npm start`: `/crm/...` (API key, 20 requests/s, then 429 with
 * Retry-After) and `/warehouse/...` (OAuth2 bearer tokens from `/oauth/token`, client
 * credentials, when a warehouse client is configured). Both honour Idempotency-Key (a
 * repeated key is answered from memory, not applied again) and refuse a version older than
 * the stored one with 409, like real systems with optimistic concurrency. Not a library: a demo.
 */
export function createSandbox(opts: { crmApiKey: string; crmRatePerSec?: number; warehouseClient?: { id: string; secret: string; tokenTtlSec?: number };
  /** A fake of Stripe's customers and events API under /stripe (stripe.ts), with this API key; `seed`: one demo customer. */
  stripe?: { apiKey: string; seed?: boolean } }): FastifyInstance {
  const app = Fastify({ logger: false });
  const tokens = new Map<string, number>(); // access token → expiry (ms)
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))));
  app.post<{ Body: Record<string, string> }>('/oauth/token', async (req, reply) => {
    const client = opts.warehouseClient;
    const [id, secret] = Buffer.from(String(req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString().split(':').map(decodeURIComponent);
    if (!client || id !== client.id || secret !== client.secret) return reply.status(401).send({ error: 'invalid_client' });
    if (req.body?.grant_type !== 'client_credentials') return reply.status(400).send({ error: 'unsupported_grant_type' });
    const token = randomBytes(16).toString('hex');
    const ttl = client.tokenTtlSec ?? 300;
    tokens.set(token, Date.now() + ttl * 1_000);
    return { access_token: token, token_type: 'Bearer', expires_in: ttl };
  });
  if (opts.stripe) addFakeStripe(app, opts.stripe);
  const stores = { crm: { records: new Map(), keys: new Map() }, warehouse: { records: new Map(), keys: new Map() } } as Record<string, Store>;
  let windowStart = Date.now();
  let inWindow = 0;

  app.addHook('onRequest', async (req, reply) => {
    if (req.url.startsWith('/warehouse/') && opts.warehouseClient) {
      const expires = tokens.get(String(req.headers.authorization ?? '').replace(/^Bearer /, ''));
      if (!expires || expires < Date.now()) return reply.status(401).send({ error: 'invalid_token' });
      return;
    }
    if (!req.url.startsWith('/crm/')) return;
    if (req.headers['x-api-key'] !== opts.crmApiKey) return reply.status(401).send({ error: 'bad api key' });
    if (Date.now() - windowStart >= 1_000) {
      windowStart = Date.now();
      inWindow = 0;
    }
    if (++inWindow > (opts.crmRatePerSec ?? 20)) return reply.status(429).header('retry-after', '1').send({ error: 'rate limit' });
  });

  app.put<{ Params: { system: string; type: string; id: string }; Body: { version: number; fields: Record<string, unknown> } }>(
    '/:system/:type/:id', async (req, reply) => {
      const store = stores[req.params.system];
      if (!store) return reply.status(404).send({ error: 'no such system' });
      const key = String(req.headers['idempotency-key'] ?? '');
      if (key && store.keys.has(key)) return reply.status(200).send({ status: 'already applied', version: store.keys.get(key) });
      const id = `${req.params.type}/${req.params.id}`;
      const current = store.records.get(id);
      if (current && current.version > req.body.version) return reply.status(409).send({ error: `have version ${current.version}` });
      store.records.set(id, { version: req.body.version, fields: { ...current?.fields, ...req.body.fields }, appliedKeys: [...(current?.appliedKeys ?? []), key] });
      if (key) store.keys.set(key, req.body.version);
      return reply.status(200).send({ status: 'applied', version: req.body.version });
    });
  app.get<{ Params: { system: string; type: string; id: string } }>('/:system/:type/:id', async (req, reply) => {
    const r = stores[req.params.system]?.records.get(`${req.params.type}/${req.params.id}`);
    return r ? r : reply.status(404).send({ error: 'not found' });
  });
  app.get<{ Params: { system: string } }>('/:system', async (req, reply) => {
    const store = stores[req.params.system];
    return store ? Object.fromEntries(store.records) : reply.status(404).send({ error: 'no such system' });
  });
  return app;
}
