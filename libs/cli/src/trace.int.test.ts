import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, type Consumption, loadBusConfig } from '@bus/bus';
import { defineConnector } from '@bus/connectors';
import { createDeliverer, createDeliverMetrics, deliverDurable, resolveDelivery } from '@bus/delivery';
import { createEnvelope } from '@bus/envelope';
import { createMetrics } from '@bus/observability';
import { createProjector, getEntity } from '@bus/projection';
import { runReconcile } from '@bus/reconcile';
import { startNats, startProcess, type TestNats, testPgUrl, uniquePrefix, waitFor } from '@bus/testkit';
import pg from 'pg';
import { cliLog } from './context.js';
import { traceOf } from '@bus/operations';

const main = fileURLToPath(new URL('./main.js', import.meta.url));
// TEST_PG_URL, else a PostgreSQL private to this test process (testkit)
const PG_URL = await testPgUrl();

describe('bus trace', () => {
  const schema = `trace_${uniquePrefix()}`;
  const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
  let nats: TestNats;
  let bus: Bus;
  let prefix: string;
  const running: Consumption[] = [];
  const connector = defineConnector({
    name: 'tracecrm',
    subscribes: [{ type: 'contact.updated', source: 'shop', map: (d) => ({ action: 'upsert', target: { type: 'contact', id: String(d.id) }, fields: { email: d.email } }) }],
    delivery: { kind: 'postgres', urlEnv: 'PG_URL', schema, tables: { contact: { table: 'contacts' } }, ordering: 'strict',
      retry: { initialDelayMs: 50, maxDelayMs: 200, maxAttempts: 5, attemptTimeoutMs: 2_000, jitter: 'none' } },
  });
  const delivery = resolveDelivery(connector, { PG_URL });

  before(async () => {
    nats = await startNats();
    prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'trace-test', log: cliLog });
    await bus.applyTopology();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.query(`CREATE TABLE ${schema}.contacts (id text PRIMARY KEY, version bigint NOT NULL, email text)`);
    running.push(await createProjector({ bus, log: cliLog }).start());
    running.push(await createDeliverer({ bus, delivery: resolveDelivery(connector, { PG_URL }), log: cliLog, metrics: createDeliverMetrics(createMetrics('d').registry) }).start());
  });
  after(async () => {
    await Promise.all(running.map((r) => r.stop()));
    await delivery.target.close?.();
    await bus.close();
    await nats.stop({ removeStore: true });
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  });

  it('a repaired entity: the repair under the original event\'s correlation id, then its delivery, marked as the repair', async () => {
    // the event reached EVENTS, its command never reached the target (lost on the way): reconcile repairs it
    const env = createEnvelope({ type: 'contact.updated', entity: { type: 'contact', id: 't1' }, version: 1, data: { id: 't1', email: 't1@example.com' } },
      { source: 'shop', correlationId: 'corr-t1' });
    await bus.publishEnvelope(bus.names.subjects.event('shop', 'contact.updated'), env);
    await waitFor(async () => (await getEntity(bus, 'shop', 'contact', 't1')) !== undefined, { what: 'the projection has t1' });
    const run = await runReconcile({ bus, delivery, log: cliLog, settleMs: 0 }); // no transform here: nothing else is on its way
    assert.equal(run.repaired, 1);
    await waitFor(async () => {
      const i = await bus.jsm.consumers.info(bus.names.streams.deliveries, deliverDurable('tracecrm'));
      return i.num_pending === 0 && i.num_ack_pending === 0 && (await traceOf(bus, 'corr-t1')).some((r) => r.stage === 'deliver');
    }, { what: 'the repair delivered and audited' });

    const records = await traceOf(bus, 'corr-t1');
    assert.deepEqual(records.map((r) => `${r.stage} ${r.outcome}`), ['reconcile repair', 'deliver delivered']);
    assert.deepEqual(records[0]!.details, { runId: run.runId, kind: 'missing', repairId: `tracecrm:${env.id}:repair:${run.runId}`, action: 'upsert' });
    assert.deepEqual(records[1]!.details, { repair: { runId: run.runId, kind: 'missing' } });

    const p = startProcess({ command: process.execPath, args: [main, 'trace', 'corr-t1'], env: { NATS_URL: nats.url, BUS_PREFIX: prefix } });
    const exit = await p.exited;
    assert.equal(exit.code, 0, p.output());
    const lines = p.output().split('\n').filter((l) => /reconcile|deliver/.test(l));
    assert.equal(lines.length, 2, p.output());
    assert.match(lines[0]!, new RegExp(`reconcile +repair +tracecrm +contact/t1@1 .*missing at the target \\(email\\); reconcile run ${run.runId}`));
    assert.match(lines[1]!, new RegExp(`deliver +delivered +tracecrm +contact/t1@1 .*repair missing, run ${run.runId}: inserted at version 1`));
  });
});
