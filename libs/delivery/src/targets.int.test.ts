import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { auditRecordsOf, type Bus, connectBus, type Consumption, loadBusConfig } from '@bus/bus';
import { type Connector, defineConnector, type DeliveryCommand } from '@bus/connectors';
import { encode } from '@bus/envelope';
import { createLogger, createMetrics } from '@bus/observability';
import { topology } from '@bus/streams';
import { startNats, startTarget, type TestNats, type TestTarget, uniquePrefix, waitFor } from '@bus/testkit';
import { Webhook } from 'standardwebhooks';
import { createDeliverer, createDeliverMetrics, resolveDelivery } from './index.js';

const silent = createLogger({ service: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const fastRetry = { initialDelayMs: 50, maxDelayMs: 200, maxAttempts: 5, attemptTimeoutMs: 400, jitter: 'none' };

let n = 0;
function command(connector: string, entity: string, version: number): DeliveryCommand {
  const eventId = `evt-${++n}`;
  return {
    id: `${connector}:${eventId}`, connector, action: 'upsert', target: { type: 'contact', id: entity }, fields: { email: `${entity}@example.com` },
    sourceOwned: ['email'], entity: { type: 'contact', id: entity }, version,
    event: { id: eventId, type: 'contact.updated', source: 'standard', occurredAt: new Date().toISOString(), schemaVersion: 1 },
    correlationId: `corr-${eventId}`, idempotencyKey: `${connector}:${eventId}`,
  };
}

describe('deliver: lookups, quota headers and the outbound webhook target', () => {
  let nats: TestNats;
  let bus: Bus;
  let target: TestTarget;
  const running: Consumption[] = [];
  const metrics = createDeliverMetrics(createMetrics('targets-test').registry);
  const start = async (connector: Connector, env: NodeJS.ProcessEnv) =>
    running.push(await createDeliverer({ bus, delivery: resolveDelivery(connector, env), log: silent, metrics, concurrency: 4 }).start());
  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'targets-test', log: silent, metrics: createMetrics('b') });
    await bus.applyTopology(topology({ prefix }));
    target = await startTarget();
  });
  after(async () => {
    await Promise.all(running.map((r) => r.stop()));
    await target.close();
    await bus.close();
    await nats.stop({ removeStore: true });
  });
  const send = (cmd: DeliveryCommand) =>
    bus.publish(bus.names.subjects.delivery(cmd.connector, 'contact'), encode(cmd), { msgId: cmd.id, headers: { 'Bus-Correlation-Id': cmd.correlationId } });
  const writes = (cmd: DeliveryCommand) => target.calls.filter((c) => c.method !== 'GET' && c.idempotencyKey === cmd.idempotencyKey);
  const lookups = (path: string) => target.calls.filter((c) => c.method === 'GET' && c.path === path);
  const auditFor = async (cmd: DeliveryCommand) => {
    const out: Array<{ outcome: string; reason?: string }> = [];
    for await (const r of auditRecordsOf(bus)) {
      if (r.eventId === cmd.event.id) out.push(r);
    }
    return out;
  };

  describe('HTTP target with a lookup route', () => {
    const crm = defineConnector({
      name: 'lookup', subscribes: [{ type: 'contact.updated', map: () => null }],
      delivery: { kind: 'http', baseUrlEnv: 'BASE', routes: { upsert: { method: 'PUT', path: '/{type}s/{id}' } }, lookup: { path: '/{type}s/{id}' },
        retry: fastRetry, ordering: 'strict' },
    });
    before(() => start(crm, { BASE: target.url }));

    it('applied, then no answer (ambiguous): the next attempt finds it by lookup and sends nothing again', async () => {
      target.script({ applyThenHang: true });
      const cmd = command('lookup', 'l1', 1);
      await send(cmd);
      await waitFor(async () => (await auditFor(cmd)).some((a) => a.outcome === 'delivered'), { what: 'delivered via lookup', timeoutMs: 5_000 });
      assert.equal(writes(cmd).length, 1, 'one write: the lookup showed it had landed');
      assert.equal(lookups('/contacts/l1').length, 1);
      assert.match((await auditFor(cmd)).find((a) => a.outcome === 'delivered')!.reason ?? '', /found at the target by lookup/);
    });

    it('no answer and not applied: the lookup finds nothing, so it is sent again with the same key, once', async () => {
      target.script({ hang: true });
      const cmd = command('lookup', 'l2', 1);
      await send(cmd);
      await waitFor(() => target.outcomes.has(cmd.idempotencyKey), { what: 'the second write', timeoutMs: 5_000 });
      assert.equal(writes(cmd).length, 2);
      assert.equal(new Set(writes(cmd).map((c) => c.idempotencyKey)).size, 1);
      assert.equal(lookups('/contacts/l2').length, 1, 'looked up once, between the two writes');
      assert.ok(lookups('/contacts/l2')[0]!.at >= writes(cmd)[0]!.at && lookups('/contacts/l2')[0]!.at <= writes(cmd)[1]!.at);
    });

    it('a transient 503 is not ambiguous: retried without a lookup', async () => {
      target.script({ status: 503 });
      const cmd = command('lookup', 'l3', 1);
      await send(cmd);
      await waitFor(() => target.outcomes.has(cmd.idempotencyKey), { what: 'the retry' });
      assert.equal(lookups('/contacts/l3').length, 0);
    });
  });

  describe('rate-limit headers', () => {
    const paced = defineConnector({
      name: 'paced', subscribes: [{ type: 'contact.updated', map: () => null }],
      delivery: { kind: 'http', baseUrlEnv: 'BASE', routes: { upsert: { method: 'PUT', path: '/paced/{id}' } }, retry: fastRetry,
        rateLimit: { ratePerSec: 100, burst: 10 }, ordering: 'none' },
    });
    before(() => start(paced, { BASE: target.url }));

    it('RateLimit-Remaining 0 with a reset: nothing is sent before the reset, although the answer was 200', async () => {
      target.script({ status: 200, headers: { 'ratelimit-remaining': '0', 'ratelimit-reset': '1' } });
      const first = command('paced', 'p1', 1);
      await send(first);
      await waitFor(() => target.outcomes.has(first.idempotencyKey), { what: 'the first call' });
      const second = command('paced', 'p2', 1);
      await send(second);
      await waitFor(() => target.outcomes.has(second.idempotencyKey), { what: 'the second call after the reset', timeoutMs: 5_000 });
      const gap = writes(second)[0]!.at - writes(first)[0]!.at;
      assert.ok(gap >= 900, `second call ${gap} ms after the first; the quota reset was 1 s`);
    });
  });

  describe('outbound webhooks, signed with Standard Webhooks', () => {
    const secret = `whsec_${Buffer.from('outbound-test-secret-0123456789').toString('base64')}`;
    const hooks = defineConnector({
      name: 'hooks', subscribes: [{ type: 'contact.updated', map: () => null }],
      delivery: { kind: 'webhook', urlEnv: 'HOOK_URL', secretEnv: 'HOOK_SECRET', retry: fastRetry, ordering: 'none' },
    });
    before(() => start(hooks, { HOOK_URL: `${target.url}/hooks`, HOOK_SECRET: secret }));

    it('500 then 200: both attempts carry the same webhook-id, and each verifies with the standardwebhooks library', async () => {
      target.script({ status: 500 });
      const cmd = command('hooks', 'w1', 3);
      await send(cmd);
      const calls = await waitFor(() => {
        const c = target.calls.filter((x) => x.path === '/hooks' && x.headers['webhook-id'] === cmd.idempotencyKey);
        return c.length === 2 ? c : undefined;
      }, { what: 'two webhook attempts' });
      const verifier = new Webhook(secret);
      for (const c of calls) {
        const payload = verifier.verify(JSON.stringify(c.body), c.headers as Record<string, string>) as { type: string; data: { key: unknown; version: number; fields: unknown } };
        assert.equal(payload.type, 'contact.upsert');
        assert.deepEqual(payload.data.key, { type: 'contact', id: 'w1' });
        assert.equal(payload.data.version, 3);
        assert.deepEqual(payload.data.fields, { email: 'w1@example.com' });
      }
    });

    it('a tampered body does not verify (the signature covers it)', async () => {
      const cmd = command('hooks', 'w2', 1);
      await send(cmd);
      const call = await waitFor(() => target.calls.find((x) => x.headers['webhook-id'] === cmd.idempotencyKey), { what: 'the webhook' });
      const tampered = JSON.stringify({ ...(call.body as object), type: 'contact.delete' });
      assert.throws(() => new Webhook(secret).verify(tampered, call.headers as Record<string, string>));
    });

    it('refuses to start with a malformed secret, naming the variable', () => {
      assert.throws(() => resolveDelivery(hooks, { HOOK_URL: 'http://127.0.0.1:1/', HOOK_SECRET: 'not-a-secret' }), /secret/);
      assert.throws(() => resolveDelivery(hooks, { HOOK_URL: 'http://127.0.0.1:1/' }), /HOOK_SECRET/);
    });
  });
});
