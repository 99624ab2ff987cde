import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BusError, type FailureClass } from '@bus/errors';
import { appendAttempt, type AttemptRecord, decide, defineRetryPolicy, RetryExhaustedError } from './index.js';

const p = defineRetryPolicy({ maxAttempts: 3, jitter: 'none', initialDelayMs: 100 });
const at = '2026-11-25T12:00:00.000Z';

describe('decide: one place from failure class to handling', () => {
  it('transient → retry with the backoff until exhausted, then dead-letter with the count', () => {
    assert.deepEqual(decide(p, 1, 'transient'), { action: 'retry', delayMs: 100 });
    assert.deepEqual(decide(p, 2, 'transient'), { action: 'retry', delayMs: 200 });
    assert.deepEqual(decide(p, 3, 'transient'), { action: 'dead-letter', reason: 'attempts exhausted after 3 attempts' });
  });

  it('ambiguous → lookup-then-retry (same idempotency key) until exhausted, then dead-letter', () => {
    assert.deepEqual(decide(p, 1, 'ambiguous'), { action: 'lookup-then-retry', delayMs: 100 });
    assert.deepEqual(decide(p, 3, 'ambiguous'), { action: 'dead-letter', reason: 'attempts exhausted after 3 attempts' });
  });

  it('business → dead-letter at once, whatever attempts remain', () => {
    const d = decide(p, 1, 'business');
    assert.equal(d.action, 'dead-letter');
    assert.match(d.action === 'dead-letter' ? d.reason : '', /business failure/);
  });

  it('permanent → pause the connector (the message is dead-lettered too), at once', () => {
    const d = decide(p, 1, 'permanent');
    assert.equal(d.action, 'pause');
    assert.match(d.action === 'pause' ? d.reason : '', /permanent failure/);
  });

  it('every class has a decision, on the first and on the last attempt', () => {
    const classes: FailureClass[] = ['transient', 'business', 'permanent', 'ambiguous'];
    const first = classes.map((c) => decide(p, 1, c).action);
    const last = classes.map((c) => decide(p, 3, c).action);
    assert.deepEqual(first, ['retry', 'dead-letter', 'pause', 'lookup-then-retry']);
    assert.deepEqual(last, ['dead-letter', 'dead-letter', 'pause', 'dead-letter']);
  });

  it('Retry-After and random pass through to the delay', () => {
    assert.deepEqual(decide(p, 1, 'transient', { retryAfterMs: 5_000 }), { action: 'retry', delayMs: 5_000 });
    const j = defineRetryPolicy({ initialDelayMs: 1_000 });
    assert.deepEqual(decide(j, 1, 'ambiguous', { random: () => 0.5 }), { action: 'lookup-then-retry', delayMs: 500 });
  });

  it('takes the history instead of a number, counting attempts dropped from it', () => {
    let h: AttemptRecord[] = [];
    h = appendAttempt(h, { failureClass: 'transient', at });
    assert.deepEqual(decide(p, h, 'transient'), { action: 'retry', delayMs: 100 });
    const long = defineRetryPolicy({ maxAttempts: 60, jitter: 'none' });
    for (let i = 1; i < 60; i++) h = appendAttempt(h, { failureClass: 'transient', at });
    assert.equal(h.length, 50);
    assert.deepEqual(decide(long, h, 'transient'), { action: 'dead-letter', reason: 'attempts exhausted after 60 attempts' });
  });

  it('an empty history or an unknown class is a caller bug, said loudly', () => {
    assert.throws(() => decide(p, [], 'transient'), /RETRY_ATTEMPT_INVALID/);
    assert.throws(() => decide(p, 1, 'ok' as FailureClass), /RETRY_CLASS_UNKNOWN.*"ok"/);
  });
});

describe('RetryExhaustedError', () => {
  it('is a transient BusError with code RETRY_EXHAUSTED, yet final (not retryable)', () => {
    const last: AttemptRecord = { attempt: 8, failureClass: 'transient', status: 503, code: 'DELIVER_TRANSIENT', at };
    const cause = new Error('503');
    const err = new RetryExhaustedError({ what: 'delivery of contact 42 to crm', attempts: 8, last, cause });
    assert.ok(err instanceof BusError);
    assert.equal(err.name, 'RetryExhaustedError');
    assert.equal(err.code, 'RETRY_EXHAUSTED');
    assert.equal(err.failureClass, 'transient');
    assert.equal(err.retryable, false);
    assert.equal(err.attempts, 8);
    assert.equal(err.cause, cause);
    assert.match(err.message, /^\[RETRY_EXHAUSTED\] delivery of contact 42 to crm failed 8 attempts; not retried further\. Last: 503 DELIVER_TRANSIENT\. .*replay it/);
  });

  it('without a last record the message still reads', () => {
    assert.match(new RetryExhaustedError({ what: 'x', attempts: 2 }).message, /x failed 2 attempts; not retried further\. It is dead-lettered/);
  });
});
