import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitFor } from './index.js';

describe('waitFor', () => {
  it('resolves with the first truthy value the condition returns', async () => {
    let calls = 0;
    const value = await waitFor(() => (++calls >= 3 ? { calls } : undefined), { what: 'the third call', intervalMs: 1 });
    assert.deepEqual(value, { calls: 3 });
  });

  it('retries a condition that throws until it succeeds', async () => {
    let calls = 0;
    const value = await waitFor(async () => {
      if (++calls < 3) throw new Error('not yet');
      return 'up';
    }, { what: 'up', intervalMs: 1 });
    assert.equal(value, 'up');
  });

  it('times out with a message naming what it waited for and the last error', async () => {
    await assert.rejects(
      waitFor(() => {
        throw new Error('still down');
      }, { what: 'the moon', timeoutMs: 100 }),
      (err: Error) => {
        assert.equal(err.message, 'timed out after 100ms waiting for the moon; last error: still down');
        assert.equal((err.cause as Error).message, 'still down');
        return true;
      },
    );
  });

  it('times out without "last error" when the condition only ever returned falsy values', async () => {
    await assert.rejects(waitFor(() => 0, { what: 'a number', timeoutMs: 50 }), /^Error: timed out after 50ms waiting for a number$/);
  });

  it('a check that never settles cannot outlast timeoutMs', async () => {
    const started = Date.now();
    await assert.rejects(waitFor(() => new Promise(() => undefined), { what: 'a hung check', timeoutMs: 100 }),
      /timed out after 100ms waiting for a hung check; the last check was still running/);
    assert.ok(Date.now() - started < 2_000);
  });
});
