import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { createLogger, createMetrics, logFor, personalFields, Readiness, SECRET_HEADERS, startOpsServer, type OpsServer } from './index.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, destination };
}

describe('logger', () => {
  it('every line of a child carries the correlation id and the service', () => {
    const { lines, destination } = capture();
    const log = logFor(createLogger({ service: 'ingest', destination }), { correlationId: 'c-1', eventId: 'e-1' });
    log.info({ attempt: 2 }, 'stored');
    assert.equal(lines[0]?.correlationId, 'c-1');
    assert.equal(lines[0]?.service, 'ingest');
    assert.equal(lines[0]?.msg, 'stored');
  });

  it('tokens, secrets, signatures and authorization headers never reach a line', () => {
    const { lines, destination } = capture();
    const log = createLogger({ service: 't', destination, redact: ['*.email'] });
    log.info(
      {
        req: { headers: { authorization: 'Bearer abc.def' } },
        oauth: { accessToken: 'tok-123', refreshToken: 'ref-456', clientSecret: 'shh' },
        webhook: { signature: 'v1,sig==', secret: 'whsec_x' },
        contact: { email: 'a@b.c' },
      },
      'x',
    );
    const text = JSON.stringify(lines);
    for (const secret of ['abc.def', 'tok-123', 'ref-456', 'shh', 'sig==', 'whsec_x', 'a@b.c']) {
      assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    }
  });
});

describe('logger redaction', () => {
  it('every signature and key header is censored wherever headers are logged', () => {
    const { lines, destination } = capture();
    const log = createLogger({ service: 't', destination });
    const headers = Object.fromEntries(SECRET_HEADERS.map((h) => [h, `secret-${h}`]));
    log.info({ headers, req: { headers }, err: { response: { headers } } }, 'x');
    log.info(headers, 'top level');
    const text = JSON.stringify(lines);
    for (const h of ['x-api-key', 'stripe-signature', 'x-hub-signature-256', 'webhook-signature', 'authorization', 'cookie']) {
      assert.ok(!text.includes(`secret-${h}"`), `${h} leaked: ${text}`);
    }
    assert.equal((lines[0]!.headers as Record<string, string>)['x-api-key'], '[redacted]');
  });

  it('configured personal fields are censored at any of the first three levels; LOG_REDACT_FIELDS sets them', () => {
    assert.deepEqual(personalFields({}), ['email', 'phone']);
    assert.deepEqual(personalFields({ LOG_REDACT_FIELDS: 'email, iban' }), ['email', 'iban']);
    assert.deepEqual(personalFields({ LOG_REDACT_FIELDS: '' }), []);
    const { lines, destination } = capture();
    const log = createLogger({ service: 't', destination, personalFields: ['email', 'iban'] });
    log.info({ email: 'a@b.c', contact: { iban: 'DE001' }, payload: { customer: { email: 'x@y.z' } }, connector: 'crm' }, 'x');
    const text = JSON.stringify(lines);
    for (const v of ['a@b.c', 'DE001', 'x@y.z']) assert.ok(!text.includes(v), `${v} leaked: ${text}`);
    assert.equal(lines[0]?.connector, 'crm');
  });
});

describe('ops server', () => {
  let ops: OpsServer;
  const readiness = new Readiness();
  const metrics = createMetrics('test');
  after(() => ops.close());

  it('/healthz answers, /readyz says why it is not ready, /metrics has the bus metric names', async () => {
    readiness.require('nats', 'connecting to nats://127.0.0.1:4222');
    ops = await startOpsServer({ port: 0, registry: metrics.registry, readiness });
    assert.equal((await fetch(`${ops.url}/healthz`)).status, 200);

    const notReady = await fetch(`${ops.url}/readyz`);
    assert.equal(notReady.status, 503);
    const body = (await notReady.json()) as { checks: { name: string; reason: string }[] };
    assert.deepEqual(body.checks, [{ name: 'nats', ok: false, reason: 'connecting to nats://127.0.0.1:4222' }]);

    readiness.set('nats', true);
    assert.equal((await fetch(`${ops.url}/readyz`)).status, 200);

    metrics.published.inc({ stream: 'EVENTS', outcome: 'stored' });
    const text = await (await fetch(`${ops.url}/metrics`)).text();
    assert.match(text, /bus_published_total\{stream="EVENTS",outcome="stored",service="test"\} 1/);
    assert.equal((await fetch(`${ops.url}/nope`)).status, 404);
  });
});
