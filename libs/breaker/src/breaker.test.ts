import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FailureClass } from '@bus/errors';
import { type BreakerOptions, createCircuitBreaker } from './index.js';

const setUp = (o: BreakerOptions = {}) => {
  let clock = 0;
  const changes: string[] = [];
  const b = createCircuitBreaker({ failureThreshold: 3, openMs: 1_000, now: () => clock, onStateChange: (f, t) => changes.push(`${f}>${t}`), ...o });
  const fail = (n: number) => {
    for (let i = 0; i < n; i++) b.recordFailure();
  };
  return { b, changes, fail, tick: (ms: number) => (clock += ms) };
};

describe('circuit breaker: closed → open', () => {
  it('stays closed below the threshold, opens at N consecutive failures', () => {
    const { b, changes, fail } = setUp();
    fail(2);
    assert.equal(b.canPass(), true);
    assert.deepEqual(b.state(), { state: 'closed', consecutiveFailures: 2 });
    fail(1);
    assert.deepEqual(b.state(), { state: 'open', openedAt: 0, nextProbeAt: 1_000, consecutiveFailures: 3 });
    assert.deepEqual(changes, ['closed>open']);
  });

  it('a success in between resets the count (failures must be consecutive)', () => {
    const { b, fail } = setUp();
    fail(2);
    b.recordSuccess();
    fail(2);
    assert.deepEqual(b.state(), { state: 'closed', consecutiveFailures: 2 });
  });

  it('defaults: 5 failures, 30 s open', () => {
    let clock = 0;
    const b = createCircuitBreaker({ now: () => clock });
    for (let i = 0; i < 4; i++) b.recordFailure();
    assert.equal(b.state().state, 'closed');
    b.recordFailure();
    assert.equal(b.msUntilProbe(), 30_000);
    clock = 30_000;
    assert.equal(b.canPass(), true);
  });

  it('business failures are not target failures (caller contract): reported as the target being up, they never open it', () => {
    const { b, fail, tick } = setUp();
    const report = (c: FailureClass) => (c === 'transient' || c === 'ambiguous' ? b.recordFailure() : b.recordSuccess());
    for (const c of ['transient', 'business', 'transient', 'transient', 'business', 'ambiguous', 'business'] as const) report(c);
    assert.deepEqual(b.state(), { state: 'closed', consecutiveFailures: 0 });
    fail(3);
    tick(1_000);
    b.canPass();
    report('business');
    assert.equal(b.state().state, 'closed', 'a probe answered 422: the target is up');
  });
});

describe('circuit breaker: open', () => {
  it('lets nothing through until openMs has passed, and says how long to stop pulling', () => {
    const { b, fail, tick } = setUp();
    fail(3);
    assert.equal(b.canPass(), false);
    assert.equal(b.msUntilProbe(), 1_000);
    tick(999);
    assert.equal(b.canPass(), false);
    assert.equal(b.msUntilProbe(), 1);
    tick(1);
    assert.equal(b.msUntilProbe(), 0);
  });

  it('late outcomes of calls let through before it opened are ignored (neither close nor extend it)', () => {
    const { b, fail, tick } = setUp();
    fail(3);
    tick(500);
    b.recordSuccess();
    b.recordFailure();
    assert.deepEqual(b.state(), { state: 'open', openedAt: 0, nextProbeAt: 1_000, consecutiveFailures: 3 });
  });
});

describe('circuit breaker: half-open', () => {
  it('exactly one probe goes; its success closes', () => {
    const { b, changes, fail, tick } = setUp();
    fail(3);
    tick(1_000);
    assert.equal(b.canPass(), true, 'the probe');
    assert.equal(b.canPass(), false, 'only one probe at a time');
    assert.equal(b.state().state, 'half-open');
    b.recordSuccess();
    assert.deepEqual(b.state(), { state: 'closed', consecutiveFailures: 0 });
    assert.equal(b.canPass(), true);
    assert.deepEqual(changes, ['closed>open', 'open>half-open', 'half-open>closed']);
  });

  it('a probe failure re-opens it for another openMs', () => {
    const { b, changes, fail, tick } = setUp();
    fail(3);
    tick(1_000);
    b.canPass();
    b.recordFailure();
    assert.deepEqual(b.state(), { state: 'open', openedAt: 1_000, nextProbeAt: 2_000, consecutiveFailures: 4 });
    tick(999);
    assert.equal(b.canPass(), false);
    tick(1);
    assert.equal(b.canPass(), true);
    assert.deepEqual(changes, ['closed>open', 'open>half-open', 'half-open>open', 'open>half-open']);
  });

  it('with halfOpenProbes 2: two probes go, both must succeed to close', () => {
    const { b, fail, tick } = setUp({ halfOpenProbes: 2 });
    fail(3);
    tick(1_000);
    assert.deepEqual([b.canPass(), b.canPass(), b.canPass()], [true, true, false]);
    b.recordSuccess();
    assert.equal(b.state().state, 'half-open');
    b.recordSuccess();
    assert.equal(b.state().state, 'closed');
  });

  it('an outcome with no probe out (a straggler) is ignored', () => {
    const { b, fail, tick } = setUp();
    fail(3);
    tick(1_000);
    b.recordSuccess();
    b.recordFailure();
    assert.equal(b.state().state, 'half-open');
    assert.equal(b.canPass(), true);
  });

  it('a probe that never reports frees its slot after openMs, so the breaker cannot stick', () => {
    const { b, fail, tick } = setUp();
    fail(3);
    tick(1_000);
    assert.equal(b.canPass(), true);
    assert.equal(b.msUntilProbe(), 1_000);
    assert.equal(b.state().nextProbeAt, 2_000);
    tick(1_000);
    assert.equal(b.canPass(), true, 'a new probe');
  });
});

describe('circuit breaker: callbacks and options', () => {
  it('onStateChange gets the new snapshot', () => {
    const seen: unknown[] = [];
    let clock = 0;
    const b = createCircuitBreaker({ failureThreshold: 1, openMs: 10, now: () => clock, onStateChange: (from, to, s) => seen.push({ from, to, s }) });
    b.recordFailure();
    clock = 10;
    b.canPass();
    assert.deepEqual(seen, [
      { from: 'closed', to: 'open', s: { state: 'open', openedAt: 0, nextProbeAt: 10, consecutiveFailures: 1 } },
      { from: 'open', to: 'half-open', s: { state: 'half-open', openedAt: 0, consecutiveFailures: 1 } },
    ]);
  });

  it('each bad option is named in one BREAKER_INVALID error', () => {
    assert.throws(() => createCircuitBreaker({ failureThreshold: 0, openMs: -1, halfOpenProbes: 1.5 }),
      /\[BREAKER_INVALID\] circuit breaker: failureThreshold must be a whole number >= 1, got 0; halfOpenProbes must be a whole number >= 1, got 1\.5; openMs must be > 0, got -1/);
    assert.throws(() => createCircuitBreaker({ openMs: Number.NaN }), /openMs must be > 0, got NaN/);
  });
});
