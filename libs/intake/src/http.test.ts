import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger, createMetrics, Readiness } from '@bus/observability';
import { createHttpApp } from './http.js';
import type { Intake } from './intake.js';

/** A logger whose lines the test reads back. */
function capturedLog(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, log: createLogger({ service: 'ingest', level, destination }) };
}

/** An intake whose receive fails the way a bug would: the HTTP layer's error handler answers. */
const failing = { sources: new Map(), receive: async () => { throw new Error('boom: a bug in a source extractor'); } } as unknown as Intake;

describe('ingest HTTP: logs through the service logger', () => {
  it('a 5xx is logged at error with its correlation id, the one the answer carries', async () => {
    const { lines, log } = capturedLog();
    const app = createHttpApp({ intake: failing, registry: createMetrics('t').registry, readiness: new Readiness(), log });
    const res = await app.inject({ method: 'POST', url: '/webhooks/standard', payload: '{}', headers: { 'content-type': 'application/json', 'x-correlation-id': 'corr-500' } });
    assert.equal(res.statusCode, 500);
    assert.equal(res.headers['x-correlation-id'], 'corr-500');
    const line = lines.find((l) => l.level === 50);
    assert.ok(line, `an error line: ${JSON.stringify(lines)}`);
    assert.equal(line.correlationId, 'corr-500');
    assert.equal(line.status, 500);
    assert.match(String((line.err as { message: string }).message), /boom/);
    await app.close();
  });

  it('without a correlation id header, the 5xx log line and the answer agree on a generated one', async () => {
    const { lines, log } = capturedLog();
    const app = createHttpApp({ intake: failing, registry: createMetrics('t').registry, readiness: new Readiness(), log });
    const res = await app.inject({ method: 'POST', url: '/webhooks/standard', payload: '{}', headers: { 'content-type': 'application/json' } });
    assert.ok(res.headers['x-correlation-id']);
    assert.equal(lines.find((l) => l.level === 50)?.correlationId, res.headers['x-correlation-id']);
    await app.close();
  });

  it('at debug every request is logged: method, path without query, status, correlation id; never headers', async () => {
    const { lines, log } = capturedLog('debug');
    const app = createHttpApp({ intake: failing, registry: createMetrics('t').registry, readiness: new Readiness(), log });
    await app.inject({ method: 'GET', url: '/healthz?token=abc', headers: { 'x-correlation-id': 'corr-h', authorization: 'Bearer s3cret' } });
    const line = lines.find((l) => l.msg === 'request');
    assert.deepEqual([line?.method, line?.path, line?.status, line?.correlationId], ['GET', '/healthz', 200, 'corr-h']);
    assert.ok(!JSON.stringify(lines).includes('s3cret') && !JSON.stringify(lines).includes('abc'));
    await app.close();
  });
});
