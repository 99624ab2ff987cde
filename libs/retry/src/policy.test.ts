import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BusError } from '@bus/errors';
import { defineRetryPolicy, mergeRetryPolicy, RETRY_POLICY_DEFAULTS, type RetryPolicyInput } from './index.js';

const problemsOf = (input: unknown, where?: string): string => {
  try {
    defineRetryPolicy(input as RetryPolicyInput, where);
  } catch (err) {
    assert.ok(err instanceof BusError);
    assert.equal(err.code, 'RETRY_POLICY_INVALID');
    assert.equal(err.failureClass, 'permanent');
    return err.message;
  }
  assert.fail('expected the policy to be refused');
};

describe('retry policy: definition', () => {
  it('nothing given → the documented defaults, frozen', () => {
    const p = defineRetryPolicy();
    assert.deepEqual({ ...p }, { kind: 'exponential', ...RETRY_POLICY_DEFAULTS });
    assert.deepEqual({ ...RETRY_POLICY_DEFAULTS }, {
      initialDelayMs: 500, multiplier: 2, maxDelayMs: 60_000, jitter: 'full', maxAttempts: 8, attemptTimeoutMs: 10_000,
    });
    assert.ok(Object.isFrozen(p));
    assert.throws(() => {
      (p as { maxAttempts: number }).maxAttempts = 99;
    }, TypeError);
  });

  it('one bad field → the message names it, its rule and the value', () => {
    assert.equal(problemsOf({ multiplier: 0.5 }), '[RETRY_POLICY_INVALID] retry policy: multiplier must be >= 1, got 0.5');
  });

  it('several bad fields → each is named, under the caller\'s `where`', () => {
    const msg = problemsOf({ multiplier: 0.5, maxAttempts: 2.5, jitter: 'some', attemptTimeoutMs: 5, initialDelayMs: 'fast' }, 'connector crm.retry');
    assert.match(msg, /^\[RETRY_POLICY_INVALID\] connector crm\.retry: /);
    for (const expected of [
      `jitter must be 'full' or 'none', got "some"`,
      'attemptTimeoutMs must be >= 100, got 5',
      'initialDelayMs must be a number, got "fast"',
      'multiplier must be >= 1, got 0.5',
      'maxAttempts must be a whole number, got 2.5',
    ]) assert.ok(msg.includes(expected), `missing "${expected}" in: ${msg}`);
  });

  it('upper bounds, NaN, Infinity and the cross-field rule are refused', () => {
    assert.match(problemsOf({ maxAttempts: 101 }), /maxAttempts must be <= 100, got 101/);
    assert.match(problemsOf({ multiplier: Number.NaN }), /multiplier must be a number, got NaN/);
    assert.match(problemsOf({ maxDelayMs: Number.POSITIVE_INFINITY }), /maxDelayMs must be <= 86400000, got Infinity/);
    assert.match(problemsOf({ initialDelayMs: 2_000, maxDelayMs: 1_000 }), /maxDelayMs must be >= initialDelayMs \(2000\), got 1000/);
  });

  it('a typo or a field of the other kind is refused, not silently defaulted', () => {
    assert.match(problemsOf({ maxAttempt: 3 }), /unknown field maxAttempt \(a exponential policy takes initialDelayMs, multiplier/);
    assert.match(problemsOf({ delaysMs: [1] }), /unknown field delaysMs/);
    assert.match(problemsOf({ kind: 'schedule', delaysMs: [1], multiplier: 2 }), /unknown field multiplier/);
  });

  it('a wrong kind or a non-object is refused', () => {
    assert.match(problemsOf({ kind: 'linear' }), /kind must be 'exponential' or 'schedule', got "linear"/);
    assert.match(problemsOf(null), /must be an object, got null/);
    assert.match(problemsOf([1, 2]), /must be an object/);
  });

  it('schedule: needs delays, each checked; maxAttempts defaults to delays + 1; the list is frozen', () => {
    assert.match(problemsOf({ kind: 'schedule' }), /delaysMs must list at least one delay, got undefined/);
    assert.match(problemsOf({ kind: 'schedule', delaysMs: [] }), /delaysMs must list at least one delay/);
    assert.match(problemsOf({ kind: 'schedule', delaysMs: [100, -1, 'x'] }), /delaysMs\[1\] must be >= 0, got -1; delaysMs\[2\] must be a number, got "x"/);
    const input = [1_000, 5_000];
    const p = defineRetryPolicy({ kind: 'schedule', delaysMs: input });
    assert.equal(p.maxAttempts, 3);
    assert.equal(p.kind === 'schedule' && Object.isFrozen(p.delaysMs), true);
    input.push(9);
    assert.deepEqual(p.kind === 'schedule' && p.delaysMs, [1_000, 5_000], 'a copy, not the caller\'s array');
  });
});

describe('retry policy: per-event-type override', () => {
  const base = defineRetryPolicy({ maxAttempts: 5, initialDelayMs: 200 });

  it('no override → the base itself; fields replace the base\'s; the rest is inherited', () => {
    assert.equal(mergeRetryPolicy(base, undefined), base);
    const merged = mergeRetryPolicy(base, { maxAttempts: 2 });
    assert.deepEqual({ ...merged }, { ...base, maxAttempts: 2 });
    assert.ok(Object.isFrozen(merged));
  });

  it('a field set to undefined keeps the base value (not the default)', () => {
    assert.equal(mergeRetryPolicy(base, { maxAttempts: undefined }).maxAttempts, 5);
  });

  it('a bad override is named with its `where`', () => {
    assert.throws(() => mergeRetryPolicy(base, { multiplier: 0 }, 'crm.retryByType.contact.updated'),
      /crm\.retryByType\.contact\.updated: multiplier must be >= 1, got 0/);
  });

  it('switching kind keeps only jitter and attemptTimeoutMs', () => {
    const b = defineRetryPolicy({ jitter: 'none', attemptTimeoutMs: 2_000, maxAttempts: 20 });
    const s = mergeRetryPolicy(b, { kind: 'schedule', delaysMs: [10, 20] });
    assert.deepEqual({ ...s, delaysMs: [...(s.kind === 'schedule' ? s.delaysMs : [])] },
      { kind: 'schedule', delaysMs: [10, 20], jitter: 'none', attemptTimeoutMs: 2_000, maxAttempts: 3 });
  });

  it('a schedule given new delays (but no maxAttempts) gets maxAttempts for the new list', () => {
    const s = defineRetryPolicy({ kind: 'schedule', delaysMs: [1, 2] });
    assert.equal(mergeRetryPolicy(s, { delaysMs: [1, 2, 3, 4] }).maxAttempts, 5);
    assert.equal(mergeRetryPolicy(s, { delaysMs: [1, 2, 3, 4], maxAttempts: 2 }).maxAttempts, 2);
    assert.equal(mergeRetryPolicy(s, { jitter: 'none' }).maxAttempts, 3);
  });
});
