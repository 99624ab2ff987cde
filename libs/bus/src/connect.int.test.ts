import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startNats } from '@bus/testkit';
import { loadBusConfig } from './config.js';
import { connectBus } from './connect.js';
import { silent } from './test-support.js';

describe('connect from configuration', () => {
  it('user/password and token auth from the environment; a wrong password fails with the server\'s reason', async (t) => {
    if (process.env.NATS_URL) return t.skip('NATS_URL is set: auth servers are spawned by the test kit');
    for (const [args, auth, good, bad] of [
      [['--user', 'bus', '--pass', 's3cret'], { user: 'bus', pass: 's3cret' }, { NATS_USER: 'bus', NATS_PASSWORD: 's3cret' }, { NATS_USER: 'bus', NATS_PASSWORD: 'wrong' }],
      [['--auth', 'tok3n'], { token: 'tok3n' }, { NATS_TOKEN: 'tok3n' }, { NATS_TOKEN: 'nope' }],
    ] as const) {
      const nats = await startNats({ args: [...args], auth });
      try {
        const bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, ...good }), name: 'auth-test', log: silent, waitOnFirstConnect: false });
        assert.equal(bus.nc.isClosed(), false);
        await bus.close();
        await assert.rejects(connectBus({ config: loadBusConfig({ NATS_URL: nats.url, ...bad }), name: 'auth-test', log: silent, waitOnFirstConnect: false }), /auth|Authorization/i);
      } finally {
        await nats.stop({ removeStore: true });
      }
    }
  });

  it('invalid configuration lists every problem and starts nothing', () => {
    assert.throws(() => loadBusConfig({ NATS_USER: 'u', BUS_REPLICAS: '9', BUS_PREFIX: 'a.b', NATS_TLS_CERT_FILE: '/c' }), (err: Error) => {
      for (const name of ['NATS_PASSWORD', 'BUS_REPLICAS', 'BUS_PREFIX', 'NATS_TLS_KEY_FILE']) assert.match(err.message, new RegExp(name));
      assert.match(err.message, /nothing was started/);
      return true;
    });
  });
});
