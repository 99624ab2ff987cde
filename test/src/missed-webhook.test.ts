// A webhook that never reached ingest: found by the source's change listing, delivered once.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Bus, Consumption } from '@bus/bus';
import { defineConnector, SchemaRegistry } from '@bus/connectors';
import { createDeliverer, createDeliverMetrics, resolveDelivery } from '@bus/delivery';
import { createIntake, createIntakeMetrics, pollSourceChanges } from '@bus/intake';
import { createMetrics } from '@bus/observability';
import { startNats, startTarget, type TestNats, type TestTarget, uniquePrefix, waitFor } from '@bus/testkit';
import { createTransformer, createTransformMetrics } from '@bus/transformer';
import { Webhook } from 'standardwebhooks';
import { Contact, contactSource } from './fixtures/contact-source.js';
import { silent, testBus } from './support.js';

const secret = `whsec_${Buffer.from('missed-webhook-secret').toString('base64')}`;
type Sent = { id: string; body: string };

/** The provider's side: every webhook it sent (delivered or not), listed oldest first after a cursor, two per page. */
async function provider() {
  const sent: Sent[] = [];
  const server: Server = createServer((req, res) => {
    const after = new URL(req.url ?? '/', 'http://p').searchParams.get('after');
    const from = after ? sent.findIndex((s) => s.id === after) + 1 : 0;
    const page = sent.slice(from, from + 2);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: page, more: from + 2 < sent.length }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, sent, close: () => new Promise((r) => server.close(r)) };
}

const source = contactSource({
  requiredEnv: ['PROVIDER_URL'],
  async list(checkpoint, ctx) {
    const res = await ctx.fetch(`${ctx.env.PROVIDER_URL}/sent?${checkpoint ? `after=${checkpoint}` : ''}`, { signal: ctx.signal });
    const page = (await res.json()) as { items: Sent[]; more: boolean };
    // the listed item is the webhook as it would have come: its body, and the header its id is read from
    return { items: page.items.map((s) => ({ payload: s.body, headers: { 'webhook-id': s.id } })), checkpoint: page.items.at(-1)?.id ?? checkpoint ?? '', more: page.more };
  },
});
const schemas = new SchemaRegistry().add('contact.updated', 1, Contact);
const crm = defineConnector({
  name: 'crm',
  subscribes: [{ type: 'contact.updated', map: (d) => ({ action: 'upsert', target: { type: 'contact', id: String(d.id) }, fields: { email: d.email } }) }],
  delivery: { kind: 'http', baseUrlEnv: 'CRM_BASE_URL', routes: { upsert: { method: 'PUT', path: '/contacts/{id}' } }, retry: { initialDelayMs: 50, jitter: 'none' }, ordering: 'latest' },
}, schemas);

describe('missed webhooks: the source listing finds what ingest never received', () => {
  let nats: TestNats;
  let bus: Bus;
  let target: TestTarget;
  let p: Awaited<ReturnType<typeof provider>>;
  const running: Consumption[] = [];
  before(async () => {
    nats = await startNats();
    bus = await testBus(nats.url, uniquePrefix());
    target = await startTarget();
    p = await provider();
    const registry = createMetrics('missed').registry;
    running.push(...(await createTransformer({ bus, connectors: [crm], schemas, log: silent, metrics: createTransformMetrics(registry) }).start()).values());
    running.push(await createDeliverer({ bus, delivery: resolveDelivery(crm, { CRM_BASE_URL: target.url }), log: silent, metrics: createDeliverMetrics(registry) }).start());
  });
  after(async () => {
    for (const c of running) await c.stop();
    await target.close();
    await p.close();
    await bus.close();
    await nats.stop({ removeStore: true });
  });

  const metrics = createIntakeMetrics(createMetrics('i').registry);
  const ingest = () => createIntake({ bus, sources: [source], env: { STANDARD_WEBHOOK_SECRET: secret }, log: silent, metrics });
  const listing = () => createIntake({ bus, sources: [source], env: {}, log: silent, metrics, webhooks: false });
  const poll = () => pollSourceChanges({ bus, intake: listing(), source, env: { PROVIDER_URL: p.url }, log: silent });
  function send(id: string, data: Record<string, unknown>, arrives: boolean) {
    const body = JSON.stringify({ type: 'contact.updated', data });
    p.sent.push({ id, body });
    if (!arrives) return undefined; // lost on the way: the provider thinks it sent it
    const at = new Date();
    return ingest().receive('standard', { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(secret).sign(id, at, body) }, Buffer.from(body));
  }

  it('a lost webhook is stored and delivered once; one that arrived is not delivered again; polling again stores nothing', async () => {
    assert.equal((await send('msg_1', { id: 'c-1', version: 1, email: 'one@example.com' }, true))?.status, 202);
    send('msg_2', { id: 'c-2', version: 1, email: 'two@example.com' }, false);
    assert.equal((await send('msg_3', { id: 'c-3', version: 1, email: 'three@example.com' }, true))?.status, 202);
    await waitFor(() => target.outcomes.size === 2, { what: 'the two webhooks that arrived, delivered' });

    const first = await poll();
    assert.equal(first.outcome, 'completed');
    assert.deepEqual([first.listed, first.stored, first.duplicates], [3, 1, 2]);
    await waitFor(() => target.calls.some((c) => c.path === '/contacts/c-2'), { what: 'the missed webhook delivered' });
    await waitFor(async () => (await bus.jsm.consumers.info(bus.names.streams.deliveries, 'deliver-crm')).num_ack_pending === 0, { what: 'deliver idle' });

    const again = await poll();
    assert.deepEqual([again.listed, again.stored], [0, 0], 'the checkpoint moved past what was stored');
    assert.equal(target.outcomes.size, 3, 'one business outcome per webhook');
    for (const id of ['c-1', 'c-2', 'c-3']) assert.equal(target.calls.filter((c) => c.path === `/contacts/${id}`).length, 1, `${id} delivered once`);
  });
});
