import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { freePort, startNats, startProcess, type TestNats, waitFor } from '@bus/testkit';
import { Webhook } from 'standardwebhooks';

const main = fileURLToPath(new URL('./main.js', import.meta.url));
const secret = `whsec_${Buffer.from('ingest-main-test-secret').toString('base64')}`;

describe('ingest process', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop({ removeStore: true }));

  it('refuses to start without its secrets and token, listing every missing one', async () => {
    const p = startProcess({ command: process.execPath, args: [main], env: { NATS_URL: nats.url, INGEST_API_TOKENS: '' } });
    const exit = await p.exited;
    assert.equal(exit.code, 1);
    assert.match(p.output(), /INGEST_API_TOKENS: required/);
  });

  it('starts, becomes ready, stores a signed webhook, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const p = startProcess({ command: process.execPath, args: [main], env: {
      NATS_URL: nats.url, BUS_PREFIX: nats.prefix, INGEST_PORT: String(port), INGEST_API_TOKENS: 't',
      STANDARD_WEBHOOK_SECRET: secret, STRIPE_WEBHOOK_SECRET: 's', GITHUB_WEBHOOK_SECRET: 'g',
    } });
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { what: 'ingest ready', timeoutMs: 15_000 });
      const payload = JSON.stringify({ type: 'contact.updated', data: { id: 'c1', version: 1 } });
      const at = new Date();
      const res = await fetch(`${base}/webhooks/standard`, { method: 'POST', body: payload, headers: {
        'content-type': 'application/json', 'webhook-id': 'msg_main_1', 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': new Webhook(secret).sign('msg_main_1', at, payload),
      } });
      assert.equal(res.status, 202, await res.text());
      p.kill('SIGTERM');
      assert.deepEqual(await p.exited, { code: 0, signal: null });
      assert.match(p.output(), /stopped cleanly/);
    } finally {
      p.kill('SIGKILL');
    }
  });
});
