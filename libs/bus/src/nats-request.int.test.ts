import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startNats, type TestNats } from '@bus/testkit';
import { errors } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { patchedRequestCancel } from './nats-request.js';

describe('requests without the Error per answer (nats-request.ts), against a real nats-server', () => {
  let nats: TestNats;
  let nc: Awaited<ReturnType<typeof connect>>;
  before(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url, noAsyncTraces: true });
    nc.subscribe('echo', { callback: (_e, m) => { m.respond(m.data); } });
    await nc.flush();
  });
  after(async () => {
    await nc?.close();
    await nats?.stop({ removeStore: true });
  });

  it('took: the client internals it relies on are there (an upgrade that moves them fails here, not silently)', () => {
    assert.equal(patchedRequestCancel, true);
  });

  it('an answered request makes no Error; answers, timeouts and no-responders behave as before', async () => {
    const made = countErrors();
    try {
      for (let i = 0; i < 200; i++) assert.equal(new TextDecoder().decode((await nc.request('echo', `m${i}`, { timeout: 2_000 })).data), `m${i}`);
      assert.equal(made.count, 0, 'no Error constructed for 200 answered requests');
    } finally {
      made.stop();
    }
    await assert.rejects(nc.request('nobody.here', '', { timeout: 1_000 }), (err: Error) => err instanceof errors.RequestError && err.cause instanceof errors.NoRespondersError);
    const silent = nc.subscribe('silent', { callback: () => undefined });
    await nc.flush();
    await assert.rejects(nc.request('silent', '', { timeout: 200 }), (err: Error) => err instanceof errors.TimeoutError);
    silent.unsubscribe();
    // the mux forgot every request, answered or not: nothing left pending
    assert.equal((nc as unknown as { protocol: { muxSubscriptions: { size(): number } } }).protocol.muxSubscriptions.size(), 0);
  });
});

/** Counts the RequestErrors the client makes while it runs (its modules read the class from the errors module's exports). */
function countErrors() {
  const require = createRequire(import.meta.url);
  const lib = dirname(require.resolve('@nats-io/nats-core'));
  const mod = require(join(lib, 'errors.js')) as { RequestError: typeof errors.RequestError };
  const original = mod.RequestError;
  const made = { count: 0, stop: () => { mod.RequestError = original; } };
  mod.RequestError = class extends original {
    constructor(...a: ConstructorParameters<typeof original>) {
      super(...a);
      made.count++;
    }
  };
  return made;
}
