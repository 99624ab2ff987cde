import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BusError } from '@bus/errors';
import { JetStreamApiError } from '@nats-io/jetstream';
import { TimeoutError } from '@nats-io/nats-core';
import { outcomeOfError } from './consume.js';
import { classifyNatsError } from './nats-errors.js';

// Shapes a single test server cannot produce (a cluster without a leader, a full disk),
// built with the client's own error class, as its response parser builds them.
const api = (code: number, err_code: number, description: string) => new JetStreamApiError({ code, err_code, description });

describe('classifyNatsError: JetStream API answers by status and code', () => {
  it('503 / cluster not available / no leader → NATS_UNAVAILABLE, transient', () => {
    for (const e of [api(503, 10008, 'JetStream system temporarily unavailable'), api(500, 10009, 'JetStream cluster not leader'),
      api(500, 10118, 'stream is offline'), api(503, 10023, 'insufficient resources')]) {
      const c = classifyNatsError(e)!;
      assert.deepEqual([c.code, c.failureClass], ['NATS_UNAVAILABLE', 'transient'], e.message);
    }
  });

  it('a request JetStream refuses (400, message too large) → NATS_REJECTED, permanent', () => {
    const c = classifyNatsError(api(400, 10054, 'message size exceeds maximum allowed'))!;
    assert.deepEqual([c.code, c.failureClass], ['NATS_REJECTED', 'permanent']);
  });

  it('looks through a plain wrapper, never into a BusError; anything else is not a NATS error', () => {
    assert.equal(classifyNatsError(new Error('reading the lease failed', { cause: new TimeoutError() }))?.code, 'NATS_TIMEOUT');
    assert.equal(classifyNatsError(new BusError('X', 'permanent', 'decided', { cause: new TimeoutError() })), undefined);
    assert.equal(classifyNatsError(new TypeError('x is undefined')), undefined);
    assert.equal(classifyNatsError('str'), undefined);
  });

  it('consume: a thrown NATS blip is a retry; a missing stream and a bug are dead-letters', () => {
    assert.deepEqual(outcomeOfError(new TimeoutError(), 1, () => 10), { kind: 'retry', delayMs: 10, reason: classifyNatsError(new TimeoutError())!.message,
      failureClass: 'transient', code: 'NATS_TIMEOUT' });
    assert.equal(outcomeOfError(api(404, 10059, 'stream not found'), 1).kind, 'dead-letter');
    const bug = outcomeOfError(new TypeError('x is undefined'), 1);
    assert.equal(bug.kind === 'dead-letter' && bug.code, 'UNEXPECTED');
  });
});
