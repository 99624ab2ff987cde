import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { freePort, startNats, startProcess, type TestNats, waitFor } from '@bus/testkit';

const main = fileURLToPath(new URL('./main.js', import.meta.url));

describe('transform process', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop({ removeStore: true }));

  it('starts one consumer per demo connector, is ready, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const p = startProcess({ command: process.execPath, args: [main], env: { NATS_URL: nats.url, BUS_PREFIX: nats.prefix, TRANSFORM_OPS_PORT: String(port) } });
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, { what: 'transform ready', timeoutMs: 15_000 });
      assert.match(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), /bus_nats_connected\{service="transform"\} 1/);
      await p.waitForOutput(/transform started/, 'the consumers');
      assert.match(p.output(), /"connectors":"crm,warehouse"/);
      p.kill('SIGTERM');
      assert.deepEqual(await p.exited, { code: 0, signal: null });
    } finally {
      p.kill('SIGKILL');
    }
  });
});
