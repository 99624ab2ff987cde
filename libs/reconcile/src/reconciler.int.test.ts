import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, loadBusConfig } from '@bus/bus';
import { createLogger } from '@bus/observability';
import { topology } from '@bus/streams';
import { startNats, startProcess, type TestNats, testPgUrl, uniquePrefix, waitFor } from '@bus/testkit';
import pg from 'pg';
import { reportStore } from './index.js';

// TEST_PG_URL, else a PostgreSQL private to this test process (testkit)
const PG_URL = await testPgUrl();
const silent = createLogger({ service: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

type LogLine = { level: number; msg: string; connector?: string; runId?: string; code?: string };
const logLines = (output: string): LogLine[] =>
  output.split('\n').filter((l) => l.startsWith('{')).flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });

describe('reconciler: scheduled runs survive NATS errors', () => {
  const schema = `recs_${uniquePrefix()}`;
  const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
  let nats: TestNats;
  let bus: Bus;
  let prefix: string;

  before(async () => {
    nats = await startNats();
    prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'reconciler-test', log: silent });
    await bus.applyTopology(topology({ prefix }));
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.query(`CREATE TABLE ${schema}.contacts (id text PRIMARY KEY, version bigint NOT NULL, email text, name text, lead_score int)`);
  });
  after(async () => {
    await bus.close();
    await nats.stop({ removeStore: true });
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  });

  it('NATS stopped: each scheduled run that fails is logged with its run id and code and counted; the process stays up and the next tick runs', async () => {
    const proc = startProcess({ command: process.execPath, args: [new URL('./fixtures/scheduled-reconciler.js', import.meta.url).pathname],
      env: { NATS_URL: nats.url, BUS_PREFIX: prefix, PG_URL, PG_SCHEMA: schema } });
    let exited = false;
    void proc.exited.then(() => (exited = true));
    try {
      const metricsUrl = (await proc.waitForOutput(/metrics at (\S+)/, 'the reconcile fixture started'))[1]!;
      const lastDone = async () => {
        const r = await reportStore(bus).lastRun('pgcrm');
        return r?.status === 'done' ? r : undefined;
      };
      const first = await waitFor(lastDone, { what: 'a first scheduled run done', timeoutMs: 15_000 });

      await nats.stop();
      const failures = () => logLines(proc.output()).filter((l) => /^reconcile run (failed|could not start)/.test(l.msg));
      await waitFor(() => exited || failures().length >= 2, { what: 'two scheduled runs failed while NATS is down (a tick after a failure still runs)', timeoutMs: 40_000 });
      assert.equal(exited, false, `the process is still up:\n${proc.output().slice(-1_500)}`);
      for (const f of failures()) {
        assert.equal(f.level, 50, 'logged at error');
        assert.equal(f.connector, 'pgcrm');
        assert.match(f.runId ?? '', /^r[0-9a-z]+$/, 'with the run id');
        assert.ok(f.code, 'with the error code');
      }

      await nats.start();
      const next = await waitFor(async () => {
        const r = await lastDone();
        return r && r.runId !== first.runId ? r : undefined;
      }, { what: 'a later scheduled run done once NATS is back', timeoutMs: 40_000 });
      assert.notEqual(next.runId, first.runId);
      const metrics = await (await fetch(metricsUrl)).text();
      assert.match(metrics, /reconcile_runs_failed_total\{[^}]*connector="pgcrm"[^}]*code="[^"]+"[^}]*\} [1-9]/);
      assert.equal(exited, false, 'still up');
    } finally {
      proc.kill('SIGKILL');
      await proc.exited;
    }
  });
});
