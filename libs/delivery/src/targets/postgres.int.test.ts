import assert from 'node:assert/strict';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type AuditRecord, auditRecordsOf, type Bus, connectBus, type Consumption, decodeDeadLetter, loadBusConfig, readStream } from '@bus/bus';
import { defineConnector, type DeliveryCommand } from '@bus/connectors';
import { encode } from '@bus/envelope';
import { createLogger, createMetrics } from '@bus/observability';
import { topology } from '@bus/streams';
import { freePort, startNats, type TestNats, testPgUrl, uniquePrefix, waitFor } from '@bus/testkit';
import pg from 'pg';
import { createDeliverer, createDeliverMetrics, type DeliverMetrics, resolveDelivery } from '../index.js';
import type { Target } from '../target.js';

// One PostgreSQL (TEST_PG_URL, else a private one the testkit starts for this test process), one
// schema per suite run, dropped at the end: suites and parallel runs never see each other's tables.
const PG_URL = await testPgUrl();
const silent = createLogger({ service: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const fast = { initialDelayMs: 50, maxDelayMs: 200, maxAttempts: 40, attemptTimeoutMs: 1_000, jitter: 'none' } as const;

/** A TCP forwarder to PostgreSQL on loopback that the test takes down (connections refused) and brings back on the same port. */
function pgProxy(port: number, to: URL) {
  let server: Server | undefined;
  const open = new Set<Socket>();
  const track = (s: Socket) => { open.add(s); s.on('close', () => open.delete(s)); s.on('error', () => s.destroy()); };
  return {
    async up() {
      server = createServer((client) => {
        const upstream = tcpConnect(Number(to.port || 5432), to.hostname);
        track(client);
        track(upstream);
        client.pipe(upstream).pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      await new Promise<void>((resolve, reject) => server!.once('error', reject).listen(port, '127.0.0.1', resolve));
    },
    async down() {
      for (const s of open) s.destroy();
      await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
      server = undefined;
    },
  };
}

describe('deliver → postgres target: upsert with a version guard, through a real deliverer', () => {
  const schema = `bus_${uniquePrefix()}`;
  const admin = new pg.Pool({ connectionString: PG_URL, max: 4 });
  const sql = async (text: string, values: unknown[] = []) => (await admin.query(text, values)).rows;
  const proxyPort = freePort();
  let proxy: ReturnType<typeof pgProxy>;
  let nats: TestNats;
  let bus: Bus;
  const running: Consumption[] = [];
  const targets: Target[] = [];
  const metrics = new Map<string, DeliverMetrics>();

  const connector = (name: string, delivery: Record<string, unknown>) => defineConnector({
    name, subscribes: [{ type: 'contact.updated', map: () => null }],
    delivery: {
      kind: 'postgres', urlEnv: 'CRM_PG_URL', schema, ordering: 'none', retry: fast, breaker: { failureThreshold: 1_000 },
      tables: { contact: { table: 'contacts', eventIdColumn: 'last_event', columns: { name: 'full_name' } }, listed: { table: 'listed', columns: { title: 'label' } } },
      ...delivery,
    },
  });
  async function startDeliverer(c: ReturnType<typeof connector>, env: NodeJS.ProcessEnv = { CRM_PG_URL: PG_URL }) {
    const delivery = resolveDelivery(c, env);
    const m = createDeliverMetrics(createMetrics('d').registry);
    metrics.set(c.name, m);
    running.push(await createDeliverer({ bus, delivery, log: silent, metrics: m, concurrency: 8 }).start());
  }

  before(async () => {
    await sql('SELECT 1').catch((err: Error) => {
      throw new Error(`PostgreSQL is not reachable at ${PG_URL.replace(/:[^:@/]*@/, ':***@')} (${err.message}). Unset TEST_PG_URL for a private one, or start that server.`);
    });
    await sql(`CREATE SCHEMA ${schema}`);
    await sql(`CREATE TABLE ${schema}.contacts (id text PRIMARY KEY, version bigint NOT NULL, last_event text, email text NOT NULL,
      full_name text, score int CHECK (score >= 0), lead_owner text)`);
    // every row write the target makes, to prove "applied once" rather than infer it
    await sql(`CREATE TABLE ${schema}.writes (n serial PRIMARY KEY, id text, version bigint)`);
    await sql(`CREATE FUNCTION ${schema}.count_write() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO ${schema}.writes (id, version) VALUES (NEW.id, NEW.version); RETURN NEW; END $$`);
    await sql(`CREATE TRIGGER count_write AFTER INSERT OR UPDATE ON ${schema}.contacts FOR EACH ROW EXECUTE FUNCTION ${schema}.count_write()`);
    await sql(`CREATE TABLE ${schema}.listed (id text PRIMARY KEY, version int NOT NULL, label text)`);
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'pg-test', log: silent, metrics: createMetrics('pg-test') });
    await bus.applyTopology(topology({ prefix }));
    proxy = pgProxy(await proxyPort, new URL(PG_URL));
    await startDeliverer(connector('pgnone', {
      retryByType: { 'contact.locked': { initialDelayMs: 1_500, maxDelayMs: 1_500, maxAttempts: 5, attemptTimeoutMs: 1_000, jitter: 'none' } },
    }));
    await startDeliverer(connector('pglatest', { ordering: 'latest' }));
    await startDeliverer(connector('pgmissing', { tables: { contact: { table: 'no_such_table' } } }));
    const down = new URL(PG_URL);
    down.host = `127.0.0.1:${await proxyPort}`;
    await startDeliverer(connector('pgdown', {}), { CRM_PG_URL: down.toString() });
  });
  after(async () => {
    for (const r of running) await r.stop();
    for (const t of targets) await t.close?.();
    await proxy?.down();
    await bus?.close();
    await nats?.stop({ removeStore: true });
    await sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).finally(() => admin.end());
  });

  let n = 0;
  function command(connectorName: string, id: string, version: number, fields: Record<string, unknown>, o: { action?: string; type?: string } = {}): DeliveryCommand {
    const eventId = `evt-${++n}`;
    return {
      id: `${connectorName}:${eventId}`, connector: connectorName, action: o.action ?? 'upsert', target: { type: 'contact', id }, fields, sourceOwned: Object.keys(fields),
      entity: { type: 'contact', id }, version,
      event: { id: eventId, type: o.type ?? 'contact.updated', source: 'standard', occurredAt: new Date().toISOString(), schemaVersion: 1 },
      correlationId: `corr-${eventId}`, idempotencyKey: `${connectorName}:${eventId}`,
    };
  }
  const send = (cmd: DeliveryCommand, msgId = cmd.id) =>
    bus.publish(bus.names.subjects.delivery(cmd.connector, 'contact'), encode(cmd), { msgId, headers: { 'Bus-Correlation-Id': cmd.correlationId } });
  const row = async (id: string) => (await sql(`SELECT id, version::int AS version, last_event, email, full_name, score, lead_owner FROM ${schema}.contacts WHERE id = $1`, [id]))[0];
  const writes = async (id: string) => (await sql(`SELECT version::int AS version FROM ${schema}.writes WHERE id = $1 ORDER BY n`, [id])).map((r) => r.version as number);
  const audits = async (cmd: DeliveryCommand) => {
    const out: AuditRecord[] = [];
    for await (const a of auditRecordsOf(bus)) {
      if (a.correlationId === cmd.correlationId && a.stage === 'deliver') out.push(a);
    }
    return out;
  };
  const deadLetters = async (cmd: DeliveryCommand) => {
    const out = [];
    for await (const m of readStream(bus.jsm, bus.names.streams.dlq)) {
      const d = decodeDeadLetter(m.data);
      if (d.correlationId === cmd.correlationId) out.push(d);
    }
    return out;
  };
  const counter = async (connectorName: string, name: 'outcomes' | 'lookups', label: string) =>
    (await metrics.get(connectorName)![name].get()).values.find((v) => {
      const labels = v.labels as Record<string, unknown>;
      return labels['connector'] === connectorName && (labels['outcome'] ?? labels['result']) === label;
    })?.value ?? 0;
  const finished = (cmd: DeliveryCommand) => waitFor(async () => (await audits(cmd)).some((a) => ['delivered', 'stale', 'duplicate'].includes(a.outcome)), { what: `${cmd.id} finished`, intervalMs: 50 });

  it('commands delivered → rows with their fields, version and event id; the same command again → one row, unchanged', async () => {
    const cmd = command('pgnone', 'a', 1, { email: 'a@example.com', name: 'Ada', score: 3 });
    await send(cmd);
    const r = await waitFor(() => row('a'), { what: 'row a' });
    assert.deepEqual(r, { id: 'a', version: 1, last_event: cmd.event.id, email: 'a@example.com', full_name: 'Ada', score: 3, lead_owner: null });
    const [{ xmin }] = await sql(`SELECT xmin::text FROM ${schema}.contacts WHERE id = 'a'`);
    const delivered = await counter('pgnone', 'outcomes', 'delivered');
    await send(cmd, `${cmd.id}:redelivered`); // past JetStream's dedup, as a redelivery after a lost ack would be
    await waitFor(async () => (await counter('pgnone', 'outcomes', 'delivered')) === delivered + 1, { what: 'the second delivery of the same command' });
    assert.deepEqual(await row('a'), r);
    assert.deepEqual(await sql(`SELECT xmin::text FROM ${schema}.contacts WHERE id = 'a'`), [{ xmin }], 'not even rewritten with the same values');
    assert.deepEqual(await writes('a'), [1]);
  });

  for (const ordering of ['none', 'latest'] as const) {
    it(`versions out of order (ordering ${ordering}) → the newest wins; an older version never overwrites it`, async () => {
      const c = `pg${ordering}`;
      const id = `ooo-${ordering}`;
      const [v1, v2, v3] = [1, 2, 3].map((v) => command(c, id, v, { email: `v${v}@example.com` }));
      await send(v3!);
      await waitFor(async () => (await row(id))?.version === 3, { what: 'version 3 written' });
      await send(v1!);
      await send(v2!);
      await Promise.all([finished(v1!), finished(v2!)]);
      assert.deepEqual([(await row(id))?.version, (await row(id))?.email], [3, 'v3@example.com']);
      assert.deepEqual(await writes(id), [3]);
      // none: the target's guard kept the row ("delivered", nothing written); latest: deliver's own version check skipped them first
      const outcomes = (await audits(v1!)).map((a) => a.outcome);
      assert.ok(outcomes.includes(ordering === 'none' ? 'delivered' : 'stale'), outcomes.join());
    });
  }

  it('a target-owned column set by hand is never touched by an upsert; mapped fields land in their columns', async () => {
    await sql(`INSERT INTO ${schema}.contacts (id, version, email, lead_owner) VALUES ('owned', 1, 'old@example.com', 'alice')`);
    const cmd = command('pgnone', 'owned', 2, { email: 'new@example.com', name: 'Grace' });
    await send(cmd);
    await waitFor(async () => (await row('owned'))?.version === 2, { what: 'version 2 written' });
    assert.deepEqual(await row('owned'), { id: 'owned', version: 2, last_event: cmd.event.id, email: 'new@example.com', full_name: 'Grace', score: null, lead_owner: 'alice' });
  });

  it('a not-null or check violation → business: in the DLQ at once, one attempt; other entities keep flowing', async () => {
    const noEmail = command('pgnone', 'bad-null', 1, { email: null });
    const negative = command('pgnone', 'bad-check', 1, { email: 'c@example.com', score: -1 });
    const good = command('pgnone', 'good', 1, { email: 'g@example.com' });
    await send(noEmail);
    await send(negative);
    await send(good);
    for (const [cmd, code] of [[noEmail, '23502'], [negative, '23514']] as const) {
      const [entry] = await waitFor(async () => { const d = await deadLetters(cmd); return d.length ? d : undefined; }, { what: `${cmd.target.id} in the DLQ` });
      assert.equal(entry!.failureClass, 'business');
      assert.match(entry!.reason, new RegExp(`PostgreSQL error ${code}`));
      // audit records follow the work by up to BUS_AUDIT_FLUSH_MS (coalesced per flush): wait for it
      const failed = await waitFor(async () => { const f = (await audits(cmd)).filter((a) => a.outcome === 'failed'); return f.length ? f : undefined; },
        { what: `${cmd.target.id}'s failed attempt audited` });
      assert.equal(failed.length, 1, 'not retried');
      assert.equal(await row(cmd.target.id), undefined);
    }
    await waitFor(() => row('good'), { what: 'the good entity written' });
  });

  it('a missing table → permanent: in the DLQ and the connector paused', async () => {
    const cmd = command('pgmissing', 'm', 1, { email: 'm@example.com' });
    await send(cmd);
    const [entry] = await waitFor(async () => { const d = await deadLetters(cmd); return d.length ? d : undefined; }, { what: 'the permanent failure in the DLQ' });
    assert.equal(entry!.failureClass, 'permanent');
    assert.match(entry!.reason, /42P01.*no_such_table/);
    const state = await waitFor(async () => (await bus.kv(bus.names.kv.connectors)).get('pgmissing'), { what: 'the connector state' });
    assert.equal((state.json() as { paused: boolean }).paused, true);
  });

  it('PostgreSQL unreachable → transient retries; once it answers, the same connector delivers once', async () => {
    const cmd = command('pgdown', 'down', 1, { email: 'd@example.com' });
    await send(cmd);
    const failed = await waitFor(async () => { const f = (await audits(cmd)).filter((a) => a.outcome === 'failed'); return f.length >= 3 ? f : undefined; },
      { what: 'three refused attempts', intervalMs: 50 });
    assert.ok(failed.every((a) => a.failureClass === 'transient'), failed.map((a) => a.failureClass).join());
    assert.match(failed[0]!.reason ?? '', /ECONNREFUSED.*not sent/);
    await proxy.up();
    await waitFor(() => row('down'), { what: 'the row written after recovery' });
    await finished(cmd);
    assert.deepEqual(await writes('down'), [1]);
    assert.equal((await audits(cmd)).filter((a) => a.outcome === 'delivered').length, 1);
  });

  it('a row locked past the statement timeout → ambiguous; the next attempt looks the row up and never applies twice', async () => {
    // landed: by the next attempt the row has the version (as when a lost answer had been applied) → not sent again
    // absent: it has not → sent again, applied once
    await sql(`INSERT INTO ${schema}.contacts (id, version, email) VALUES ('lock-landed', 1, 'v1@example.com'), ('lock-absent', 1, 'v1@example.com')`);
    for (const [id, settle] of [['lock-landed', 'landed'], ['lock-absent', 'absent']] as const) {
      const locker = await admin.connect();
      try {
        await locker.query('BEGIN');
        await locker.query(`SELECT * FROM ${schema}.contacts WHERE id = $1 FOR UPDATE`, [id]);
        const lookupsBefore = await counter('pgnone', 'lookups', settle);
        const cmd = command('pgnone', id, 2, { email: 'v2@example.com' }, { type: 'contact.locked' });
        await send(cmd);
        const [first] = await waitFor(async () => { const f = (await audits(cmd)).filter((a) => a.outcome === 'failed'); return f.length ? f : undefined; }, { what: 'the timed-out attempt', intervalMs: 50 });
        assert.equal(first!.failureClass, 'ambiguous');
        assert.match(first!.reason ?? '', /57014.*statement timeout/);
        if (settle === 'landed') await locker.query(`UPDATE ${schema}.contacts SET version = 2, email = 'by-hand@example.com' WHERE id = $1`, [id]);
        await locker.query(settle === 'landed' ? 'COMMIT' : 'ROLLBACK');
        await finished(cmd);
        assert.equal(await counter('pgnone', 'lookups', settle), lookupsBefore + 1);
        assert.equal((await audits(cmd)).filter((a) => a.outcome === 'failed').length, 1);
        assert.deepEqual([(await row(id))?.version, (await row(id))?.email], [2, settle === 'landed' ? 'by-hand@example.com' : 'v2@example.com']);
        assert.deepEqual(await writes(id), [1, 2], 'the test\'s version 1, then one write of version 2');
      } finally {
        locker.release();
      }
    }
  });

  it('the target alone: a newer row and deletes by version are explained; unknown action, type or column → permanent', async () => {
    const { target } = resolveDelivery(connector('pgalone', {}), { CRM_PG_URL: PG_URL });
    targets.push(target);
    const o = { timeoutMs: 2_000 };
    await sql(`INSERT INTO ${schema}.contacts (id, version, email) VALUES ('alone', 5, 'five@example.com')`);
    assert.deepEqual(await target.apply(command('pgalone', 'alone', 4, { email: 'four@example.com' }), o).then((r) => [r.ok, r.detail]),
      [true, 'kept: the row has version 5, newer than 4; not overwritten']);
    assert.equal((await target.apply(command('pgalone', 'alone', 5, { email: 'x' }), o)).detail, 'kept: the row already has version 5 (applied before)');
    assert.equal((await target.apply(command('pgalone', 'alone', 6, { email: 'six@example.com' }), o)).detail, 'updated from version 5 to 6');
    assert.equal((await target.apply(command('pgalone', 'alone', 5, {}, { action: 'delete' }), o)).detail, 'kept: the row has version 6, newer than this delete (5)');
    assert.equal((await target.apply(command('pgalone', 'alone', 7, {}, { action: 'delete' }), o)).detail, 'deleted (it had version 6)');
    assert.equal((await target.apply(command('pgalone', 'alone', 8, {}, { action: 'delete' }), o)).detail, 'nothing to delete: no row');
    const permanent = async (cmd: DeliveryCommand, detail: RegExp) => {
      const r = await target.apply(cmd, o);
      assert.equal(r.failureClass, 'permanent');
      assert.match(r.detail, detail);
    };
    await permanent(command('pgalone', 'x', 1, {}, { action: 'archive' }), /knows the actions upsert and delete, not "archive"/);
    await permanent({ ...command('pgalone', 'x', 1, {}), target: { type: 'invoice', id: 'x' } }, /no table for target type "invoice"/);
    await permanent(command('pgalone', 'x', 1, { version: 9 }), /field "version" would write column "version", the key, version or event id/);
    await permanent(command('pgalone', 'x', 1, { email: 'e', nickname: 'n' }), /42703.*nickname/);
  });

  it('list pages through 1,050 rows in key order, 100 at a time, nothing missed or repeated; lookup maps columns back to fields', async () => {
    await sql(`INSERT INTO ${schema}.listed (id, version, label) SELECT 'k' || i, i, 'label ' || i FROM generate_series(1, 1050) AS i`);
    const { target } = resolveDelivery(connector('pglist', {}), { CRM_PG_URL: PG_URL });
    targets.push(target);
    const o = { timeoutMs: 5_000 };
    const seen: string[] = [];
    let pages = 0;
    for (let cursor: string | undefined; ;) {
      const page = await target.list!('listed', { after: cursor, limit: 100 }, o);
      pages++;
      assert.ok(page.records.length <= 100);
      seen.push(...page.records.map((r) => r.key.id));
      if (!page.next) break;
      cursor = page.next;
    }
    assert.equal(pages, 11);
    assert.equal(new Set(seen).size, 1050);
    assert.deepEqual(seen, (await sql(`SELECT id FROM ${schema}.listed ORDER BY id`)).map((r) => r.id), 'in the table\'s key order');
    assert.deepEqual(await target.lookup!({ type: 'listed', id: 'k42' }, o), { key: { type: 'listed', id: 'k42' }, version: 42, fields: { title: 'label 42' } });
    assert.equal(await target.lookup!({ type: 'listed', id: 'k0' }, o), undefined);
  });
});
