import type { FastifyInstance } from 'fastify';

interface Customer {
  id: string;
  object: 'customer';
  email?: string | null;
  name?: string | null;
  created: number;
  deleted?: true;
}
interface StripeEvent {
  id: string;
  object: 'event';
  type: string;
  created: number;
  data: { object: Customer };
}

/**
 * A small fake of Stripe's customers and events endpoints under `/stripe` (`STRIPE_API_BASE=<sandbox>/stripe`):
 * `GET /v1/customers/{id}` (a deleted one answers `deleted: true`, an unknown one 404), `GET /v1/events` (newest
 * first; `limit`, `ending_before`, `starting_after`, `created[gte]`, `has_more`), and the writes that make events:
 * `POST /v1/customers` (create), `POST /v1/customers/{id}` (update), `DELETE /v1/customers/{id}`. Bearer `apiKey`
 * required, like Stripe's. Enough for the demo stripe source to poll and refetch; not Stripe.
 */
export function addFakeStripe(app: FastifyInstance, opts: { apiKey: string; seed?: boolean }) {
  const customers = new Map<string, Customer>();
  const events: StripeEvent[] = []; // oldest first
  let n = 0;
  const now = () => Math.floor(Date.now() / 1000);
  const record = (type: string, c: Customer) => events.push({ id: `evt_${String(++n).padStart(6, '0')}${Date.now().toString(36)}`, object: 'event', type, created: now(), data: { object: { ...c } } });
  const write = (c: Customer, body: Record<string, unknown>) => {
    if (typeof body.email === 'string') c.email = body.email;
    if (typeof body.name === 'string') c.name = body.name;
  };

  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith('/stripe/')) return;
    if (req.headers.authorization !== `Bearer ${opts.apiKey}`) {
      return reply.status(401).send({ error: { type: 'invalid_request_error', message: 'Invalid API Key provided' } });
    }
  });
  app.get<{ Params: { id: string } }>('/stripe/v1/customers/:id', async (req, reply) => {
    const c = customers.get(req.params.id);
    if (!c) return reply.status(404).send({ error: { type: 'invalid_request_error', code: 'resource_missing', message: `No such customer: '${req.params.id}'` } });
    return c.deleted ? { id: c.id, object: 'customer', deleted: true } : c;
  });
  app.post<{ Body: Record<string, unknown> }>('/stripe/v1/customers', async (req) => {
    const body = req.body ?? {};
    const c: Customer = { id: typeof body.id === 'string' ? body.id : `cus_${Date.now().toString(36)}${++n}`, object: 'customer', created: now() };
    write(c, body);
    customers.set(c.id, c);
    record('customer.created', c);
    return c;
  });
  app.post<{ Params: { id: string }; Body: Record<string, unknown> }>('/stripe/v1/customers/:id', async (req, reply) => {
    const c = customers.get(req.params.id);
    if (!c || c.deleted) return reply.status(404).send({ error: { type: 'invalid_request_error', code: 'resource_missing' } });
    write(c, req.body ?? {});
    record('customer.updated', c);
    return c;
  });
  app.delete<{ Params: { id: string } }>('/stripe/v1/customers/:id', async (req, reply) => {
    const c = customers.get(req.params.id);
    if (!c || c.deleted) return reply.status(404).send({ error: { type: 'invalid_request_error', code: 'resource_missing' } });
    c.deleted = true;
    record('customer.deleted', c);
    return { id: c.id, object: 'customer', deleted: true };
  });
  app.get<{ Querystring: Record<string, string> }>('/stripe/v1/events', async (req) => {
    const q = req.query;
    const limit = Math.min(100, Math.max(1, Number(q.limit ?? 10)));
    const since = q['created[gte]'] ? Number(q['created[gte]']) : undefined;
    let list = events.filter((e) => since === undefined || e.created >= since); // oldest first
    if (q.ending_before) {
      // newer than it: the `limit` closest to it, answered newest first
      const i = list.findIndex((e) => e.id === q.ending_before);
      const newer = list.slice(i + 1);
      const page = newer.slice(0, limit);
      return { object: 'list', data: page.toReversed(), has_more: newer.length > page.length };
    }
    list = list.toReversed(); // newest first
    if (q.starting_after) list = list.slice(list.findIndex((e) => e.id === q.starting_after) + 1);
    return { object: 'list', data: list.slice(0, limit), has_more: list.length > limit };
  });
  if (opts.seed) {
    const c: Customer = { id: 'cus_demo', object: 'customer', email: 'grace@example.com', name: 'Grace Hopper', created: now() };
    customers.set(c.id, c);
    record('customer.created', c);
  }
  return { customers, events };
}
