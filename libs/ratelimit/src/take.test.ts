import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, it } from 'node:test';
import { createRateLimiter, type RateLimiterOptions, type SetTimer } from './index.js';

/** A fake clock whose timers fire only when the test advances it: no real waiting. */
function fakeTime() {
  let clock = 0;
  let timers: { at: number; fn: () => void }[] = [];
  const setTimer: SetTimer = (fn, ms) => {
    const t = { at: clock + ms, fn };
    timers.push(t);
    return () => {
      timers = timers.filter((x) => x !== t);
    };
  };
  const settle = () => new Promise<void>((r) => setImmediate(r));
  return {
    now: () => clock,
    setTimer,
    pending: () => timers.length,
    tick: (ms: number) => (clock += ms),
    /** Moves the clock forward, firing due timers in order and letting their continuations run. */
    async advance(ms: number) {
      const end = clock + ms;
      for (;;) {
        const next = timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
        if (!next) break;
        timers = timers.filter((t) => t !== next);
        clock = Math.max(clock, next.at);
        next.fn();
        await settle();
      }
      clock = end;
      await settle();
    },
  };
}

const setUp = (o: Partial<RateLimiterOptions> = {}) => {
  const time = fakeTime();
  const l = createRateLimiter({ ratePerSec: 10, burst: 2, now: time.now, setTimer: time.setTimer, ...o });
  return { l, time };
};

describe('take(): waiting for a token', () => {
  it('takes at once when a token is there; else waits on the timer, not longer', async () => {
    const { l, time } = setUp({ burst: 1 });
    await l.take();
    let done = false;
    const p = l.take().then(() => (done = true));
    assert.equal(time.pending(), 1);
    await time.advance(99);
    assert.equal(done, false);
    await time.advance(1);
    await p;
    assert.equal(time.now(), 100);
  });

  it('waits through a Retry-After block', async () => {
    const { l, time } = setUp({ burst: 1 });
    l.penalize(3_000);
    let done = false;
    const p = l.take().then(() => (done = true));
    await time.advance(3_100);
    assert.equal(done, false);
    await time.advance(100);
    await p;
    assert.equal(time.now(), 3_200);
  });

  it('an abort while waiting rejects with its reason, takes no token, leaves no timer or listener', async () => {
    const { l, time } = setUp({ burst: 1 });
    l.tryTake();
    const ac = new AbortController();
    const pending = l.take(ac.signal);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 1);
    ac.abort(new Error('stopping'));
    await assert.rejects(pending, /stopping/);
    assert.equal(time.pending(), 0);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
    time.tick(100);
    assert.equal(l.tryTake().ok, true, 'the aborted waiter took nothing');
  });

  it('an already aborted signal rejects at once; a long-lived signal collects no listeners', async () => {
    const { l, time } = setUp({ burst: 1 });
    await assert.rejects(l.take(AbortSignal.abort(new Error('gone'))), /gone/);
    const ac = new AbortController();
    for (let i = 0; i < 5; i++) {
      const p = l.take(ac.signal);
      await time.advance(100);
      await p;
    }
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  });

  it('with the real timer it waits too (1 ms)', async () => {
    const l = createRateLimiter({ ratePerSec: 1_000, burst: 1 });
    await l.take();
    await l.take();
  });
});
