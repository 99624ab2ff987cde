import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRateLimiter, type RateLimiterOptions } from './index.js';

const setUp = (o: Partial<RateLimiterOptions> = {}) => {
  let clock = 0;
  const l = createRateLimiter({ ratePerSec: 10, burst: 2, now: () => clock, ...o });
  return { l, time: { tick: (ms: number) => (clock += ms) } };
};

describe('token bucket', () => {
  it('a burst goes at once, then one token per 1/rate, with the exact wait', () => {
    const { l, time } = setUp();
    assert.deepEqual([l.tryTake(), l.tryTake()], [{ ok: true }, { ok: true }]);
    assert.deepEqual(l.tryTake(), { ok: false, waitMs: 100 });
    time.tick(40);
    assert.deepEqual(l.tryTake(), { ok: false, waitMs: 60 });
    time.tick(60);
    assert.deepEqual(l.tryTake(), { ok: true });
  });

  it('a long quiet period refills no more than the burst', () => {
    const { l, time } = setUp();
    time.tick(3_600_000);
    assert.equal(l.state().tokens, 2);
    assert.deepEqual([l.tryTake().ok, l.tryTake().ok, l.tryTake().ok], [true, true, false]);
  });

  it('burst defaults to one second of the rate, at least 1', () => {
    assert.equal(createRateLimiter({ ratePerSec: 5, now: () => 0 }).state().tokens, 5);
    assert.equal(createRateLimiter({ ratePerSec: 0.2, now: () => 0 }).state().tokens, 1);
  });

  it('a clock going backwards mints no tokens', () => {
    const { l, time } = setUp();
    l.tryTake();
    l.tryTake();
    time.tick(-5_000);
    assert.equal(l.tryTake().ok, false);
    time.tick(5_000);
    assert.equal(l.tryTake().ok, false, 'the time already counted is not counted twice');
  });
});

describe('429 and Retry-After (penalize)', () => {
  it('nothing is handed out before the Retry-After, then tokens refill at the lowered rate', () => {
    const { l, time } = setUp();
    l.penalize(2_000);
    assert.deepEqual(l.state(), { effectiveRatePerSec: 5, tokens: 0, blockedUntil: 2_000 });
    assert.deepEqual(l.tryTake(), { ok: false, waitMs: 2_200 });
    time.tick(2_000);
    assert.equal(l.tryTake().ok, false, 'the bucket was emptied; nothing refilled during the block');
    time.tick(200);
    assert.equal(l.tryTake().ok, true);
    assert.equal(l.state().blockedUntil, undefined);
  });

  it('429s from requests already in flight cut the rate once per cooldown', () => {
    const { l, time } = setUp();
    l.penalize();
    l.penalize();
    l.penalize();
    assert.equal(l.state().effectiveRatePerSec, 5);
    time.tick(1_000);
    l.penalize();
    assert.equal(l.state().effectiveRatePerSec, 2.5);
  });

  it('the rate never falls below minRatePerSec (default ratePerSec / 20)', () => {
    const { l, time } = setUp();
    for (let i = 0; i < 20; i++) {
      l.penalize();
      time.tick(1_000);
    }
    assert.equal(l.state().effectiveRatePerSec, 0.5);
  });

  it('successes bring the rate back additively, never above the configured rate', () => {
    const { l } = setUp({ decreaseCooldownMs: 0 });
    l.penalize();
    l.penalize();
    assert.equal(l.state().effectiveRatePerSec, 2.5);
    l.recordSuccess();
    assert.equal(l.state().effectiveRatePerSec, 2.7, 'default step: ratePerSec / 50');
    for (let i = 0; i < 1_000; i++) l.recordSuccess();
    assert.equal(l.state().effectiveRatePerSec, 10);
  });

  it('a Retry-After past maxBlockMs (default 1 hour) is capped; missing, negative or NaN blocks nothing', () => {
    const { l } = setUp({ decreaseCooldownMs: 0 });
    l.penalize(-1);
    l.penalize(Number.NaN);
    assert.equal(l.state().blockedUntil, undefined);
    l.penalize(86_400_000);
    assert.equal(l.state().blockedUntil, 3_600_000);
  });

  it('a shorter Retry-After does not shorten a block already in place', () => {
    const { l } = setUp();
    l.penalize(5_000);
    l.penalize(1_000);
    assert.equal(l.state().blockedUntil, 5_000);
  });
});

describe('quota headers (updateFromHeaders)', () => {
  it('few requests left → the rate spreads them over the time to the reset', () => {
    const { l } = setUp();
    l.updateFromHeaders(2, 1_000);
    assert.equal(l.state().effectiveRatePerSec, 2);
  });

  it('plenty left → no change; never below minRatePerSec', () => {
    const { l } = setUp();
    l.updateFromHeaders(5_000, 60_000);
    assert.equal(l.state().effectiveRatePerSec, 10);
    l.updateFromHeaders(1, 3_600_000);
    assert.equal(l.state().effectiveRatePerSec, 0.5);
  });

  it('none left → nothing is handed out until the reset (capped at maxBlockMs)', () => {
    const { l, time } = setUp();
    l.updateFromHeaders(0, 5_000);
    assert.equal(l.state().blockedUntil, 5_000);
    assert.deepEqual(l.tryTake(), { ok: false, waitMs: 5_000 }, 'the tokens kept are usable after the reset');
    time.tick(5_000);
    assert.equal(l.tryTake().ok, true);
    l.updateFromHeaders(0, 10 * 86_400_000);
    assert.equal(l.state().blockedUntil, 5_000 + 3_600_000);
  });

  it('a missing or unreadable value changes nothing', () => {
    const { l } = setUp();
    for (const [rem, reset] of [[undefined, 1_000], [3, undefined], [Number.NaN, 1_000], [-1, 1_000], [3, 0], [3, Number.NaN]] as const)
      l.updateFromHeaders(rem, reset);
    assert.deepEqual(l.state(), { effectiveRatePerSec: 10, tokens: 2, blockedUntil: undefined });
  });
});

describe('options', () => {
  it('each bad option is named in one RATE_LIMIT_INVALID error', () => {
    assert.throws(() => createRateLimiter({ ratePerSec: 0 }), /\[RATE_LIMIT_INVALID\] rate limiter: ratePerSec must be > 0 and <= 1000000, got 0/);
    assert.throws(() => createRateLimiter({ ratePerSec: 10, burst: 0.5, minRatePerSec: 20, decreaseFactor: 1, increasePerSuccess: -1, maxBlockMs: 0 }),
      /burst must be >= 1, got 0\.5; minRatePerSec must be > 0 and <= ratePerSec \(10\), got 20; decreaseFactor must be > 0 and < 1, got 1; increasePerSuccess must be > 0, got -1; maxBlockMs must be >= 1, got 0/);
    assert.throws(() => createRateLimiter({ ratePerSec: '5' as unknown as number }), /ratePerSec must be > 0 and <= 1000000, got "5"/);
    assert.throws(() => createRateLimiter({ ratePerSec: Number.POSITIVE_INFINITY }), /ratePerSec/);
  });
});
