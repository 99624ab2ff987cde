import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { freePort, startNats, startProcess, type TestNats, waitFor } from '@bus/testkit';

const main = fileURLToPath(new URL('./main.js', import.meta.url));

describe('deliver process', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop({ removeStore: true }));

  it('refuses to start without a connector\'s target URL, naming the connector and the variable', async () => {
    const p = startProcess({ command: process.execPath, args: [main], env: { NATS_URL: nats.url, CRM_BASE_URL: '', CRM_API_KEY: 'k', WAREHOUSE_BASE_URL: 'http://127.0.0.1:1' } });
    assert.equal((await p.exited).code, 1);
    assert.match(p.output(), /connector \\"crm\\" delivery: set CRM_BASE_URL/);
  });

  it('starts a deliverer per connector, is ready, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const p = startProcess({ command: process.execPath, args: [main], env: {
      NATS_URL: nats.url, BUS_PREFIX: nats.prefix, DELIVER_OPS_PORT: String(port),
      CRM_BASE_URL: 'http://127.0.0.1:1/crm', CRM_API_KEY: 'k', WAREHOUSE_BASE_URL: 'http://127.0.0.1:1/warehouse',
    } });
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, { what: 'deliver ready', timeoutMs: 15_000 });
      await p.waitForOutput(/deliver started/, 'the deliverers');
      p.kill('SIGTERM');
      assert.deepEqual(await p.exited, { code: 0, signal: null });
    } finally {
      p.kill('SIGKILL');
    }
  });
});
