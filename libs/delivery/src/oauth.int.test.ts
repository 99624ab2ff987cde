import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { tokenState } from '@bus/auth';
import { type Bus, connectBus, type Consumption, decodeDeadLetter, loadBusConfig, readStream } from '@bus/bus';
import { defineConnector, type DeliveryCommand } from '@bus/connectors';
import { encode } from '@bus/envelope';
import { createLogger, createMetrics } from '@bus/observability';
import { topology } from '@bus/streams';
import { startNats, startTarget, startTokenServer, type TestNats, type TestTarget, type TestTokenServer, uniquePrefix, waitFor } from '@bus/testkit';
import { OAuth2Server } from 'oauth2-mock-server';
import { createDeliverer, createDeliverMetrics, resolveDelivery } from './index.js';

const lines: string[] = [];
const log = createLogger({ service: 'test', level: 'debug', destination: { write: (l: string) => void lines.push(l) } as never });
const connector = defineConnector({
  name: 'oauthcrm',
  subscribes: [{ type: 'contact.updated', map: () => null }],
  delivery: {
    kind: 'http', baseUrlEnv: 'OCRM_URL', routes: { upsert: { method: 'PUT', path: '/contacts/{id}' } },
    auth: { kind: 'oauth2-client-credentials', tokenUrlEnv: 'OCRM_TOKEN_URL', clientIdEnv: 'OCRM_CLIENT_ID', clientSecretEnv: 'OCRM_CLIENT_SECRET' },
    retry: { initialDelayMs: 50, jitter: 'none', maxAttempts: 3, attemptTimeoutMs: 500 },
  },
});
const cmd = (id: string): DeliveryCommand => ({
  id: `oauthcrm:evt-${id}`, connector: 'oauthcrm', action: 'upsert', target: { type: 'contact', id }, fields: { email: 'o@example.com' }, sourceOwned: ['email'],
  entity: { type: 'contact', id }, version: 1, event: { id: `evt-${id}`, type: 'contact.updated', source: 't', occurredAt: new Date().toISOString(), schemaVersion: 1 },
  correlationId: `corr-${id}`, idempotencyKey: `oauthcrm:evt-${id}`,
});

describe('deliver with OAuth2 (oauth2-mock-server)', () => {
  let nats: TestNats;
  let bus: Bus;
  let target: TestTarget;
  let oauth: OAuth2Server;
  let running: Consumption;
  let deliverer: ReturnType<typeof createDeliverer>;
  let refuse = false;
  let issued = 0;
  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 't', log });
    await bus.applyTopology(topology({ prefix }));
    oauth = new OAuth2Server();
    await oauth.issuer.keys.generate('RS256');
    await oauth.start(0, '127.0.0.1');
    oauth.service.on('beforeTokenSigning', (t: { payload: Record<string, unknown> }) => {
      t.payload.jti = `${Math.random()}`;
    });
    oauth.service.on('beforeResponse', (r: { statusCode: number; body: unknown }) => {
      if (refuse) {
        r.statusCode = 401;
        r.body = { error: 'invalid_client' };
      } else issued++;
    });
    target = await startTarget();
    const env = { OCRM_URL: target.url, OCRM_TOKEN_URL: `${oauth.issuer.url}/token`, OCRM_CLIENT_ID: 'bus', OCRM_CLIENT_SECRET: 'sup3r-s3cret' };
    deliverer = createDeliverer({ bus, delivery: resolveDelivery(connector, env), log, metrics: createDeliverMetrics(createMetrics('d').registry) });
    running = await deliverer.start();
  });
  after(async () => {
    await running.stop();
    await target.close();
    await oauth.stop();
    await bus.close();
    await nats.stop({ removeStore: true });
  });
  const send = (c: DeliveryCommand) => bus.publish(bus.names.subjects.delivery('oauthcrm', 'contact'), encode(c), { msgId: c.id, headers: { 'Bus-Correlation-Id': c.correlationId } });

  it('credentials are checked at start: a token is fetched', async () => {
    assert.equal(await deliverer.checkCredentials(), undefined);
    assert.ok((deliverer.tokenExpiresAtMs() ?? 0) > Date.now());
  });

  it('a 401 with a token that refreshes: renewed once, delivered, and no token or secret in any log line', async () => {
    const before = issued;
    target.script({ status: 401 });
    const c = cmd('o1');
    await send(c);
    await waitFor(() => target.outcomes.has(c.idempotencyKey), { what: 'the delivery after the renewal' });
    const [first, second] = target.calls.filter((x) => x.idempotencyKey === c.idempotencyKey);
    assert.match(String(first!.headers.authorization), /^Bearer /);
    assert.notEqual(first!.headers.authorization, second!.headers.authorization);
    assert.equal(issued - before, 1);
    const text = lines.join('\n');
    for (const call of target.calls) assert.ok(!text.includes(String(call.headers.authorization).slice(7)), 'no token in logs');
    assert.ok(!text.includes('sup3r-s3cret'));
  });

  it('the refresh failing: DLQ as permanent, connector paused, and the reason says what to fix', async () => {
    refuse = true;
    target.script({ status: 401 });
    const c = cmd('o2');
    await send(c);
    const entry = await waitFor(async () => {
      for await (const m of readStream(bus.jsm, bus.names.streams.dlq)) {
        const e = decodeDeadLetter(m.data);
        if (e.correlationId === c.correlationId) return e;
      }
      return undefined;
    }, { what: 'the DLQ entry' });
    assert.equal(entry.failureClass, 'permanent');
    assert.match(entry.reason, /OCRM_CLIENT_ID \/ OCRM_CLIENT_SECRET/);
    await waitFor(() => deliverer.paused() !== undefined, { what: 'the pause' });
    refuse = false;
  });
});

describe('deliver with OAuth2 refresh tokens (a rotating provider)', () => {
  let nats: TestNats;
  let bus: Bus;
  let target: TestTarget;
  let tokens: TestTokenServer;
  let running: Consumption | undefined;
  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 't', log });
    await bus.applyTopology(topology({ prefix }));
    tokens = await startTokenServer();
    target = await startTarget();
  });
  after(async () => {
    await running?.stop();
    await target.close();
    await tokens.close();
    await bus.close();
    await nats.stop({ removeStore: true });
  });

  it('a refresh in doubt is not a delivery in doubt: retried as transient, never looked up at the target, delivered once the token comes', async () => {
    const rot = defineConnector({
      name: 'rotcrm',
      subscribes: [{ type: 'contact.updated', map: () => null }],
      delivery: {
        kind: 'http', baseUrlEnv: 'R_URL', routes: { upsert: { method: 'PUT', path: '/contacts/{id}' } }, lookup: { path: '/contacts/{id}' },
        auth: { kind: 'oauth2-refresh-token', tokenUrlEnv: 'R_TOKEN_URL', clientIdEnv: 'R_ID', clientSecretEnv: 'R_SECRET', refreshTokenEnv: 'R_REFRESH', requestTimeoutMs: 1_000 },
        retry: { initialDelayMs: 100, jitter: 'none', maxAttempts: 5, attemptTimeoutMs: 2_000 },
      },
    });
    const env = { R_URL: target.url, R_TOKEN_URL: tokens.url, R_ID: tokens.clientId, R_SECRET: tokens.clientSecret, R_REFRESH: tokens.consent() };
    // the endpoint is overloaded: the first request is answered after the 1 s timeout, and never processed
    tokens.setDelay(1_500, 'answer');
    const deliverer = createDeliverer({ bus, delivery: resolveDelivery(rot, env), log, metrics: createDeliverMetrics(createMetrics('d').registry) });
    running = await deliverer.start();
    const c: DeliveryCommand = { ...cmd('r1'), id: 'rotcrm:evt-r1', connector: 'rotcrm', idempotencyKey: 'rotcrm:evt-r1' };
    await bus.publish(bus.names.subjects.delivery('rotcrm', 'contact'), encode(c), { msgId: c.id, headers: { 'Bus-Correlation-Id': c.correlationId } });
    const kv = await bus.kv(bus.names.kv.tokens);
    await waitFor(async () => (await tokenState(kv, 'rotcrm')).inDoubt, { what: 'the refresh noted in doubt' });
    tokens.setDelay(0);
    await waitFor(() => target.outcomes.has(c.idempotencyKey), { what: 'the delivery with the token of the retried refresh', timeoutMs: 15_000 });
    await waitFor(() => tokens.requests.some((r) => r.outcome === 'dropped'), { what: 'the endpoint dropping the request it never served' });
    assert.deepEqual(target.calls.filter((x) => x.path === '/contacts/r1').map((x) => x.method), ['PUT'], 'no lookup: nothing had been sent');
    assert.equal(tokens.reuses(), 0);
    assert.ok(tokens.accepts(String(target.calls.find((x) => x.path === '/contacts/r1')!.headers.authorization).slice(7)));
  });
});
