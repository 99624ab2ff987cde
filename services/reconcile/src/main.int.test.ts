import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { connectBus, loadBusConfig } from '@bus/bus';
import { createLogger } from '@bus/observability';
import { freePort, startNats, startProcess, type TestNats, waitFor } from '@bus/testkit';

const main = fileURLToPath(new URL('./main.js', import.meta.url));

describe('reconcile process', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop({ removeStore: true }));

  it('runs the projection, answers `bus reconcile run` requests (one run per connector at a time), and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const p = startProcess({ command: process.execPath, args: [main], env: {
      NATS_URL: nats.url, BUS_PREFIX: nats.prefix, RECONCILE_OPS_PORT: String(port), RECONCILE_EVERY_SEC: '0',
      CRM_BASE_URL: 'http://127.0.0.1:1/crm', CRM_API_KEY: 'k', WAREHOUSE_BASE_URL: 'http://127.0.0.1:1/warehouse', WAREHOUSE_TOKEN_URL: '',
    } });
    const bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: nats.prefix }), name: 'reconcile-main-test', log: createLogger({ service: 't', level: 'silent' }) });
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, { what: 'reconcile ready', timeoutMs: 15_000 });
      await p.waitForOutput(/reconcile started/, 'the reconciler');
      const ask = async (body: unknown) => (await bus.nc.request(bus.names.subjects.reconcileRun, JSON.stringify(body), { timeout: 5_000 })).json<Record<string, unknown>>();
      assert.match(String((await ask({ connector: 'nope' })).error), /no connector "nope"/);
      const started = await ask({ connector: 'crm', dryRun: true });
      assert.match(String(started.runId), /^r[a-z0-9]+$/);
      await waitFor(async () => /reconcile_last_success|reconcile_entities_checked_total/.test(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()), { what: 'reconcile metrics served' });
      p.kill('SIGTERM');
      assert.deepEqual(await p.exited, { code: 0, signal: null });
    } finally {
      p.kill('SIGKILL');
      await bus.close();
    }
  });
});
