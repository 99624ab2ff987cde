import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { auditRecordsOf, type Bus, decodeDeadLetter, readStream } from '@bus/bus';
import { commandHeaders, type DeliveryCommand } from '@bus/connectors';
import { encode } from '@bus/envelope';
import { topology } from '@bus/streams';
import { freePort, startNats, startProcess, startTarget, startTokenServer, type TestNats, type TestProcess, type TestTarget, type TestTokenServer, uniquePrefix, waitFor } from '@bus/testkit';
import { testBus } from './support.js';

const deliverMain = fileURLToPath(new URL('../../services/deliver/dist/main.js', import.meta.url));
const cliMain = fileURLToPath(new URL('../../libs/cli/dist/main.js', import.meta.url));
const catalog = fileURLToPath(new URL('./fixtures/oauth-catalog.js', import.meta.url));
const KEY = randomBytes(32).toString('base64');

/** Every file under `dir`, for a search of the server's raw store. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? filesUnder(join(dir, f)) : [join(dir, f)]));
}

describe('OAuth2 with a rotating, reuse-detecting provider, through real deliver processes', () => {
  let nats: TestNats;
  let tokens: TestTokenServer;
  let target: TestTarget;
  const outputs: (() => string)[] = [];
  const buses: Bus[] = [];
  before(async () => {
    for (const f of [deliverMain, cliMain]) assert.ok(existsSync(f), `${f} is not built: run npm run build`);
    nats = await startNats();
    tokens = await startTokenServer({ accessTtlSec: 3 });
    target = await startTarget();
  });
  after(async () => {
    for (const b of buses) await b.close();
    await target.close();
    await tokens.close();
    await nats.stop({ removeStore: true });
  });

  /** A bus of its own (prefix) per test, and the refresh token its connector starts with. */
  async function setup() {
    const prefix = uniquePrefix();
    const bus = await testBus(nats.url, prefix);
    buses.push(bus);
    return { prefix, bus, seed: tokens.consent() };
  }
  async function startDeliver(prefix: string, seed: string, env: Record<string, string> = {}) {
    const port = await freePort();
    const p = startProcess({ command: process.execPath, args: [deliverMain], env: {
      NATS_URL: nats.url, BUS_PREFIX: prefix, BUS_CATALOG: catalog, DELIVER_OPS_PORT: String(port), DELIVER_CONCURRENCY: '1',
      OCRM_URL: target.url, OCRM_TOKEN_URL: tokens.url, OCRM_CLIENT_ID: tokens.clientId, OCRM_CLIENT_SECRET: tokens.clientSecret,
      OCRM_REFRESH_TOKEN: seed, BUS_TOKEN_KEY: KEY, NODE_ENV: 'production', LOG_LEVEL: 'debug', ...env,
    } });
    outputs.push(() => p.output());
    return { p, port };
  }
  /** Started (its credentials checked: a token is stored) and ready. */
  const ready = async (d: { p: TestProcess; port: number }) => {
    await d.p.waitForOutput(/deliver started/, 'deliver started', 30_000);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${d.port}/readyz`).catch(() => undefined))?.status === 200, { what: 'deliver ready', intervalMs: 200 });
  };
  const delivered = async (port: number) => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Number(/deliver_outcomes_total\{[^}]*outcome="delivered"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
  };
  let n = 0;
  async function send(bus: Bus): Promise<DeliveryCommand> {
    const id = `c${++n}`;
    const cmd: DeliveryCommand = {
      id: `oauthcrm:evt-${id}`, connector: 'oauthcrm', action: 'upsert', target: { type: 'contact', id }, fields: { email: `${id}@example.com` }, sourceOwned: ['email'],
      entity: { type: 'contact', id }, version: 1, event: { id: `evt-${id}`, type: 'contact.updated', source: 'test', occurredAt: new Date().toISOString(), schemaVersion: 1 },
      correlationId: `corr-${id}`, idempotencyKey: `oauthcrm:evt-${id}`,
    };
    await bus.publish(bus.names.subjects.delivery('oauthcrm', 'contact', cmd.entity), encode(cmd), { msgId: cmd.id, headers: commandHeaders(cmd) });
    return cmd;
  }
  const appliedWith = (cmd: DeliveryCommand) => target.calls.filter((c) => c.idempotencyKey === cmd.idempotencyKey).map((c) => String(c.headers.authorization).slice(7));
  const landed = (cmd: DeliveryCommand) => waitFor(() => target.outcomes.has(cmd.idempotencyKey), { what: `${cmd.id} delivered`, timeoutMs: 60_000, intervalMs: 100 });
  /** The stored access token is past its skew: the next call must refresh. */
  const staleStored = async (bus: Bus) => {
    const kv = await bus.kv(bus.names.kv.tokens);
    await waitFor(async () => {
      const e = await kv.get('oauth.oauthcrm');
      return !!e && e.json<{ expiresAtMs: number }>().expiresAtMs - 1_000 < Date.now();
    }, { what: 'the stored access token to go stale', timeoutMs: 10_000, intervalMs: 100 });
  };

  it('two deliver processes, a token endpoint taking 15 s: one refresh request, no reuse, both deliver with the new token', async () => {
    const { prefix, bus, seed } = await setup();
    const a = await startDeliver(prefix, seed);
    await ready(a);
    const b = await startDeliver(prefix, seed);
    try {
      await ready(b);
      await staleStored(bus);
      tokens.setAccessTtl(120);
      tokens.setDelay(15_000);
      const from = tokens.requests.length;
      const started = Date.now();
      // concurrency 1 each and two commands: each process takes one and needs the token
      const cmds = [await send(bus), await send(bus)];
      await waitFor(async () => (await delivered(a.port)) >= 1 && (await delivered(b.port)) >= 1, { what: 'both processes delivered', timeoutMs: 60_000, intervalMs: 250 });
      const during = tokens.requests.slice(from);
      assert.equal(during.length, 1, `one token request while the endpoint was slow (${during.map((r) => r.outcome).join(', ')})`);
      assert.equal(during[0]!.outcome, 'issued');
      assert.ok(Date.now() - started >= 15_000, 'they waited for the slow answer');
      assert.equal(tokens.reuses(), 0);
      const used = new Set(cmds.flatMap(appliedWith));
      assert.equal(used.size, 1, 'both used the same, new token');
      assert.ok(tokens.accepts([...used][0]!));
    } finally {
      tokens.setDelay(0);
      tokens.setAccessTtl(3);
      a.p.kill('SIGKILL');
      b.p.kill('SIGKILL');
    }
  });

  it('a quiet period longer than every bucket TTL in force (bus_leases shortened to 2 s), then traffic: the refresh succeeds with the rotated token', async () => {
    const { prefix, bus, seed } = await setup();
    const d = await startDeliver(prefix, seed);
    try {
      await ready(d);
      // after the service applied the standard topology: the leases bucket's max age shortened to 2 s
      const short = topology({ prefix });
      short.kv = short.kv.map((k) => (k.bucket === bus.names.kv.leases ? { ...k, ttlSec: 2 } : k));
      await bus.applyTopology(short);
      const kv = await bus.kv(bus.names.kv.tokens);
      assert.equal((await kv.status()).ttl, 0, 'the tokens bucket has no max age');
      const first = await send(bus);
      await landed(first);
      const lastWrite = (await kv.get('oauth.oauthcrm'))!.created.getTime();
      await waitFor(() => Date.now() > lastWrite + 3_000, { what: 'a quiet period past the 2 s bucket TTL and the 3 s access token', timeoutMs: 10_000 });
      assert.ok(await kv.get('oauth.oauthcrm'), 'the entry (and its refresh token) is still there');
      const second = await send(bus);
      await landed(second);
      const after = tokens.requests.filter((r) => r.at > lastWrite);
      assert.ok(after.some((r) => r.outcome === 'issued'), 'refreshed after the quiet period');
      assert.ok(after.every((r) => r.outcome === 'issued'), `every refresh after the quiet period succeeded (${after.map((r) => r.outcome).join(', ')})`);
      assert.equal(tokens.reuses(), 0);
      assert.equal(d.p.output().includes('AUTH_REFRESH_TOKEN_REFUSED'), false);
    } finally {
      d.p.kill('SIGKILL');
    }
  });

  it('a deliver process SIGKILLed after the token endpoint answered and the answer was stored: the next one uses the stored rotated token, no reuse', async () => {
    const { prefix, bus, seed } = await setup();
    const a = await startDeliver(prefix, seed);
    let b: Awaited<ReturnType<typeof startDeliver>> | undefined;
    try {
      await ready(a);
      await staleStored(bus);
      const kv = await bus.kv(bus.names.kv.tokens);
      const revision = (await kv.get('oauth.oauthcrm'))!.revision;
      target.script({ hang: true }); // the call made with the new token never answers: the process dies in it
      const cmd = await send(bus);
      await waitFor(() => appliedWith(cmd).length === 1, { what: 'the call with the refreshed token in flight', timeoutMs: 15_000 });
      assert.ok((await kv.get('oauth.oauthcrm'))!.revision > revision, 'the answer was stored before the token was used');
      a.p.kill('SIGKILL');
      await a.p.exited;
      const killedWith = appliedWith(cmd)[0]!;
      b = await startDeliver(prefix, seed); // the environment still names the first refresh token
      await landed(cmd);
      assert.equal(tokens.reuses(), 0, 'no refresh token was used twice');
      assert.equal(tokens.requests.filter((r) => r.refreshToken === seed).length, 1, 'the environment\'s refresh token was used once, by the first process');
      const used = appliedWith(cmd);
      assert.ok(used.length >= 2 && used.every((t) => t === killedWith || tokens.accepts(t)));
    } finally {
      a.p.kill('SIGKILL');
      b?.p.kill('SIGKILL');
    }
  });

  it('a revoked token family pauses the connector; bus connectors auth --set-refresh-token resumes it and it delivers', async () => {
    const { prefix, bus, seed } = await setup();
    const d = await startDeliver(prefix, seed);
    const cli = (args: string[], input?: string) => new Promise<{ code: number; out: string; stdout: string }>((resolve) => {
      const child = execFile(process.execPath, [cliMain, ...args], { env: { ...process.env, NATS_URL: nats.url, BUS_PREFIX: prefix, BUS_TOKEN_KEY: KEY, NODE_ENV: 'production' } },
        (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}`, stdout }));
      child.stdin?.end(input ?? '');
    });
    try {
      await ready(d);
      tokens.revokeAll(); // e.g. the user revoked the app, or the provider saw a reuse
      await staleStored(bus);
      const refused = await send(bus);
      const entry = await waitFor(async () => {
        for await (const m of readStream(bus.jsm, bus.names.streams.dlq)) {
          const e = decodeDeadLetter(m.data);
          if (e.correlationId === refused.correlationId) return e;
        }
        return undefined;
      }, { what: 'the refused refresh dead-lettered', timeoutMs: 30_000 });
      assert.equal(entry.failureClass, 'permanent');
      assert.match(entry.reason, /refresh token.*--set-refresh-token/);
      const paused = await waitFor(async () => {
        const e = await (await bus.kv(bus.names.kv.connectors)).get('oauthcrm');
        return e?.json<{ paused?: boolean }>().paused ? true : undefined;
      }, { what: 'the connector paused' });
      assert.ok(paused);
      const shown = await cli(['connectors', 'auth', 'oauthcrm']);
      outputs.push(() => shown.out);
      assert.equal(shown.code, 0, shown.out);
      assert.match(shown.out, /refresh token refused\s+\S+: set a new one/);
      const waiting = await send(bus); // waits in DELIVERIES while paused
      const set = await cli(['connectors', 'auth', 'oauthcrm', '--set-refresh-token'], tokens.consent());
      outputs.push(() => set.out);
      assert.equal(set.code, 0, set.out);
      assert.match(set.out, /refresh token set for oauthcrm.*resumed/);
      await landed(waiting);
      assert.ok(appliedWith(waiting).every((t) => tokens.accepts(t)));
      const json = await cli(['connectors', 'auth', 'oauthcrm', '--json']);
      outputs.push(() => json.out);
      const state = (JSON.parse(json.stdout) as { result: { state: { hasRefreshToken: boolean; refused?: unknown; refreshTokenFrom: string } } }).result.state;
      assert.equal(state.hasRefreshToken, true);
      assert.equal(state.refused, undefined, 'the refusal is cleared');
      assert.equal(state.refreshTokenFrom, 'token endpoint', 'the operator\'s refresh token was used and rotated');
      const audited = await waitFor(async () => {
        for await (const r of auditRecordsOf(bus, 'auth', 'refresh_token_set')) {
          if (r.stage === 'auth' && r.outcome === 'refresh_token_set' && r.connector === 'oauthcrm') return r;
        }
        return undefined;
      }, { what: 'the audit record of the new refresh token' });
      assert.match(audited.reason ?? '', /resumed/);
    } finally {
      d.p.kill('SIGKILL');
    }
  });

  it('NODE_ENV=production without BUS_TOKEN_KEY: deliver refuses to start, naming the variable and how to make a key', async () => {
    const { prefix, seed } = await setup();
    const d = await startDeliver(prefix, seed, { BUS_TOKEN_KEY: '' });
    assert.equal((await d.p.exited).code, 1);
    assert.match(d.p.output(), /BUS_TOKEN_KEY is not set.*openssl rand -base64 32/);
  });

  it('no token in the server\'s raw store, nor in any log line or CLI output of the run', async () => {
    const issued = tokens.issued();
    assert.ok(issued.length > 10, `tokens were issued (${issued.length})`);
    const logs = outputs.map((o) => o()).join('\n');
    assert.ok(logs.includes('access token refreshed and stored'), 'the processes logged their refreshes');
    for (const t of issued) assert.ok(!logs.includes(t), 'a token in a log line');
    if (!nats.storeDir) return;
    const raw = filesUnder(nats.storeDir).map((f) => readFileSync(f).toString('latin1')).join('\n');
    assert.ok(raw.includes('oauth.oauthcrm'), 'the search covers the tokens bucket');
    for (const t of issued) assert.ok(!raw.includes(t), 'a token in the store\'s bytes');
  });
});
