// The examples/ticketing catalog, end to end through the real services: what README →
// "Your first connector" has a newcomer do, step by step.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { freePort, startNats, startProcess, type TestNats, type TestProcess, uniquePrefix, waitFor } from '@bus/testkit';

const root = fileURLToPath(new URL('../../', import.meta.url));
const main = (svc: string) => `${root}services/${svc}/dist/main.js`;
const catalog = `${root}examples/ticketing/dist/catalog.js`;
const trackerMain = `${root}examples/ticketing/dist/tracker-main.js`;
const cliMain = `${root}libs/cli/dist/main.js`;
const SECRET = 'example-helpdesk-secret';
const TRACKER_KEY = 'example-tracker-key';

/** What the helpdesk sends: HMAC-SHA256 over `<timestamp>.<body>`, hex, `sha256=` before it. */
function signed(body: string, delivery: string, secret = SECRET) {
  const ts = String(Math.floor(Date.now() / 1000));
  return {
    'content-type': 'application/json',
    'x-helpdesk-delivery': delivery,
    'x-helpdesk-timestamp': ts,
    'x-helpdesk-signature': `sha256=${createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex')}`,
  };
}

describe('examples/ticketing through ingest, transform and deliver (BUS_CATALOG), seen at its tracker and in bus trace', () => {
  let nats: TestNats;
  const procs: TestProcess[] = [];
  let ingestUrl: string;
  let trackerUrl: string;
  let env: Record<string, string>;
  before(async () => {
    for (const f of [main('ingest'), main('transform'), main('deliver'), catalog, trackerMain, cliMain])
      assert.ok(existsSync(f), `${f} is not built: run npm run build`);
    nats = await startNats();
    const [trackerPort, ingestPort, transformPort, deliverPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    trackerUrl = `http://127.0.0.1:${trackerPort}`;
    ingestUrl = `http://127.0.0.1:${ingestPort}`;
    env = { NATS_URL: nats.url, BUS_PREFIX: uniquePrefix(), BUS_CATALOG: catalog, LOG_LEVEL: 'info' };
    const tracker = startProcess({ command: process.execPath, args: [trackerMain], env: { TRACKER_PORT: String(trackerPort), TRACKER_API_KEY: TRACKER_KEY } });
    procs.push(tracker);
    await tracker.waitForOutput(/issue tracker listening/, 'the tracker');
    const start = (svc: string, own: Record<string, string>) => {
      const p = startProcess({ command: process.execPath, args: ['--enable-source-maps', main(svc)], env: { ...env, ...own } });
      procs.push(p);
      return p;
    };
    const services = [
      start('ingest', { INGEST_PORT: String(ingestPort), INGEST_API_TOKENS: 'unused-token:shop', HELPDESK_WEBHOOK_SECRET: SECRET }),
      start('transform', { TRANSFORM_OPS_PORT: String(transformPort) }),
      start('deliver', { DELIVER_OPS_PORT: String(deliverPort), TRACKER_BASE_URL: trackerUrl, TRACKER_API_KEY: TRACKER_KEY }),
    ];
    for (const [i, svc] of ['ingest', 'transform', 'deliver'].entries()) {
      await services[i]!.waitForOutput(new RegExp(`${svc} started`), `${svc} started`, 30_000);
      // the start-up log says which catalog runs and why
      assert.match(
        services[i]!.output(),
        /catalog \S+examples\/ticketing\/dist\/catalog\.js from BUS_CATALOG \(1 connector\(s\) tracker; 1 source\(s\) helpdesk\)/,
      );
    }
  });
  after(async () => {
    for (const p of procs.reverse()) {
      p.kill('SIGTERM');
      await p.exited;
    }
    await nats?.stop({ removeStore: true });
  });

  const ticket = (version: number, status: string) =>
    JSON.stringify({
      event: version === 1 ? 'ticket.opened' : 'ticket.updated',
      ticket: { id: '4711', version, subject: 'Printer on fire', status, priority: 'urgent', requester: { email: 'ada@example.com' } },
    });
  const issues = async () =>
    (await (await fetch(`${trackerUrl}/issues`, { headers: { 'x-api-key': TRACKER_KEY } })).json()) as Record<
      string,
      { version: number; fields: Record<string, unknown> }
    >;

  it('a signed helpdesk webhook becomes issue HD-4711 at the tracker; bus trace shows stored → transformed → delivered', async () => {
    const body = ticket(1, 'open');
    const res = await fetch(`${ingestUrl}/webhooks/helpdesk`, { method: 'POST', headers: signed(body, 'd-1'), body });
    const answer = (await res.json()) as { status: string; correlationId: string };
    assert.equal(res.status, 202, JSON.stringify(answer));
    assert.equal(answer.status, 'stored');
    const issue = await waitFor(async () => (await issues())['HD-4711'], { what: 'issue HD-4711 at the tracker', timeoutMs: 30_000, intervalMs: 100 });
    assert.deepEqual(issue, { version: 1, fields: { title: 'Printer on fire', status: 'open', priority: 'urgent', reporter: 'ada@example.com' } });

    const trace = await waitFor(
      async () => {
        const { stdout } = await promisify(execFile)(process.execPath, [cliMain, 'trace', answer.correlationId, '--json'], { env: { ...process.env, ...env } });
        const out = JSON.parse(stdout) as { ok: boolean; result: { stage: string; outcome: string }[] };
        assert.equal(out.ok, true);
        return out.result.some((r) => r.stage === 'deliver') ? out.result : undefined;
      },
      { what: 'the whole trace from bus trace', timeoutMs: 15_000, intervalMs: 200 },
    );
    assert.deepEqual(
      trace.map((r) => `${r.stage}:${r.outcome}`),
      ['ingest:stored', 'transform:transformed', 'deliver:delivered'],
    );

    // the same delivery again is a duplicate; the next version lands over the first
    const again = await fetch(`${ingestUrl}/webhooks/helpdesk`, { method: 'POST', headers: signed(body, 'd-1'), body });
    assert.equal(((await again.json()) as { status: string }).status, 'duplicate');
    const v2 = ticket(2, 'solved');
    assert.equal((await fetch(`${ingestUrl}/webhooks/helpdesk`, { method: 'POST', headers: signed(v2, 'd-2'), body: v2 })).status, 202);
    await waitFor(async () => (await issues())['HD-4711']?.version === 2, { what: 'version 2 at the tracker', timeoutMs: 30_000, intervalMs: 100 });
    assert.equal((await issues())['HD-4711']!.fields.status, 'solved');
  });

  it('a webhook signed with another secret is refused (401) and reaches nothing; an unknown source is 404', async () => {
    const body = ticket(3, 'closed');
    const res = await fetch(`${ingestUrl}/webhooks/helpdesk`, { method: 'POST', headers: signed(body, 'd-3', 'not-the-secret'), body });
    assert.equal(res.status, 401);
    assert.match(String(res.headers.get('content-type')), /^application\/problem\+json/);
    assert.deepEqual(await res.json().then((p) => [(p as { type: string }).type, (p as { reason: string }).reason]), [
      'urn:integration-bus:problem:signature-mismatch',
      'signature_mismatch',
    ]);
    assert.equal((await fetch(`${ingestUrl}/webhooks/zendesk`, { method: 'POST', headers: signed(body, 'd-4'), body })).status, 404);
    assert.notEqual((await issues())['HD-4711']?.version, 3);
  });
});
