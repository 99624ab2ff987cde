import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { type Bus, connectBus, type Consumption, loadBusConfig } from '@bus/bus';
import { commandHeaders, type Connector, SchemaRegistry, toCommands } from '@bus/connectors';
import { createDeliverer, createDeliverMetrics, deliverDurable, resolveDelivery } from '@bus/delivery';
import { createEnvelope, type Envelope, encode } from '@bus/envelope';
import { createLogger, createMetrics } from '@bus/observability';
import { createProjector, getEntity } from '@bus/projection';
import { topology } from '@bus/streams';
import { createTransformer, createTransformMetrics, transformDurable } from '@bus/transformer';
import { startNats, type TestNats, testPgUrl, uniquePrefix, waitFor } from '@bus/testkit';
import pg from 'pg';
import { z } from 'zod';
import { pgConnector } from './fixtures/pg-connector.js';
import { runReconcile } from './index.js';

// TEST_PG_URL, else a PostgreSQL private to this test process (testkit)
const PG_URL = await testPgUrl();
const schemas = new SchemaRegistry().add('contact.updated', 1, z.object({ id: z.string(), email: z.string().optional(), name: z.string().optional() }))
  .add('contact.deleted', 1, z.object({ id: z.string() }));
const silent = createLogger({ service: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

describe('reconcile never races live delivery (settled rule); repairs are ordinary commands', () => {
  const schema = `set_${uniquePrefix()}`;
  const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
  const sql = async (text: string, values: unknown[] = []) => (await admin.query(text, values)).rows;
  let nats: TestNats;
  let bus: Bus;
  let connector: Connector;
  let delivery: ReturnType<typeof resolveDelivery>;
  let projector: Consumption;
  let deliver: Consumption | undefined;
  // no transform runs here: what the projection holds is all there will be, so only DELIVERIES and the versions bucket can hold an entity back
  const run = (more: Partial<Parameters<typeof runReconcile>[0]> = {}) => runReconcile({ bus, delivery, log: silent, schemas, settleMs: 0, ...more });

  const startDeliver = async () => {
    deliver = await createDeliverer({ bus, delivery: resolveDelivery(connector, { PG_URL }), log: silent, metrics: createDeliverMetrics(createMetrics('d').registry) }).start();
  };
  const event = (id: string, version: number, data: Record<string, unknown> = {}, type = 'contact.updated') =>
    createEnvelope({ type, entity: { type: 'contact', id }, version, data: { id, ...data } }, { source: 'shop' });
  const publishEvent = (e: Envelope) => bus.publishEnvelope(bus.names.subjects.event(e.source, e.type), e);
  /** What transform does with an event for this connector: the mapping's commands, under the entity's subject, with the usual headers. */
  const publishCommand = async (e: Envelope) => {
    for (const cmd of toCommands(connector, connector.subscribes.find((s) => s.type === e.type)!, e.data as Record<string, unknown>, e)) {
      await bus.publish(bus.names.subjects.delivery(connector.name, cmd.target.type, cmd.entity), encode(cmd), { msgId: cmd.id, headers: commandHeaders(cmd, e.id) });
    }
  };
  const projected = (id: string, version: number) =>
    waitFor(async () => (await getEntity(bus, 'shop', 'contact', id))?.version === version, { what: `the projection has ${id}@${version}` });
  /** Commands of this connector in DELIVERIES (a work queue: pending or in flight). */
  const stored = async () => Object.values((await bus.jsm.streams.info(bus.names.streams.deliveries, { subjects_filter: bus.names.subjects.delivery(connector.name, '>') })).state.subjects ?? {})
    .reduce((a, b) => a + b, 0);
  const drained = async () => {
    const i = await bus.jsm.consumers.info(bus.names.streams.deliveries, deliverDurable(connector.name));
    return i.num_pending === 0 && i.num_ack_pending === 0;
  };
  /** Every write the target took for an entity, in order: what "applied twice" and "out of order" are checked on. */
  const applies = async (id: string) => (await sql(`SELECT version::int AS v FROM ${schema}.applies WHERE id = $1 ORDER BY n`, [id])).map((r) => r.v as number);
  const row = async (id: string) => (await sql(`SELECT version::int AS version, email FROM ${schema}.contacts WHERE id = $1`, [id]))[0];

  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'settled-test', log: silent, metrics: createMetrics('b') });
    await bus.applyTopology(topology({ prefix }));
    await sql(`CREATE SCHEMA ${schema}`);
    await sql(`CREATE TABLE ${schema}.contacts (id text PRIMARY KEY, version bigint NOT NULL, email text, name text, lead_score int)`);
    await sql(`CREATE TABLE ${schema}.applies (n bigserial PRIMARY KEY, id text NOT NULL, version bigint NOT NULL)`);
    await sql(`CREATE FUNCTION ${schema}.log_apply() RETURNS trigger AS $$ BEGIN INSERT INTO ${schema}.applies (id, version) VALUES (NEW.id, NEW.version); RETURN NEW; END $$ LANGUAGE plpgsql`);
    await sql(`CREATE TRIGGER log_apply AFTER INSERT OR UPDATE ON ${schema}.contacts FOR EACH ROW EXECUTE FUNCTION ${schema}.log_apply()`);
    connector = pgConnector(schema, 'pgset');
    delivery = resolveDelivery(connector, { PG_URL });
    projector = await createProjector({ bus, log: silent }).start();
  });
  afterEach(async () => {
    await deliver?.stop();
    deliver = undefined;
  });
  after(async () => {
    await projector.stop();
    await delivery.target.close?.();
    await bus.close();
    await nats.stop({ removeStore: true });
    await sql(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  });

  it('commands still pending in DELIVERIES (deliver not running): the entity is in flight, nothing repaired; once delivered, a run is clean and each version applied once', async () => {
    const v1 = event('a1', 1, { email: 'a1@example.com' });
    const v2 = event('a1', 2, { email: 'a1-new@example.com' });
    for (const e of [v1, v2]) {
      await publishEvent(e);
      await publishCommand(e);
    }
    await projected('a1', 2);
    const busy = await run();
    assert.deepEqual(busy.counts, { missing: 0, stale: 0, 'target-newer': 0, 'unknown-to-source': 0 }, 'not missing: its commands are on their way');
    assert.equal(busy.inFlight, 1);
    assert.equal(busy.repaired, 0);
    assert.equal(await stored(), 2, 'no repair published');

    await startDeliver();
    await waitFor(async () => (await row('a1'))?.version === 2 && (await drained()), { what: 'a1 delivered' });
    const clean = await run();
    assert.deepEqual([clean.counts, clean.inFlight, clean.repaired], [{ missing: 0, stale: 0, 'target-newer': 0, 'unknown-to-source': 0 }, 0, 0]);
    assert.deepEqual(await applies('a1'), [1, 2], 'each version once, in order');
  });

  it('a repair still pending is in flight for the next run: never sent twice', async () => {
    // the event's command never reached DELIVERIES (lost upstream): missing, and nothing on its way
    const e = event('b1', 1, { email: 'b1@example.com' });
    await publishEvent(e);
    await projected('b1', 1);
    const first = await run();
    assert.deepEqual([first.counts.missing, first.repaired], [1, 1]);
    const second = await run();
    assert.deepEqual([second.counts.missing, second.inFlight, second.repaired], [0, 1, 0], 'the first repair is pending under the entity\'s subject');
    assert.equal(await stored(), 1);

    await startDeliver();
    await waitFor(async () => (await row('b1'))?.version === 1 && (await drained()), { what: 'the repair delivered' });
    assert.deepEqual(await applies('b1'), [1], 'applied once');
    const clean = await run();
    assert.deepEqual([clean.counts.missing, clean.inFlight, clean.repaired], [0, 0, 0]);
  });

  it('strict: a repair waits for an older version that turns up pending, then goes in order', async () => {
    const [v1, v2, v3] = [1, 2, 3].map((v) => event('c1', v, { email: `c1-v${v}@example.com` }));
    await startDeliver();
    await publishEvent(v1!);
    await publishCommand(v1!);
    await waitFor(async () => (await row('c1'))?.version === 1 && (await drained()), { what: 'c1@1 delivered' });
    await deliver!.stop();
    deliver = undefined;
    // versions 2 and 3 reach EVENTS, their commands do not: the target is stale, nothing is on its way
    await publishEvent(v2!);
    await publishEvent(v3!);
    await projected('c1', 3);
    const r = await run();
    assert.deepEqual([r.counts.stale, r.repaired], [1, 1]);
    // version 2's command turns up after the check (an operator replays it from the DLQ)
    await publishCommand(v2!);
    await startDeliver();
    await waitFor(async () => (await row('c1'))?.version === 3 && (await drained()), { what: 'c1 at version 3' });
    assert.deepEqual(await applies('c1'), [1, 2, 3], 'the repair of 3 never jumped over the pending 2');
    assert.equal((await row('c1')).email, 'c1-v3@example.com');
  });

  it('an entity whose latest event is a delete is expected absent: a row left behind is stale and the repair deletes it', async () => {
    await startDeliver();
    const created = event('d1', 1, { email: 'd1@example.com' });
    await publishEvent(created);
    await publishCommand(created);
    await waitFor(async () => (await row('d1')) !== undefined && (await drained()), { what: 'd1 delivered' });
    // the delete reached EVENTS, its command was lost: the row stays behind
    await publishEvent(event('d1', 2, {}, 'contact.deleted'));
    await projected('d1', 2);
    const dry = await run({ dryRun: true });
    assert.deepEqual([dry.counts.stale, dry.counts['unknown-to-source']], [1, 0], 'stale, and not also unknown to the source');
    const r = await run();
    assert.equal(r.repaired, 1);
    await waitFor(async () => (await row('d1')) === undefined && (await drained()), { what: 'the row deleted' });
    const clean = await run();
    assert.deepEqual([clean.counts.stale, clean.counts.missing, clean.counts['unknown-to-source'], clean.repaired], [0, 0, 0, 0], 'absent is what a delete expects');
  });

  it('an event transform has not handed on yet (transform stopped) is in flight whatever its age; once transformed and delivered, a run is clean', async () => {
    const transformer = () => createTransformer({ bus, connectors: [connector], schemas, log: silent, metrics: createTransformMetrics(createMetrics('t').registry) }).start();
    const caughtUp = async () => {
      const i = await bus.jsm.consumers.info(bus.names.streams.events, transformDurable(connector.name));
      return i.num_pending === 0 && i.num_ack_pending === 0;
    };
    // transform has run for this connector (its consumer exists, so its floor is what counts), then stops
    let running = await transformer();
    await waitFor(caughtUp, { what: 'transform caught up' });
    await Promise.all([...running.values()].map((c) => c.stop()));
    const e = event('e1', 1, { email: 'e1@example.com' });
    await publishEvent(e);
    await projected('e1', 1);
    const waiting = await run(); // settleMs 0: only transform's floor holds it back
    assert.equal(waiting.counts.missing, 0, 'not missing: transform has not handed its event on');
    assert.ok((waiting.inFlight ?? 0) >= 1);
    assert.equal(waiting.repaired, 0);

    running = await transformer();
    await startDeliver();
    await waitFor(async () => (await row('e1'))?.version === 1 && (await caughtUp()) && (await drained()), { what: 'e1 transformed and delivered' });
    await Promise.all([...running.values()].map((c) => c.stop()));
    const clean = await run();
    assert.deepEqual([clean.counts, clean.inFlight, clean.repaired], [{ missing: 0, stale: 0, 'target-newer': 0, 'unknown-to-source': 0 }, 0, 0]);
    assert.deepEqual(await applies('e1'), [1], 'applied once');
  });
});
