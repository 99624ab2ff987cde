import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createCircuitBreaker, type BreakerState } from './index.js';

describe('circuit breaker', () => {
  const setUp = () => {
    let clock = 0;
    const changes: string[] = [];
    const b = createCircuitBreaker({ failureThreshold: 3, openMs: 1_000, now: () => clock, onStateChange: (f, t) => changes.push(`${f}>${t}`) });
    return { b, changes, tick: (ms: number) => (clock += ms) };
  };

  it('opens after N consecutive failures and lets nothing through while open', () => {
    const { b, changes } = setUp();
    b.recordFailure();
    b.recordFailure();
    assert.equal(b.canPass(), true);
    b.recordFailure();
    assert.equal(b.state().state, 'open' as BreakerState);
    assert.equal(b.canPass(), false);
    assert.equal(b.msUntilProbe(), 1_000);
    assert.deepEqual(changes, ['closed>open']);
  });

  it('a success resets the count', () => {
    const { b } = setUp();
    b.recordFailure();
    b.recordFailure();
    b.recordSuccess();
    b.recordFailure();
    assert.equal(b.state().state, 'closed');
  });

  it('after openMs one probe goes; its success closes, its failure re-opens', () => {
    const { b, tick, changes } = setUp();
    for (let i = 0; i < 3; i++) b.recordFailure();
    tick(1_000);
    assert.equal(b.canPass(), true, 'the probe');
    assert.equal(b.canPass(), false, 'only one probe at a time');
    b.recordFailure();
    assert.equal(b.state().state, 'open');
    tick(999);
    assert.equal(b.canPass(), false);
    tick(1);
    assert.equal(b.canPass(), true);
    b.recordSuccess();
    assert.equal(b.state().state, 'closed');
    assert.deepEqual(changes, ['closed>open', 'open>half-open', 'half-open>open', 'open>half-open', 'half-open>closed']);
  });

  it('refuses a nonsense configuration', () => {
    assert.throws(() => createCircuitBreaker({ failureThreshold: 0 }), /failureThreshold/);
  });
});
