import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { createLogger, createMetrics, logFor, Readiness, startOpsServer, type OpsServer } from './index.js';

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
