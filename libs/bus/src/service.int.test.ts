import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, startNats, startProcess, type TestNats, type TestProcess, uniquePrefix, waitFor } from '@bus/testkit';

type LogLine = { level: number; msg: string; service?: string; code?: string; origin?: string; err?: { message?: string; stack?: string } };
const logLines = (p: TestProcess): LogLine[] =>
  p.output().split('\n').filter((l) => l.startsWith('{')).flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });

describe('runService: errors nothing handled', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop({ removeStore: true }));

  async function stray(kind: 'rejection' | 'exception') {
    const port = await freePort();
    const p = startProcess({
      command: process.execPath, args: [fileURLToPath(new URL('./fixtures/stray-service.js', import.meta.url))],
      env: { NATS_URL: nats.url, BUS_PREFIX: uniquePrefix(), STRAY_OPS_PORT: String(port), STRAY: kind, LOG_LEVEL: 'info', BUS_DLQ_STATS_INTERVAL_MS: '0' },
    });
    await p.waitForOutput(/stray started/, 'the stray service started');
    return { p, url: `http://127.0.0.1:${port}` };
  }

  it('an unhandled rejection is logged at error with the service and the error, counted on /metrics, and the service keeps running', async () => {
    const { p, url } = await stray('rejection');
    try {
      const logged = () => logLines(p).filter((l) => /nothing handled it/.test(l.msg));
      p.kill('SIGUSR2');
      await waitFor(() => logged().length === 1, { what: 'the first rejection logged' });
      p.kill('SIGUSR2');
      await waitFor(() => logged().length === 2, { what: 'the second rejection logged: the process is still there to log it' });
      const [line] = logged();
      assert.equal(line!.level, 50, 'at error');
      assert.equal(line!.service, 'stray');
      assert.match(line!.msg, /^stray: /);
      assert.equal(line!.code, 'STRAY_TEST');
      assert.match(line!.err?.message ?? '', /a stray promise, for the test/);
      assert.match(line!.err?.stack ?? '', /stray-service/, 'with the stack that made it');
      assert.match(await (await fetch(`${url}/metrics`)).text(), /bus_unhandled_rejections_total\{service="stray"\} 2\n/);
      assert.equal((await fetch(`${url}/healthz`)).status, 200, 'still serving');
      p.kill('SIGTERM');
      assert.deepEqual(await p.exited, { code: 0, signal: null }, 'and it still drains and stops cleanly');
    } finally {
      p.kill('SIGKILL');
    }
  });

  it('an uncaught exception is logged at fatal with the service and the error, and the process exits 1 for its launcher to start it again', async () => {
    const { p } = await stray('exception');
    try {
      p.kill('SIGUSR2');
      assert.deepEqual(await p.exited, { code: 1, signal: null });
      const fatal = logLines(p).filter((l) => l.level === 60);
      assert.equal(fatal.length, 1, p.output().slice(-1_500));
      assert.equal(fatal[0]!.service, 'stray');
      assert.match(fatal[0]!.msg, /^stray: uncaught exception; exiting with code 1/);
      assert.equal(fatal[0]!.origin, 'uncaughtException');
      assert.match(fatal[0]!.err?.message ?? '', /a stray throw, for the test/);
    } finally {
      p.kill('SIGKILL');
    }
  });
});
