import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, loadBusConfig, readStream } from '@bus/bus';
import { createHttpApp, createIntake, createIntakeMetrics, pollSourceChanges } from '@bus/intake';
import { createLogger, createMetrics, Readiness } from '@bus/observability';
import { startNats, type TestNats, uniquePrefix } from '@bus/testkit';
import { stripe } from './sources.js';

const log = createLogger({ service: 'stripe-events-test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const API_KEY = 'sk_test_listing';
const WEBHOOK_SECRET = 'whsec_listing_test';

interface StripeEvent {
  id: string;
  object: 'event';
  type: string;
  created: number;
  data: { object: { id: string; object: string } };
}

/**
 * Stripe's `GET /v1/events` on loopback, as documented: newest first; `starting_after` pages
 * to older events, `ending_before` to the `limit` events right after the cursor (newer);
 * `created[gte]` filters; a bearer key is required. `maxLimit` caps a page to make paging visible.
 */
async function fakeStripe(maxLimit: number) {
  const events: StripeEvent[] = []; // oldest first
  const requests: URLSearchParams[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://stripe');
    requests.push(url.searchParams);
    const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.headers.authorization !== `Bearer ${API_KEY}`) return json(401, { error: { message: 'Invalid API Key provided' } });
    if (url.pathname !== '/v1/events') return json(404, { error: { message: 'Unrecognized request URL' } });
    const q = url.searchParams;
    const limit = Math.min(Number(q.get('limit') ?? 10), maxLimit);
    const gte = Number(q.get('created[gte]') ?? 0);
    const list = events.filter((e) => e.created >= gte).toReversed(); // newest first
    const at = (id: string | null) => list.findIndex((e) => e.id === id);
    let data: StripeEvent[];
    let hasMore: boolean;
    if (q.get('ending_before')) {
      const newer = list.slice(0, Math.max(0, at(q.get('ending_before'))));
      data = newer.slice(-limit);
      hasMore = newer.length > limit;
    } else {
      const from = q.get('starting_after') ? at(q.get('starting_after')) + 1 : 0;
      data = list.slice(from, from + limit);
      hasMore = from + limit < list.length;
    }
    json(200, { object: 'list', url: '/v1/events', has_more: hasMore, data });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let n = 0;
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    add(ageSec = 60): StripeEvent {
      const e: StripeEvent = {
        id: `evt_${++n}_${Date.now()}`, object: 'event', type: 'customer.updated', created: Math.floor(Date.now() / 1000) - ageSec,
        data: { object: { id: `cus_${n}`, object: 'customer' } },
      };
      events.push(e);
      return e;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('demo stripe source: missed webhooks found in Stripe\'s events API', () => {
  let nats: TestNats;
  let bus: Bus;
  let api: Awaited<ReturnType<typeof fakeStripe>>;
  let intake: ReturnType<typeof createIntake>;
  let app: ReturnType<typeof createHttpApp>;
  before(async () => {
    nats = await startNats();
    const metrics = createMetrics('stripe-events-test');
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: uniquePrefix() }), name: 'stripe-events-test', log, metrics });
    await bus.applyTopology();
    intake = createIntake({ bus, sources: [stripe], env: { STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET }, log, metrics: createIntakeMetrics(metrics.registry) });
    app = createHttpApp({ intake, registry: metrics.registry, readiness: new Readiness() });
    api = await fakeStripe(2);
  });
  after(async () => {
    await api.close();
    await app.close();
    await bus.close();
    await nats.stop({ removeStore: true });
  });
  const env = () => ({ STRIPE_API_BASE: api.url, STRIPE_API_KEY: API_KEY, STRIPE_EVENTS_LOOKBACK_SEC: '3600' });
  const poll = (e: NodeJS.ProcessEnv = env()) => pollSourceChanges({ bus, intake, source: 'stripe', env: e, log });
  const storedIds = async () => {
    const ids: string[] = [];
    for await (const m of readStream(bus.jsm, bus.names.streams.events, { subject: (s) => s.startsWith(bus.names.subjects.event('stripe', '')) })) {
      ids.push(m.header?.get('Nats-Msg-Id') ?? '');
    }
    return ids;
  };
  const sendWebhook = async (e: StripeEvent) => {
    const payload = JSON.stringify(e);
    const t = Math.floor(Date.now() / 1000);
    const v1 = createHmac('sha256', WEBHOOK_SECRET).update(`${t}.${payload}`).digest('hex');
    return app.inject({ method: 'POST', url: '/webhooks/stripe', payload, headers: { 'content-type': 'application/json', 'stripe-signature': `t=${t},v1=${v1}` } });
  };

  it('STRIPE_API_KEY unset → skipped, the variable named, Stripe never called', async () => {
    const r = await poll({ STRIPE_API_BASE: api.url });
    assert.deepEqual([r.outcome, r.reason], ['skipped', 'STRIPE_API_KEY unset']);
    assert.equal(api.requests.length, 0);
  });

  it('a wrong key → failed with SOURCE_API_401 (the source\'s one client, shared with refetch) and what to check; nothing stored', async () => {
    const r = await poll({ ...env(), STRIPE_API_KEY: 'sk_wrong' });
    assert.equal(r.outcome, 'failed');
    assert.match(r.reason!, /SOURCE_API_401.*check STRIPE_API_KEY/);
  });

  it('first run backfills the lookback window page by page; a webhook that arrived is a duplicate; later runs go forward from the newest', async () => {
    api.add(7200); // older than the lookback: not listed
    const inWindow = [api.add(300), api.add(200), api.add(100), api.add(50), api.add(10)];
    assert.equal((await sendWebhook(inWindow[2]!)).statusCode, 202);

    const first = await poll();
    assert.equal(first.outcome, 'completed', first.reason);
    assert.deepEqual([first.listed, first.stored, first.duplicates, first.pages], [5, 4, 1, 3]);
    assert.equal(first.checkpoint, inWindow[4]!.id, 'after the backfill: the newest event');
    assert.deepEqual((await storedIds()).toSorted(), inWindow.map((e) => `stripe:${e.id}`).toSorted());

    const newer = [api.add(5), api.add(4), api.add(3)];
    const forward = await poll();
    assert.deepEqual([forward.outcome, forward.from, forward.stored, forward.duplicates, forward.pages], ['completed', inWindow[4]!.id, 3, 0, 2]);
    assert.equal(forward.checkpoint, newer[2]!.id);
    assert.ok(api.requests.at(-1)!.get('ending_before'), 'forward pages use ending_before');

    const quiet = await poll();
    assert.deepEqual([quiet.listed, quiet.stored, quiet.checkpoint], [0, 0, newer[2]!.id]);
    const ids = await storedIds();
    assert.equal(ids.length, 8);
    assert.equal(new Set(ids).size, 8, 'nothing stored twice');
  });
});
