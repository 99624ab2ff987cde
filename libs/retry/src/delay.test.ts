import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { baseDelay, defineRetryPolicy, MAX_RETRY_AFTER_MS, nextDelay } from './index.js';

describe('nextDelay: exponential', () => {
  const p = defineRetryPolicy({ initialDelayMs: 100, multiplier: 3, maxDelayMs: 1_000, jitter: 'none', maxAttempts: 6 });

  it('delays grow by the multiplier and stop at maxDelayMs', () => {
    assert.deepEqual([1, 2, 3, 4, 5].map((a) => nextDelay(p, a)), [100, 300, 900, 1_000, 1_000]);
  });

  it('after the last attempt → undefined (exhausted), also past it', () => {
    assert.equal(nextDelay(p, 6), undefined);
    assert.equal(nextDelay(p, 60), undefined);
  });

  it('a single-attempt policy never retries', () => {
    assert.equal(nextDelay(defineRetryPolicy({ maxAttempts: 1 }), 1), undefined);
  });

  it('fractional multipliers give whole milliseconds', () => {
    const f = defineRetryPolicy({ initialDelayMs: 500, multiplier: 1.5, jitter: 'none' });
    assert.deepEqual([1, 2, 3, 4].map((a) => nextDelay(f, a)), [500, 750, 1_125, 1_688]);
  });

  it('a huge attempt number does not overflow past the cap', () => {
    const big = defineRetryPolicy({ multiplier: 10, maxAttempts: 100, jitter: 'none' });
    assert.equal(nextDelay(big, 99), 60_000);
  });

  it('attempt 0, negative or fractional is a caller bug → RETRY_ATTEMPT_INVALID', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => nextDelay(p, bad), /RETRY_ATTEMPT_INVALID.*attempt must be a whole number >= 1/);
  });
});

describe('nextDelay: full jitter', () => {
  it('stays within [0, capped delay] for any attempt and random value (property)', () => {
    const p = defineRetryPolicy({ initialDelayMs: 50, maxDelayMs: 5_000, maxAttempts: 30 });
    fc.assert(fc.property(fc.integer({ min: 1, max: 29 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
      const d = nextDelay(p, attempt, { random: () => r });
      const cap = Math.min(5_000, 50 * 2 ** (attempt - 1));
      return d !== undefined && Number.isInteger(d) && d >= 0 && d <= cap && cap === baseDelay(p, attempt);
    }));
  });

  it('is spread over the whole range: random 0 → 0, random near 1 → near the cap', () => {
    const p = defineRetryPolicy({ initialDelayMs: 1_000 });
    assert.equal(nextDelay(p, 1, { random: () => 0 }), 0);
    assert.equal(nextDelay(p, 1, { random: () => 0.9999 }), 999);
    assert.equal(nextDelay(p, 1, { random: () => 0.5 }), 500);
  });

  it('a broken random source cannot leave [0, cap]', () => {
    const p = defineRetryPolicy({ initialDelayMs: 1_000 });
    assert.equal(nextDelay(p, 1, { random: () => 7 }), 1_000);
    assert.equal(nextDelay(p, 1, { random: () => -3 }), 0);
    assert.equal(nextDelay(p, 1, { random: () => Number.NaN }), 1_000);
  });
});

describe('nextDelay: schedule', () => {
  it('uses each delay in turn; maxAttempts defaults to delays + 1', () => {
    const p = defineRetryPolicy({ kind: 'schedule', delaysMs: [1_000, 5_000, 30_000], jitter: 'none' });
    assert.deepEqual([1, 2, 3, 4].map((a) => nextDelay(p, a)), [1_000, 5_000, 30_000, undefined]);
  });

  it('more attempts than delays → the last delay repeats', () => {
    const p = defineRetryPolicy({ kind: 'schedule', delaysMs: [10, 20], maxAttempts: 5, jitter: 'none' });
    assert.deepEqual([1, 2, 3, 4, 5].map((a) => nextDelay(p, a)), [10, 20, 20, 20, undefined]);
  });

  it('jitter applies to a schedule too', () => {
    const p = defineRetryPolicy({ kind: 'schedule', delaysMs: [1_000] });
    assert.equal(nextDelay(p, 1, { random: () => 0.25 }), 250);
  });
});

describe('nextDelay: the target\'s Retry-After', () => {
  const p = defineRetryPolicy({ initialDelayMs: 100, jitter: 'none' });

  it('is a floor: never retried sooner than the target asked', () => {
    assert.equal(nextDelay(p, 1, { retryAfterMs: 7_000 }), 7_000);
    assert.equal(nextDelay(p, 1, { retryAfterMs: 50 }), 100, 'a shorter Retry-After does not shorten the backoff');
  });

  it('holds with full jitter too (property)', () => {
    const j = defineRetryPolicy({ initialDelayMs: 100 });
    fc.assert(fc.property(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 0, max: MAX_RETRY_AFTER_MS }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (attempt, retryAfterMs, r) => (nextDelay(j, attempt, { retryAfterMs, random: () => r }) ?? -1) >= retryAfterMs));
  });

  it('above MAX_RETRY_AFTER_MS (1 hour) it is capped there', () => {
    assert.equal(MAX_RETRY_AFTER_MS, 3_600_000);
    assert.equal(nextDelay(p, 1, { retryAfterMs: 24 * MAX_RETRY_AFTER_MS }), MAX_RETRY_AFTER_MS);
    assert.equal(nextDelay(p, 1, { retryAfterMs: Number.POSITIVE_INFINITY }), MAX_RETRY_AFTER_MS);
  });

  it('negative or NaN is ignored; fractions round up', () => {
    assert.equal(nextDelay(p, 1, { retryAfterMs: -5_000 }), 100);
    assert.equal(nextDelay(p, 1, { retryAfterMs: Number.NaN }), 100);
    assert.equal(nextDelay(p, 1, { retryAfterMs: 1_500.2 }), 1_501);
  });

  it('does not extend the attempts: exhausted stays exhausted', () => {
    assert.equal(nextDelay(defineRetryPolicy({ maxAttempts: 2 }), 2, { retryAfterMs: 1_000 }), undefined);
  });
});
