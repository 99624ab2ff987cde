import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, loadBusConfig } from '@bus/bus';
import { createLogger } from '@bus/observability';
import { topology } from '@bus/streams';
import { startNats, type TestNats, uniquePrefix } from '@bus/testkit';
import { OAuth2Server } from 'oauth2-mock-server';
import { createTokenProvider, TokenError } from './index.js';

describe('OAuth2 tokens against a real OAuth2 server (oauth2-mock-server)', () => {
  let nats: TestNats;
  let bus: Bus;
  let oauth: OAuth2Server;
  let issued = 0;
  let refuse = false;
  let env: Record<string, string>;
  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 't', log: createLogger({ service: 't', level: 'silent' }) });
    await bus.applyTopology(topology({ prefix }));
    oauth = new OAuth2Server();
    await oauth.issuer.keys.generate('RS256');
    await oauth.start(0, '127.0.0.1');
    // a real server's tokens differ each time; the mock's are equal within a second unless told otherwise
    oauth.service.on('beforeTokenSigning', (token: { payload: Record<string, unknown> }) => {
      token.payload.jti = `${Date.now()}-${Math.random()}`;
    });
    oauth.service.on('beforeResponse', (response: { statusCode: number; body: unknown }) => {
      if (refuse) {
        response.statusCode = 401;
        response.body = { error: 'invalid_client' };
      } else issued++;
    });
    env = { TOKEN_URL: `${oauth.issuer.url}/token`, CLIENT_ID: 'bus', CLIENT_SECRET: 'top-secret' };
  });
  after(async () => {
    await oauth.stop();
    await bus.close();
    await nats.stop({ removeStore: true });
  });
  const provider = async (connector: string, now?: () => number) => createTokenProvider({
    kv: await bus.kv(bus.names.kv.tokens), connector, env, now,
    config: { kind: 'oauth2-client-credentials', tokenUrlEnv: 'TOKEN_URL', clientIdEnv: 'CLIENT_ID', clientSecretEnv: 'CLIENT_SECRET', skewSec: 60 },
  });

  it('a hundred concurrent deliveries, in two processes, cause one token request', async () => {
    issued = 0;
    const [a, b] = [await provider('crm'), await provider('crm')];
    const tokens = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).token()));
    assert.equal(new Set(tokens).size, 1);
    assert.equal(issued, 1);
  });

  it('refreshes before expiry (skew), once', async () => {
    issued = 0;
    let clock = Date.now();
    const p = await provider('expiring', () => clock);
    const first = await p.token();
    clock += 3_600_000 - 59_000; // inside the 60 s skew of a one-hour token
    const second = await Promise.all([p.token(), p.token(), p.token()]);
    assert.equal(issued, 2);
    assert.notEqual(second[0], first);
    assert.equal(new Set(second).size, 1);
  });

  it('a 401 from the target renews once however many callers saw it', async () => {
    issued = 0;
    const p = await provider('renewing');
    const old = await p.token();
    const renewed = await Promise.all(Array.from({ length: 20 }, () => p.renew(old)));
    assert.equal(new Set(renewed).size, 1);
    assert.notEqual(renewed[0], old);
    assert.equal(issued, 2);
  });

  it('refused credentials are a permanent error that names what to check, and never quotes the secret', async () => {
    refuse = true;
    try {
      const p = await provider('refused');
      await assert.rejects(p.token(), (err) => err instanceof TokenError && err.failureClass === 'permanent' && /CLIENT_ID \/ CLIENT_SECRET/.test(err.message) && !err.message.includes('top-secret'));
    } finally {
      refuse = false;
    }
  });

  it('a missing credential fails at construction, naming the variable', async () => {
    await assert.rejects(async () => createTokenProvider({ kv: await bus.kv(bus.names.kv.tokens), connector: 'x', env: {},
      config: { kind: 'oauth2-client-credentials', tokenUrlEnv: 'TOKEN_URL', clientIdEnv: 'CLIENT_ID', clientSecretEnv: 'CLIENT_SECRET' } }), /set TOKEN_URL/);
  });
});
