import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Bus } from '@bus/bus';
import { commandHeaders, type DeliveryCommand } from '@bus/connectors';
import { encode } from '@bus/envelope';
import { freePort, startNats, startProcess, startTarget, startTokenServer, type TestNats, type TestProcess, type TestTarget, type TestTokenServer, uniquePrefix, waitFor } from '@bus/testkit';
import { testBus } from './support.js';

const deliverMain = fileURLToPath(new URL('../../services/deliver/dist/main.js', import.meta.url));
const catalog = fileURLToPath(new URL('./fixtures/scopes-catalog.js', import.meta.url));

describe('OAuth2 scopes: a token granted without a required scope, through a real deliver process', () => {
  let nats: TestNats;
  let tokens: TestTokenServer;
  let target: TestTarget;
  const buses: Bus[] = [];
  const procs: TestProcess[] = [];
  before(async () => {
    assert.ok(existsSync(deliverMain), `${deliverMain} is not built: run npm run build`);
    nats = await startNats();
    tokens = await startTokenServer({ accessTtlSec: 3 });
    target = await startTarget();
  });
  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const b of buses) await b.close();
    await target.close();
    await tokens.close();
    await nats.stop({ removeStore: true });
  });

  async function startDeliver() {
    const prefix = uniquePrefix();
    const bus = await testBus(nats.url, prefix);
    buses.push(bus);
    const port = await freePort();
    const p = startProcess({ command: process.execPath, args: [deliverMain], env: {
      NATS_URL: nats.url, BUS_PREFIX: prefix, BUS_CATALOG: catalog, DELIVER_OPS_PORT: String(port),
      SCRM_URL: target.url, SCRM_TOKEN_URL: tokens.url, SCRM_CLIENT_ID: tokens.clientId, SCRM_CLIENT_SECRET: tokens.clientSecret, LOG_LEVEL: 'info',
    } });
    procs.push(p);
    await p.waitForOutput(/deliver started/, 'deliver started', 30_000);
    return { bus, port, p };
  }
  const readyz = async (port: number) => {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    return { status: res.status, body: (await res.json()) as { checks: { name: string; ok: boolean; reason?: string }[] } };
  };
  const scopeWaits = async (port: number) => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Number(/deliver_waits_total\{[^}]*reason="scope"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
  };
  let n = 0;
  async function send(bus: Bus): Promise<DeliveryCommand> {
    const id = `s${++n}`;
    const cmd: DeliveryCommand = {
      id: `scopedcrm:evt-${id}`, connector: 'scopedcrm', action: 'upsert', target: { type: 'contact', id }, fields: { email: `${id}@example.com` }, sourceOwned: ['email'],
      entity: { type: 'contact', id }, version: 1, event: { id: `evt-${id}`, type: 'contact.updated', source: 'test', occurredAt: new Date().toISOString(), schemaVersion: 1 },
      correlationId: `corr-${id}`, idempotencyKey: `scopedcrm:evt-${id}`,
    };
    await bus.publish(bus.names.subjects.delivery('scopedcrm', 'contact', cmd.entity), encode(cmd), { msgId: cmd.id, headers: commandHeaders(cmd) });
    return cmd;
  }
  const sentFor = (cmd: DeliveryCommand) => target.calls.filter((c) => c.idempotencyKey === cmd.idempotencyKey).length;

  it('granted without crm.write at start: /readyz fails naming connector and scope, nothing is sent; a token with it (next refresh) delivers', async () => {
    tokens.setScope('crm.read');
    const { bus, port } = await startDeliver();
    const r = await waitFor(async () => {
      const got = await readyz(port);
      return got.body.checks.find((c) => c.name === 'credentials:scopedcrm' && !c.ok && c.reason) ? got : undefined;
    }, { what: 'the credentials check to fail', timeoutMs: 20_000, intervalMs: 100 });
    assert.equal(r.status, 503);
    const check = r.body.checks.find((c) => c.name === 'credentials:scopedcrm')!;
    assert.match(check.reason!, /AUTH_SCOPE_MISSING.*"scopedcrm".*required scope crm\.write \(granted: crm\.read\)/);
    const cmd = await send(bus);
    // the command was taken and held back for the scope (not merely not yet consumed) ...
    await waitFor(async () => (await scopeWaits(port)) >= 2, { what: 'the command held back for the missing scope', timeoutMs: 20_000, intervalMs: 100 });
    // ... across at least one refresh (3 s tokens, refreshed ~1.5 s before expiry) that still lacked it
    const requestsBefore = tokens.requests.length;
    await waitFor(() => tokens.requests.length > requestsBefore, { what: 'a token refresh', timeoutMs: 10_000, intervalMs: 100 });
    await waitFor(async () => (await scopeWaits(port)) >= 3, { what: 'held back after the refresh too', timeoutMs: 20_000, intervalMs: 100 });
    assert.equal(sentFor(cmd), 0, 'nothing was sent with a token lacking crm.write');
    assert.equal(target.calls.length, 0);
    // the provider grants it now: the next refresh brings a token with it, readiness recovers, the waiting command lands
    tokens.setScope('crm.read crm.write');
    await waitFor(() => target.outcomes.has(cmd.idempotencyKey), { what: 'the held command delivered once the scope was granted', timeoutMs: 20_000, intervalMs: 100 });
    await waitFor(async () => (await readyz(port)).status === 200, { what: 'ready again', timeoutMs: 20_000, intervalMs: 200 });
    const used = target.calls.filter((c) => c.idempotencyKey === cmd.idempotencyKey).map((c) => String(c.headers.authorization).slice(7));
    assert.ok(used.every((t) => tokens.accepts(t) || t.startsWith('at_')));
  });

  it('a scope withdrawn at the provider: the token after the next refresh is refused here, /readyz fails again, new commands wait unsent', async (t) => {
    tokens.setScope('crm.read crm.write');
    const { bus, port } = await startDeliver();
    await waitFor(async () => (await readyz(port)).status === 200, { what: 'ready', timeoutMs: 20_000, intervalMs: 100 });
    const first = await send(bus);
    await waitFor(() => target.outcomes.has(first.idempotencyKey), { what: 'delivered while granted', timeoutMs: 20_000, intervalMs: 100 });
    tokens.setScope('crm.read');
    const withdrawnAt = Date.now();
    const r = await waitFor(async () => {
      const got = await readyz(port);
      return got.status === 503 ? got : undefined;
    }, { what: '/readyz to fail after the refresh without crm.write', timeoutMs: 20_000, intervalMs: 100 });
    assert.match(r.body.checks.find((c) => c.name === 'credentials:scopedcrm')!.reason!, /required scope crm\.write/);
    t.diagnostic(`/readyz failed ${Date.now() - withdrawnAt} ms after the scope was withdrawn (3 s tokens, 5 s readiness loop)`);
    const second = await send(bus);
    const waitsBefore = await scopeWaits(port);
    await waitFor(async () => (await scopeWaits(port)) > waitsBefore + 1, { what: 'the new command held back', timeoutMs: 20_000, intervalMs: 100 });
    assert.equal(sentFor(second), 0, 'nothing sent after the scope was withdrawn');
  });
});
