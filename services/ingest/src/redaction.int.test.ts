import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { freePort, startNats, startProcess, type TestNats, type TestProcess, waitFor } from '@bus/testkit';
import { Webhook } from 'standardwebhooks';

const main = fileURLToPath(new URL('./main.js', import.meta.url));

/** Every value below must never appear in any line ingest prints. */
const secrets = {
  STANDARD_WEBHOOK_SECRET: `whsec_${Buffer.from('redaction-test-standard-secret').toString('base64')}`,
  STRIPE_WEBHOOK_SECRET: 'whsec_redaction_stripe_secret',
  GITHUB_WEBHOOK_SECRET: 'redaction-github-secret',
  token: 'redaction-api-token-0001',
  apiKey: 'redaction-x-api-key-0002',
  cookie: 'session=redaction-cookie-0003',
  email: 'jane.redaction@example.com',
  phone: '+44-7700-900123',
};

describe('ingest: no secret and no personal field reaches its logs', () => {
  let nats: TestNats;
  let p: TestProcess;
  let base: string;

  before(async () => {
    nats = await startNats();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    p = startProcess({ command: process.execPath, args: [main], env: {
      NATS_URL: nats.url, BUS_PREFIX: nats.prefix, INGEST_PORT: String(port), LOG_LEVEL: 'debug',
      INGEST_API_TOKENS: `${secrets.token}:shop`, STANDARD_WEBHOOK_SECRET: secrets.STANDARD_WEBHOOK_SECRET,
      STRIPE_WEBHOOK_SECRET: secrets.STRIPE_WEBHOOK_SECRET, GITHUB_WEBHOOK_SECRET: secrets.GITHUB_WEBHOOK_SECRET,
    } });
    await waitFor(async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, { what: 'ingest ready', timeoutMs: 30_000 });
  });
  after(async () => {
    p?.kill('SIGKILL');
    await p?.exited;
    await nats?.stop({ removeStore: true });
  });

  it('signed, refused, quarantined, published, forbidden and unknown requests at debug: every line checked', async () => {
    const extra = { 'x-api-key': secrets.apiKey, cookie: secrets.cookie, authorization: `Bearer ${secrets.token}` };
    const standard = (id: string, data: Record<string, unknown>, secret = secrets.STANDARD_WEBHOOK_SECRET) => {
      const payload = JSON.stringify({ type: 'contact.updated', data });
      const at = new Date();
      const signature = new Webhook(secret).sign(id, at, payload);
      return { signature, send: () => fetch(`${base}/webhooks/standard`, { method: 'POST', body: payload, headers: {
        ...extra, 'content-type': 'application/json', 'x-correlation-id': `corr-${id}`, 'webhook-id': id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': signature,
      } }) };
    };
    const stored = standard('msg_r1', { id: 'c1', version: 1, email: secrets.email, phone: secrets.phone });
    assert.equal((await stored.send()).status, 202);
    const quarantined = standard('msg_r2', { id: 'c2', version: 'one', email: secrets.email });
    assert.equal((await quarantined.send()).status, 202);
    const forged = standard('msg_r3', { id: 'c3', version: 1, email: secrets.email }, `whsec_${Buffer.from('not-the-secret').toString('base64')}`);
    assert.equal((await forged.send()).status, 401);

    const stripeBody = JSON.stringify({ id: 'evt_1', type: 'customer.updated', data: { object: { id: 'cus_1', email: secrets.email } } });
    const t = Math.floor(Date.now() / 1000);
    const stripeSignature = `t=${t},v1=${createHmac('sha256', 'wrong').update(`${t}.${stripeBody}`).digest('hex')}`;
    assert.equal((await fetch(`${base}/webhooks/stripe`, { method: 'POST', body: stripeBody, headers: { ...extra, 'content-type': 'application/json', 'stripe-signature': stripeSignature } })).status, 401);
    const hubSignature = `sha256=${createHmac('sha256', 'wrong').update('{}').digest('hex')}`;
    assert.equal((await fetch(`${base}/webhooks/github`, { method: 'POST', body: '{}', headers: { ...extra, 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': hubSignature } })).status, 401);

    const batch = (source: string) => JSON.stringify({ source, events: [{ type: 'contact.updated', entity: { type: 'contact', id: 'c9' }, version: 1, data: { email: secrets.email } }] });
    const post = (body: string) => fetch(`${base}/events`, { method: 'POST', body, headers: { ...extra, 'content-type': 'application/json' } });
    assert.equal((await post(batch('shop'))).status, 200);
    assert.equal((await post(batch('standard'))).status, 403);
    assert.equal((await fetch(`${base}/webhooks/nosuch`, { method: 'POST', body: '{}', headers: { ...extra, 'content-type': 'application/json' } })).status, 404);

    // the last request's debug line is there, so every line before it is in the output
    await waitFor(() => /"path":"\/webhooks\/nosuch"/.test(p.output()), { what: 'the debug line of the last request' });
    p.kill('SIGTERM');
    await p.exited;
    const output = p.output();
    const lines = output.split('\n').filter((l) => l.startsWith('{'));
    assert.ok(lines.length >= 10, `ingest logged its requests at debug:\n${output}`);
    assert.match(output, /webhook refused/);
    assert.match(output, /"correlationId":"corr-msg_r1"/);
    const checked: [string, string][] = [...Object.entries(secrets), ['standard signature', stored.signature.split(',')[1]!], ['stripe signature', stripeSignature.split('v1=')[1]!],
      ['github signature', hubSignature.slice(7)]];
    const leaks = checked.filter(([, v]) => output.includes(v));
    assert.deepEqual(leaks.map(([k]) => k), [], `leaked into the logs:\n${output}`);
  });
});
