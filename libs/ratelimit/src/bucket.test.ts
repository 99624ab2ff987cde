import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRateLimiter } from './index.js';

describe('adaptive token bucket', () => {
  const setUp = (ratePerSec = 10, burst = 2) => {
    let clock = 0;
    const l = createRateLimiter({ ratePerSec, burst, now: () => clock });
    return { l, tick: (ms: number) => (clock += ms) };
  };

  it('a burst goes at once, then one token per 1/rate', () => {
    const { l, tick } = setUp();
    assert.deepEqual([l.tryTake().ok, l.tryTake().ok], [true, true]);
    assert.deepEqual(l.tryTake(), { ok: false, waitMs: 100 });
    tick(100);
    assert.equal(l.tryTake().ok, true);
  });

  it('a 429 with Retry-After: nothing before it, and the rate is halved', () => {
    const { l, tick } = setUp();
    l.penalize(2_000);
    assert.deepEqual(l.tryTake(), { ok: false, waitMs: 2_000 });
    assert.equal(l.state().effectiveRatePerSec, 5);
    tick(2_000);
    assert.equal(l.tryTake().ok, true);
  });

  it('successes bring the rate back, never above the configured one; it never falls below the floor', () => {
    const { l } = setUp(10);
    for (let i = 0; i < 20; i++) l.penalize();
    assert.equal(l.state().effectiveRatePerSec, 0.5);
    for (let i = 0; i < 1_000; i++) l.recordSuccess();
    assert.equal(l.state().effectiveRatePerSec, 10);
  });

  it('rate-limit headers: few remaining slows down, none remaining blocks until reset', () => {
    const { l } = setUp(10);
    l.updateFromHeaders(2, 1_000);
    assert.equal(l.state().effectiveRatePerSec, 2);
    l.updateFromHeaders(0, 5_000);
    assert.equal(l.state().blockedUntil, 5_000);
  });

  it('take() waits for a token and can be aborted', async () => {
    const l = createRateLimiter({ ratePerSec: 1_000, burst: 1 });
    await l.take();
    await l.take(); // ~1 ms later
    const slow = createRateLimiter({ ratePerSec: 0.001, burst: 1 });
    await slow.take();
    const ac = new AbortController();
    const pending = slow.take(ac.signal);
    ac.abort(new Error('stopping'));
    await assert.rejects(pending, /stopping/);
  });

  it('refuses a nonsense configuration', () => {
    assert.throws(() => createRateLimiter({ ratePerSec: 0 }), /ratePerSec must be > 0/);
  });
});
