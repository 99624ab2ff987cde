import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type Bus, connectBus, loadBusConfig } from '@bus/bus';
import { createLogger } from '@bus/observability';
import { topology } from '@bus/streams';
import { startNats, startTokenServer, type TestNats, type TestTokenServer, uniquePrefix, waitFor } from '@bus/testkit';
import type { KV } from '@nats-io/kv';
import { OAuth2Server } from 'oauth2-mock-server';
import { createTokenProvider, installRefreshToken, loadTokenKeys, readTokens, TokenError, tokenState } from './index.js';
import type { OAuth2Config } from './tokens.js';

const lines: string[] = [];
const log = createLogger({ service: 't', level: 'debug', destination: { write: (l: string) => void lines.push(l) } as never });
const KEY_A = Buffer.alloc(32, 1).toString('base64');
const KEY_B = Buffer.alloc(32, 2).toString('base64');

describe('OAuth2 tokens: shared, sealed, refreshed once at a time', () => {
  let nats: TestNats;
  let bus: Bus;
  let kv: KV;
  let leases: KV;
  let oauth: OAuth2Server;
  let mockIssued = 0;
  let refuse = false;
  let strict: TestTokenServer;
  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 't', log: createLogger({ service: 't', level: 'silent' }) });
    await bus.applyTopology(topology({ prefix }));
    kv = await bus.kv(bus.names.kv.tokens);
    leases = await bus.kv(bus.names.kv.leases);
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
      } else mockIssued++;
    });
    strict = await startTokenServer();
  });
  after(async () => {
    await strict.close();
    await oauth.stop();
    await bus.close();
    await nats.stop({ removeStore: true });
  });
  const mockEnv = () => ({ TOKEN_URL: `${oauth.issuer.url}/token`, CLIENT_ID: 'bus', CLIENT_SECRET: 'top-secret', BUS_TOKEN_KEY: KEY_A });
  const clientCredentials = async (connector: string, now?: () => number) => createTokenProvider({
    kv, leases, connector, env: mockEnv(), now, log,
    config: { kind: 'oauth2-client-credentials', tokenUrlEnv: 'TOKEN_URL', clientIdEnv: 'CLIENT_ID', clientSecretEnv: 'CLIENT_SECRET', skewSec: 60 },
  });
  const rotating = (connector: string, refreshToken: string, o: { now?: () => number; config?: Partial<OAuth2Config>; key?: string } = {}) => createTokenProvider({
    kv, leases, connector, now: o.now, log, leaseTtlMs: 1_000,
    env: { TOKEN_URL: strict.url, CLIENT_ID: strict.clientId, CLIENT_SECRET: strict.clientSecret, REFRESH: refreshToken, BUS_TOKEN_KEY: o.key ?? KEY_A },
    config: { kind: 'oauth2-refresh-token', tokenUrlEnv: 'TOKEN_URL', clientIdEnv: 'CLIENT_ID', clientSecretEnv: 'CLIENT_SECRET', refreshTokenEnv: 'REFRESH', skewSec: 60, ...o.config } as OAuth2Config,
  });
  const used = (rt: string) => strict.requests.filter((r) => r.refreshToken === rt).length;
  let reusesBefore = 0;
  beforeEach(() => {
    reusesBefore = strict?.reuses() ?? 0;
  });
  const reuses = () => strict.reuses() - reusesBefore;

  it('a hundred concurrent deliveries, in two processes, cause one token request (oauth2-mock-server)', async () => {
    mockIssued = 0;
    const [a, b] = [await clientCredentials('crm'), await clientCredentials('crm')];
    const tokens = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).token()));
    assert.equal(new Set(tokens).size, 1);
    assert.equal(mockIssued, 1);
  });

  it('refreshes before expiry (skew), once', async () => {
    mockIssued = 0;
    let clock = Date.now();
    const p = await clientCredentials('expiring', () => clock);
    const first = await p.token();
    clock += 3_600_000 - 59_000; // inside the 60 s skew of a one-hour token
    const second = await Promise.all([p.token(), p.token(), p.token()]);
    assert.equal(mockIssued, 2);
    assert.notEqual(second[0], first);
    assert.equal(new Set(second).size, 1);
  });

  it('a 401 from the target renews once however many callers saw it', async () => {
    mockIssued = 0;
    const p = await clientCredentials('renewing');
    const old = await p.token();
    const renewed = await Promise.all(Array.from({ length: 20 }, () => p.renew(old)));
    assert.equal(new Set(renewed).size, 1);
    assert.notEqual(renewed[0], old);
    assert.equal(mockIssued, 2);
  });

  it('refused client credentials → permanent AUTH_CLIENT_REFUSED naming what to check, never quoting the secret', async () => {
    refuse = true;
    try {
      const p = await clientCredentials('refused');
      await assert.rejects(p.token(), (err) => err instanceof TokenError && err.failureClass === 'permanent' && err.code === 'AUTH_CLIENT_REFUSED' &&
        /CLIENT_ID \/ CLIENT_SECRET/.test(err.message) && !err.message.includes('top-secret'));
    } finally {
      refuse = false;
    }
  });

  it('a missing credential fails at construction, naming the variable', () => {
    assert.throws(() => createTokenProvider({ kv, leases, connector: 'x', env: {},
      config: { kind: 'oauth2-client-credentials', tokenUrlEnv: 'TOKEN_URL', clientIdEnv: 'CLIENT_ID', clientSecretEnv: 'CLIENT_SECRET' } }), /set TOKEN_URL/);
  });

  it('a rotating provider: each refresh uses the refresh token the last one stored, none is used twice', async () => {
    let clock = Date.now();
    const seed = strict.consent();
    const p = rotating('rot', seed, { now: () => clock });
    const first = await p.token();
    clock += 3_600_000;
    const second = await rotating('rot', seed, { now: () => clock }).token(); // another process, same (stale) environment
    assert.notEqual(first, second);
    assert.equal(used(seed), 1, 'the environment\'s refresh token is used once, then the stored rotated one');
    assert.equal(reuses(), 0);
    const state = await tokenState(kv, 'rot');
    assert.equal(state.refreshGeneration, 2); // two rotations
    assert.equal(state.refreshTokenFrom, 'token endpoint');
  });

  it('tokens that live shorter than twice the skew are refreshed at half their life, not at every call', async () => {
    strict.setAccessTtl(20); // skew is 60 s
    try {
      const seed = strict.consent();
      const p = rotating('short', seed);
      const first = await p.token();
      assert.equal(await p.token(), first);
      assert.equal(await rotating('short', seed).token(), first, 'another process uses the stored one');
      assert.equal(p.refreshes(), 1);
    } finally {
      strict.setAccessTtl(3600);
    }
  });

  it('a slow token endpoint and a second process: it waits for the holder instead of sending the refresh token', async () => {
    const seed = strict.consent();
    strict.setDelay(1_500);
    try {
      const [a, b] = [rotating('slow', seed), rotating('slow', seed)];
      const [ta, tb] = await Promise.all([a.token(), b.token()]);
      assert.equal(ta, tb);
      assert.equal(a.refreshes() + b.refreshes(), 1);
      assert.equal(used(seed), 1);
      assert.equal(reuses(), 0);
    } finally {
      strict.setDelay(0);
    }
  });

  it('a timed-out refresh is in doubt (ambiguous); nothing newer stored → tried once more, and a refusal names the lost answer', async () => {
    const seed = strict.consent();
    strict.setDelay(1_500);
    const p = rotating('doubt', seed, { config: { requestTimeoutMs: 1_000 } });
    await assert.rejects(p.token(), (err) => err instanceof TokenError && err.code === 'AUTH_REFRESH_IN_DOUBT' && err.failureClass === 'ambiguous');
    strict.setDelay(0);
    assert.ok((await tokenState(kv, 'doubt')).inDoubt, 'the doubt is noted for every process');
    await assert.rejects(p.token(), (err) => err instanceof TokenError && err.code === 'AUTH_REFRESH_TOKEN_REFUSED' && err.failureClass === 'permanent' &&
      /got no answer/.test(err.message) && /--set-refresh-token/.test(err.message));
    const requests = strict.requests.length;
    await assert.rejects(rotating('doubt', seed).token(), /AUTH_REFRESH_TOKEN_REFUSED.*no process sends it again/);
    assert.equal(strict.requests.length, requests, 'a refused refresh token is not sent again by anyone');
  });

  it('a timed-out refresh the provider never got to: the stored refresh token is tried once more and works, no reuse', async () => {
    const seed = strict.consent();
    strict.setDelay(1_500, 'answer');
    const p = rotating('dropped', seed, { config: { requestTimeoutMs: 1_000 } });
    await assert.rejects(p.token(), /AUTH_REFRESH_IN_DOUBT/);
    strict.setDelay(0);
    await waitFor(() => strict.requests.some((r) => r.refreshToken === seed && r.outcome === 'dropped'), { what: 'the endpoint dropping the request it never served' });
    assert.ok(await p.token());
    assert.equal((await tokenState(kv, 'dropped')).inDoubt, undefined, 'the doubt is cleared');
    assert.equal(reuses(), 0);
  });

  it('a timed-out refresh, then an operator stores a new refresh token: the in-doubt one is never sent again', async () => {
    const seed = strict.consent();
    strict.setDelay(1_500);
    const p = rotating('doubt2', seed, { config: { requestTimeoutMs: 1_000 } });
    await assert.rejects(p.token(), /AUTH_REFRESH_IN_DOUBT/);
    strict.setDelay(0);
    await installRefreshToken({ kv, connector: 'doubt2', keys: loadTokenKeys({ BUS_TOKEN_KEY: KEY_A }), refreshToken: strict.consent(), by: 'test' });
    assert.ok(await p.token());
    assert.equal(used(seed), 1);
    assert.equal(reuses(), 0);
  });

  it('compare-and-set: a refresh answered after an operator stored a new refresh token is discarded, not written over it', async () => {
    const seed = strict.consent();
    strict.setDelay(1_000);
    const p = rotating('cas', seed);
    const sent = strict.requests.length;
    const pending = p.token();
    await waitFor(() => strict.requests.length > sent, { what: 'the refresh request at the endpoint (its answer held back)' });
    const fresh = strict.consent();
    await installRefreshToken({ kv, connector: 'cas', keys: loadTokenKeys({ BUS_TOKEN_KEY: KEY_A }), refreshToken: fresh, by: 'test' });
    strict.setDelay(0);
    await pending;
    assert.equal(used(fresh), 1, 'the slow answer was discarded; the operator\'s refresh token was used next');
    const state = await tokenState(kv, 'cas');
    assert.equal(state.refreshTokenFrom, 'token endpoint');
    assert.equal(reuses(), 0);
  });

  it('sealed at rest: no token in the bucket\'s raw bytes; another key cannot open it; a rotated key list opens and re-seals it', async () => {
    const seed = strict.consent();
    let clock = Date.now();
    await rotating('sealed', seed, { now: () => clock }).token();
    const raw = Buffer.from((await kv.get('oauth.sealed'))!.value).toString('latin1');
    for (const t of strict.issued()) assert.ok(!raw.includes(t), 'no token in the stored bytes');
    assert.ok(!raw.includes(Buffer.from(strict.issued()[0]!).toString('base64')), 'nor base64 of one');
    await assert.rejects(rotating('sealed', seed, { key: KEY_B, now: () => clock + 3_600_000 }).token(), /AUTH_TOKEN_KEY_UNKNOWN.*Add that key/);
    clock += 3_600_000;
    await rotating('sealed', seed, { key: `${KEY_B},${KEY_A}`, now: () => clock }).token();
    const state = await tokenState(kv, 'sealed');
    assert.equal(state.sealedWith, loadTokenKeys({ BUS_TOKEN_KEY: KEY_B }).keys[0]!.id, 'written again under the first key');
    assert.equal(reuses(), 0);
  });

  it('an older version\'s plaintext entry is read once and sealed', async () => {
    const seed = strict.consent();
    await kv.put('oauth.legacy', JSON.stringify({ accessToken: 'at_legacy_plain', expiresAtMs: Date.now() + 3_600_000, refreshToken: seed }));
    assert.equal(await rotating('legacy', 'rt_env_unused').token(), 'at_legacy_plain');
    const raw = Buffer.from((await kv.get('oauth.legacy'))!.value).toString();
    assert.ok(!raw.includes('at_legacy_plain') && !raw.includes(seed));
    assert.equal((await readTokens(kv, 'legacy', loadTokenKeys({ BUS_TOKEN_KEY: KEY_A }))).secrets.refreshToken, seed);
  });

  it('BUS_TOKEN_KEY: required under NODE_ENV=production, the demo key otherwise, a malformed one named by position', () => {
    assert.throws(() => loadTokenKeys({ NODE_ENV: 'production' }), /BUS_TOKEN_KEY is not set.*openssl rand -base64 32/);
    let warned = false;
    assert.equal(loadTokenKeys({}, () => (warned = true)).from, 'demo');
    assert.ok(warned);
    assert.throws(() => loadTokenKeys({ BUS_TOKEN_KEY: `${KEY_A},c2hvcnQ=` }), /entry 2 is not a 256-bit key/);
  });

  it('the tokens bucket has no max age: a refresh token is kept until replaced', async () => {
    assert.equal((await kv.status()).ttl, 0);
  });

  it('no token in any log line', () => {
    const text = lines.join('\n');
    for (const t of strict.issued()) assert.ok(!text.includes(t), 'no token logged');
    assert.ok(!text.includes('top-secret'));
  });
});
