import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decide, defineRetryPolicy, MAX_RETRY_AFTER_MS, mergeRetryPolicy, nextDelay, parseRetryAfter } from './index.js';

describe('retry policy', () => {
  it('fills documented defaults and freezes the result', () => {
    const p = defineRetryPolicy();
    assert.deepEqual({ ...p }, { kind: 'exponential', initialDelayMs: 500, multiplier: 2, maxDelayMs: 60_000, jitter: 'full', maxAttempts: 8, attemptTimeoutMs: 10_000 });
    assert.ok(Object.isFrozen(p));
  });

  it('names every bad field', () => {
    assert.throws(() => defineRetryPolicy({ multiplier: 0.5, maxAttempts: 0, jitter: 'some' as never }, 'connector crm'),
      /connector crm: jitter must be 'full' or 'none'.*multiplier must be between 1 and 10, got 0.5.*maxAttempts must be between 1 and 100, got 0/);
    assert.throws(() => defineRetryPolicy({ kind: 'schedule', delaysMs: [100, -1] }), /delaysMs\[1\] must be between/);
  });

  it('delays grow by the multiplier and stop at the cap (no jitter); exhaustion gives undefined', () => {
    const p = defineRetryPolicy({ initialDelayMs: 100, multiplier: 3, maxDelayMs: 1_000, jitter: 'none', maxAttempts: 6 });
    assert.deepEqual([1, 2, 3, 4, 5].map((a) => nextDelay(p, a)), [100, 300, 900, 1_000, 1_000]);
    assert.equal(nextDelay(p, 6), undefined);
  });

  it('full jitter stays within [0, capped delay] (property)', () => {
    const p = defineRetryPolicy({ initialDelayMs: 50, maxDelayMs: 5_000, maxAttempts: 30 });
    fc.assert(fc.property(fc.integer({ min: 1, max: 29 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (attempt, r) => {
      const d = nextDelay(p, attempt, { random: () => r })!;
      return d >= 0 && d <= Math.min(5_000, 50 * 2 ** (attempt - 1));
    }));
  });

  it('a schedule repeats its last delay; its attempts default to delays + 1', () => {
    const p = defineRetryPolicy({ kind: 'schedule', delaysMs: [1_000, 5_000], jitter: 'none' });
    assert.equal(p.maxAttempts, 3);
    assert.deepEqual([1, 2, 3].map((a) => nextDelay(p, a)), [1_000, 5_000, undefined]);
  });

  it('Retry-After is a floor, capped at an hour', () => {
    const p = defineRetryPolicy({ initialDelayMs: 100, jitter: 'none' });
    assert.equal(nextDelay(p, 1, { retryAfterMs: 7_000 }), 7_000);
    assert.equal(nextDelay(p, 1, { retryAfterMs: 10 * MAX_RETRY_AFTER_MS }), MAX_RETRY_AFTER_MS);
  });

  it('a per-event-type override merges over the connector policy', () => {
    const base = defineRetryPolicy({ maxAttempts: 5 });
    assert.equal(mergeRetryPolicy(base, { maxAttempts: 2 }).maxAttempts, 2);
    const merged = mergeRetryPolicy(base, { maxAttempts: 2 });
    assert.equal(merged.kind === 'exponential' && merged.initialDelayMs, 500);
    assert.equal(mergeRetryPolicy(base, undefined), base);
  });
});

describe('Retry-After header', () => {
  it('delta seconds, HTTP-date, and garbage', () => {
    const now = Date.parse('2026-11-25T12:00:00Z');
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter('Wed, 25 Nov 2026 12:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Wed, 25 Nov 2026 11:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter('-5', now), undefined);
    assert.equal(parseRetryAfter(undefined, now), undefined);
  });
});

describe('decide: one place from failure class to handling', () => {
  const p = defineRetryPolicy({ maxAttempts: 3, jitter: 'none', initialDelayMs: 100 });
  it('transient retries until exhausted, then dead-letters', () => {
    assert.deepEqual(decide(p, 1, 'transient'), { action: 'retry', delayMs: 100 });
    assert.deepEqual(decide(p, 3, 'transient'), { action: 'dead-letter', reason: 'attempts exhausted after 3 of 3' });
  });
  it('business dead-letters at once; permanent pauses', () => {
    assert.equal(decide(p, 1, 'business').action, 'dead-letter');
    assert.equal(decide(p, 1, 'permanent').action, 'pause');
  });
  it('ambiguous looks the record up before retrying, with the same bound', () => {
    assert.deepEqual(decide(p, 1, 'ambiguous'), { action: 'lookup-then-retry', delayMs: 100 });
    assert.equal(decide(p, 3, 'ambiguous').action, 'dead-letter');
  });
});
