import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, type Consumption, loadBusConfig } from '@bus/bus';
import { commandHeaders, type Connector, type DeliveryCommand, SchemaRegistry } from '@bus/connectors';
import { z } from 'zod';
import { createDeliverer, createDeliverMetrics, resolveDelivery } from '@bus/delivery';
import { createEnvelope, encode } from '@bus/envelope';
import { createLogger, createMetrics } from '@bus/observability';
import { createProjector, getEntity } from '@bus/projection';
import { topology } from '@bus/streams';
import { startNats, startProcess, type TestNats, testPgUrl, uniquePrefix, waitFor } from '@bus/testkit';
import pg from 'pg';
import { pgConnector } from './fixtures/pg-connector.js';
import { createReconciler, type ReportItem, reportStore, resolveItem, runReconcile } from './index.js';

// TEST_PG_URL, else a PostgreSQL private to this test process (testkit)
const PG_URL = await testPgUrl();
const schemas = new SchemaRegistry().add('contact.updated', 1, z.object({ id: z.string(), email: z.string().optional(), name: z.string().optional() }))
  .add('contact.deleted', 1, z.object({ id: z.string() }));
/** No transform runs in this suite: what the projection holds is all there will be (the settled rule's fallback needs no wait). */
const noUpstream = { settleMs: 0 };
const silent = createLogger({ service: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

describe('reconcile: the projection against a PostgreSQL target, repairs through a real deliverer', () => {
  const schema = `rec_${uniquePrefix()}`;
  const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
  const sql = async (text: string, values: unknown[] = []) => (await admin.query(text, values)).rows;
  let nats: TestNats;
  let bus: Bus;
  let prefix: string;
  const running: Consumption[] = [];
  let connector: Connector;
  let delivery: ReturnType<typeof resolveDelivery>;
  const row = async (id: string) => (await sql(`SELECT id, version::int AS version, email, name, lead_score FROM ${schema}.contacts WHERE id = $1`, [id]))[0];

  const event = (id: string, version: number, data: Record<string, unknown>) =>
    createEnvelope({ type: 'contact.updated', entity: { type: 'contact', id }, version, data: { id, ...data } }, { source: 'shop' });
  const publishEvent = (e: ReturnType<typeof event>) => bus.publishEnvelope(bus.names.subjects.event(e.source, e.type), e);
  const deliverCommand = (e: ReturnType<typeof event>): DeliveryCommand => ({
    id: `pgcrm:${e.id}`, connector: 'pgcrm', action: 'upsert', target: { type: 'contact', id: e.entity.id }, fields: { email: (e.data as Record<string, unknown>).email, name: (e.data as Record<string, unknown>).name },
    sourceOwned: ['email', 'name'], entity: e.entity, version: e.version,
    event: { id: e.id, type: e.type, source: e.source, occurredAt: e.occurredAt, schemaVersion: 1 }, correlationId: e.correlationId, idempotencyKey: `pgcrm:${e.id}`,
  });
  /** What transform would do with the event: its command, under the entity's subject, with the usual headers. */
  const publishCommand = (e: ReturnType<typeof event>) => {
    const cmd = deliverCommand(e);
    return bus.publish(bus.names.subjects.delivery('pgcrm', 'contact', cmd.entity), encode(cmd), { msgId: cmd.id, headers: commandHeaders(cmd, e.id) });
  };
  const items = async (runId: string) => {
    const out: ReportItem[] = [];
    for await (const i of reportStore(bus).items(runId)) out.push(i);
    return out;
  };
  const deliveriesStored = async () => (await bus.jsm.streams.info(bus.names.streams.deliveries)).state.messages;
  const queueEmpty = async () => (await bus.jsm.consumers.info(bus.names.streams.deliveries, 'deliver-pgcrm')).num_pending === 0
    && (await bus.jsm.consumers.info(bus.names.streams.deliveries, 'deliver-pgcrm')).num_ack_pending === 0;

  before(async () => {
    nats = await startNats();
    prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'reconcile-test', log: silent, metrics: createMetrics('b') });
    await bus.applyTopology(topology({ prefix }));
    await sql(`CREATE SCHEMA ${schema}`);
    await sql(`CREATE TABLE ${schema}.contacts (id text PRIMARY KEY, version bigint NOT NULL, email text, name text, lead_score int)`);
    connector = pgConnector(schema);
    delivery = resolveDelivery(connector, { PG_URL });
    running.push(await createProjector({ bus, log: silent }).start());
    running.push(await createDeliverer({ bus, delivery: resolveDelivery(connector, { PG_URL }), log: silent, metrics: createDeliverMetrics(createMetrics('d').registry) }).start());
  });
  after(async () => {
    await Promise.all(running.map((r) => r.stop()));
    await delivery.target.close?.();
    await bus.close();
    await nats.stop({ removeStore: true });
    await sql(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  });

  it('finds each kind of difference, repairs the safe ones through deliver, flags the rest, and a second run finds nothing new', async () => {
    // c1 went the normal way (delivered by deliver), then someone deleted it at the target
    const c1 = event('c1', 1, { email: 'c1@example.com', name: 'One' });
    await publishEvent(c1);
    await publishCommand(c1);
    await waitFor(() => row('c1'), { what: 'c1 delivered' });
    await sql(`DELETE FROM ${schema}.contacts WHERE id = 'c1'`);
    // c2: the target has the version but an edited source-owned field; c3: only the target-owned field differs
    // c4: the target is newer than anything the source said; c5: never reached the target; x9: unknown to the source
    for (const [id, email] of [['c2', 'c2@example.com'], ['c3', 'c3@example.com'], ['c4', 'c4@example.com'], ['c5', 'c5@example.com']]) await publishEvent(event(id!, 2, { email, name: id }));
    await sql(`INSERT INTO ${schema}.contacts VALUES ('c2', 2, 'edited@by-hand.example', 'c2', NULL), ('c3', 2, 'c3@example.com', 'c3', 99),
      ('c4', 7, 'newer@example.com', 'c4', NULL), ('x9', 1, 'x9@example.com', 'stranger', NULL)`);
    // c6 fails its schema: transform dead-letters it, so no target should hold it and reconcile never expects it
    await publishEvent(event('c6', 1, { email: 42 }));
    await waitFor(async () => (await getEntity(bus, 'shop', 'contact', 'c6')) !== undefined, { what: 'the projection caught up' });

    // a dry run: the report, and nothing changed anywhere
    const before = await deliveriesStored();
    const dry = await runReconcile({ bus, delivery, log: silent, schemas, ...noUpstream, dryRun: true, pageSize: 2 });
    assert.equal(dry.status, 'done');
    assert.deepEqual(dry.counts, { missing: 2, stale: 1, 'target-newer': 1, 'unknown-to-source': 1 });
    assert.equal(dry.repaired, 0);
    assert.equal(await deliveriesStored(), before, 'a dry run publishes nothing');
    assert.equal(await row('c1'), undefined);
    assert.equal((await row('c2')).email, 'edited@by-hand.example');
    const dryItems = await items(dry.runId);
    for (const i of dryItems) assert.ok(i.target.type && i.target.id, 'every item names its record');
    assert.deepEqual(dryItems.filter((i) => i.kind === 'stale').map((i) => [i.target.id, i.fields]), [['c2', [{ field: 'email', source: 'c2@example.com', target: 'edited@by-hand.example' }]]]);
    assert.ok(!dryItems.some((i) => i.target.id === 'c3'), 'a differing target-owned field is not a difference');
    assert.ok(!dryItems.some((i) => i.target.id === 'c6'), 'data that fails its schema is never expected at a target');
    assert.ok(dryItems.filter((i) => i.kind === 'missing').every((i) => i.decision === 'would-repair'));

    // the real run: repairs go through deliver
    const run = await runReconcile({ bus, delivery, log: silent, schemas, ...noUpstream, pageSize: 2 });
    assert.deepEqual(run.counts, dry.counts);
    assert.equal(run.repaired, 3);
    assert.equal(run.flagged, 2);
    await waitFor(async () => (await row('c1'))?.email === 'c1@example.com' && (await row('c5')) !== undefined && (await row('c2'))?.email === 'c2@example.com',
      { what: 'the repairs applied' });
    await waitFor(queueEmpty, { what: 'deliver done' });
    assert.equal((await row('c3')).lead_score, 99, 'target-owned field untouched');
    assert.equal((await row('c4')).email, 'newer@example.com', 'a newer target record is flagged, not touched');
    assert.equal((await row('x9')).name, 'stranger', 'an unknown record is flagged, not touched');
    const flagged = (await items(run.runId)).filter((i) => i.decision === 'flagged').map((i) => [i.kind, i.target.id]).sort();
    assert.deepEqual(flagged, [['target-newer', 'c4'], ['unknown-to-source', 'x9']]);

    // again: the repaired ones are gone, the flagged ones wait for a person
    const again = await runReconcile({ bus, delivery, log: silent, schemas, ...noUpstream });
    assert.deepEqual(again.counts, { missing: 0, stale: 0, 'target-newer': 1, 'unknown-to-source': 1 });
    assert.equal(again.repaired, 0);

    // a person settles them; the next run is clean
    const againItems = await items(again.runId);
    await resolveItem({ bus, connectors: [connector], itemId: againItems.find((i) => i.target.id === 'x9')!.id, as: 'ignore', by: 'test' });
    await resolveItem({ bus, connectors: [connector], itemId: againItems.find((i) => i.target.id === 'c4')!.id, as: 'target', by: 'test' });
    await assert.rejects(resolveItem({ bus, connectors: [connector], itemId: againItems[0]!.id, as: 'ignore', by: 'test' }), /already settled/);
    const clean = await runReconcile({ bus, delivery, log: silent, schemas, ...noUpstream });
    assert.deepEqual(clean.counts, { missing: 0, stale: 0, 'target-newer': 0, 'unknown-to-source': 0 });
    assert.equal((await reportStore(bus).lastRun('pgcrm'))?.runId, clean.runId);
  });

  it('a run stopped mid-way resumes from its checkpoint and compares the rest only', async () => {
    for (let i = 0; i < 30; i++) await publishEvent(event(`r${String(i).padStart(2, '0')}`, 1, { email: `r${i}@example.com`, name: `r${i}` }));
    await waitFor(async () => (await getEntity(bus, 'shop', 'contact', 'r29')) !== undefined, { what: 'the projection caught up' });
    const stop = new AbortController();
    let pages = 0;
    const stopped = await runReconcile({ bus, delivery, log: silent, schemas, ...noUpstream, dryRun: true, pageSize: 5, signal: stop.signal, onProgress: () => { if (++pages === 2) stop.abort(); } });
    assert.equal(stopped.status, 'running', 'unfinished: resumable');
    const saved = await reportStore(bus).readRun(stopped.runId);
    assert.equal(saved?.checkpoint?.phase, 'projection');
    assert.ok((saved?.checkpoint?.afterSeq ?? 0) > 0);
    const checkedBefore = saved!.checked;
    const done = await runReconcile({ bus, delivery, log: silent, schemas, ...noUpstream, resume: saved });
    assert.equal(done.status, 'done');
    assert.equal(done.resumed, 1);
    assert.equal(done.counts.missing, 30, 'each missing record reported once across the two processes');
    assert.ok(done.checked > checkedBefore);
  });

  it('a reconcile process killed mid-run: another resumes the same run from its checkpoint; never two at once', async () => {
    // delivered the usual way, then lost at the target (a restore from an old backup): settled, so missing
    for (let i = 0; i < 60; i++) {
      const e = event(`k${String(i).padStart(2, '0')}`, 1, { email: `k${i}@example.com`, name: `k${i}` });
      await publishEvent(e);
      await publishCommand(e);
    }
    await waitFor(async () => (await getEntity(bus, 'shop', 'contact', 'k59')) !== undefined, { what: 'the projection caught up' });
    await waitFor(async () => (await sql(`SELECT count(*)::int AS n FROM ${schema}.contacts WHERE id LIKE 'k%'`))[0].n === 60 && (await queueEmpty()), { what: 'the k contacts delivered' });
    await sql(`DELETE FROM ${schema}.contacts WHERE id LIKE 'k%'`);
    const first = startProcess({ command: process.execPath, args: [new URL('./fixtures/reconciler-process.js', import.meta.url).pathname],
      env: { NATS_URL: nats.url, BUS_PREFIX: prefix, PG_URL, PG_SCHEMA: schema, READ_RATE: '4' } });
    const answer = await waitFor(() => /answer (\{.*\})/.exec(first.output())?.[1], { what: 'the first process started a run' });
    const { runId } = JSON.parse(answer) as { runId: string };
    await waitFor(async () => ((await reportStore(bus).readRun(runId))?.checkpoint?.afterSeq ?? 0) > 0, { what: 'a few pages done' });

    const second = createReconciler({ bus, deliveries: [delivery], log: silent, everySec: 0, leaseTtlMs: 1_500, pageSize: 5 });
    const busy = await second.runNow({ connector: 'pgcrm' });
    assert.match('error' in busy ? busy.error : '', /another process/, 'never two at once');

    first.kill('SIGKILL');
    await first.exited;
    const partial = (await reportStore(bus).readRun(runId))!;
    assert.equal(partial.status, 'running');
    const resumed = await waitFor(async () => {
      const a = await second.runNow({ connector: 'pgcrm' });
      return 'runId' in a ? a : undefined;
    }, { what: 'the lease taken over after the dead holder\'s ttl', timeoutMs: 10_000 });
    assert.deepEqual(resumed, { runId, resumed: true });
    const done = await waitFor(async () => {
      const r = await reportStore(bus).readRun(runId);
      return r?.status === 'done' ? r : undefined;
    }, { what: 'the resumed run done', timeoutMs: 30_000 });
    assert.equal(done.resumed, 1);
    assert.ok(done.checked >= 60);
    const missing = (await items(runId)).filter((i) => i.kind === 'missing' && i.target.id.startsWith('k'));
    assert.equal(new Set(missing.map((i) => i.target.id)).size, 60, 'every missing record reported');
    assert.equal(missing.length, 60, 'none twice');
    await waitFor(async () => (await sql(`SELECT count(*)::int AS n FROM ${schema}.contacts WHERE id LIKE 'k%'`))[0].n === 60, { what: 'repairs delivered' });
  });
});
