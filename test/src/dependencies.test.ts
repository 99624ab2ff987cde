// Partial failure across records: an order needs its contact at the CRM first. Real transform and deliver processes, the CLI for the replay.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { auditRecordsOf, type Bus, type DeadLetter, decodeDeadLetter, readStream } from '@bus/bus';
import { createEnvelope } from '@bus/envelope';
import { freePort, startNats, startProcess, startTarget, type TestNats, type TestProcess, type TestTarget, uniquePrefix, waitFor } from '@bus/testkit';
import { testBus } from './support.js';

const deliverMain = fileURLToPath(new URL('../../services/deliver/dist/main.js', import.meta.url));
const transformMain = fileURLToPath(new URL('../../services/transform/dist/main.js', import.meta.url));
const cliMain = fileURLToPath(new URL('../../libs/cli/dist/main.js', import.meta.url));
const catalog = fileURLToPath(new URL('./fixtures/deps-catalog.js', import.meta.url));

describe('cross-record dependencies: orders need their contact at the target first', () => {
  let nats: TestNats;
  let bus: Bus;
  let prefix: string;
  let target: TestTarget;
  let deliverPort: number;
  const procs: TestProcess[] = [];
  before(async () => {
    for (const f of [deliverMain, transformMain, cliMain]) assert.ok(existsSync(f), `${f} is not built: run npm run build`);
    nats = await startNats();
    prefix = uniquePrefix();
    bus = await testBus(nats.url, prefix);
    target = await startTarget();
    deliverPort = await freePort();
    const env = { NATS_URL: nats.url, BUS_PREFIX: prefix, BUS_CATALOG: catalog, DEPCRM_URL: target.url, LOG_LEVEL: 'info' };
    procs.push(startProcess({ command: process.execPath, args: [transformMain], env: { ...env, TRANSFORM_OPS_PORT: String(await freePort()) } }));
    procs.push(startProcess({ command: process.execPath, args: [deliverMain], env: { ...env, DELIVER_OPS_PORT: String(deliverPort) } }));
    await procs[0]!.waitForOutput(/transform started/, 'transform started', 30_000);
    await procs[1]!.waitForOutput(/deliver started/, 'deliver started', 30_000);
  });
  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await target.close();
    await bus.close();
    await nats.stop({ removeStore: true });
  });

  const publish = (type: string, entity: { type: string; id: string }, data: Record<string, unknown>) =>
    bus.publishEnvelope(bus.names.subjects.event('shop', type), createEnvelope({ type, entity, version: 1, data }, { source: 'shop', id: `${entity.type}-${entity.id}-v1` }));
  const callsTo = (path: string) => target.calls.filter((c) => c.method === 'PUT' && c.path === path);
  /** When the call that applied the record at `path` was made (the target applies each idempotency key once, on success). */
  const okAt = (path: string) => {
    const last = callsTo(path).at(-1);
    return last?.idempotencyKey && target.outcomes.has(last.idempotencyKey) ? last.at : undefined;
  };
  const waits = async () => {
    const text = await (await fetch(`http://127.0.0.1:${deliverPort}/metrics`)).text();
    return Number(/deliver_waits_total\{[^}]*reason="dependency"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
  };
  const dlq = async () => {
    const out: { seq: number; entry: DeadLetter }[] = [];
    for await (const m of readStream(bus.jsm, bus.names.streams.dlq)) out.push({ seq: m.seq, entry: decodeDeadLetter(m.data) });
    return out;
  };
  const entityOf = (e: DeadLetter) => `${e.original.headers['Bus-Entity-Type']}/${e.original.headers['Bus-Entity-Id']}`;
  const cli = (args: string[]) => new Promise<{ code: number; out: string }>((resolve) => {
    execFile(process.execPath, [cliMain, ...args], { env: { ...process.env, NATS_URL: nats.url, BUS_PREFIX: prefix } },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }));
  });

  it('the contact\'s delivery fails three times: the order waits unsent, then lands right after the contact does', async (t) => {
    target.script({ status: 503 }, { status: 503 }, { status: 503 });
    await publish('contact.updated', { type: 'contact', id: 'c-1' }, { email: 'ada@example.com' });
    await publish('order.created', { type: 'order', id: 'o-1' }, { contactId: 'c-1', total: 42 });
    const orderAt = await waitFor(() => okAt('/orders/o-1'), { what: 'the order delivered', timeoutMs: 30_000, intervalMs: 50 });
    const contactAt = okAt('/contacts/c-1');
    assert.ok(contactAt !== undefined, 'the contact was delivered');
    assert.equal(callsTo('/contacts/c-1').length, 4, 'three failures, then the contact landed');
    assert.equal(callsTo('/orders/o-1').length, 1, 'the order was sent once: never before its contact was there');
    assert.ok(orderAt >= contactAt, 'the order after its contact');
    assert.ok(orderAt - contactAt < 2_000, `right after it (${orderAt - contactAt} ms)`);
    t.diagnostic(`order landed ${orderAt - contactAt} ms after its contact; ${await waits()} dependency waits`);
    assert.ok((await waits()) > 0, 'it was held: deliver_waits_total{reason="dependency"}');
  });

  it('the contact dead-lettered: the order is dead-lettered naming contact/c-2, unsent; replaying the contact delivers both, in order, and is audited', async (t) => {
    target.script({ status: 422, body: { error: 'email rejected' } });
    await publish('contact.updated', { type: 'contact', id: 'c-2' }, { email: 'bob@example.com' });
    await publish('order.created', { type: 'order', id: 'o-2' }, { contactId: 'c-2', total: 7 });
    const order = await waitFor(async () => (await dlq()).find((d) => entityOf(d.entry) === 'order/o-2'), { what: 'the order dead-lettered', timeoutMs: 20_000, intervalMs: 100 });
    assert.equal(order.entry.failureClass, 'business');
    assert.equal(order.entry.code, 'DELIVER_DEPENDENCY_MISSING');
    assert.match(order.entry.reason, /order\/o-2 needs contact\/c-2 at depcrm first, and its delivery to depcrm was dead-lettered/);
    assert.deepEqual(order.entry.details?.needs, ['contact/c-2']);
    assert.equal(callsTo('/orders/o-2').length, 0, 'the order was never sent');
    const contact = (await dlq()).find((d) => entityOf(d.entry) === 'contact/c-2');
    assert.ok(contact, 'the contact is in the DLQ');
    // the contact's cause is fixed (the target takes it now): replay only the contact
    const replay = await cli(['dlq', 'replay', '--seq', String(contact.seq)]);
    assert.equal(replay.code, 0, replay.out);
    const orderAt = await waitFor(() => okAt('/orders/o-2'), { what: 'the order delivered after the contact\'s replay', timeoutMs: 20_000, intervalMs: 50 });
    const contactAt = okAt('/contacts/c-2');
    assert.ok(contactAt !== undefined && orderAt >= contactAt, 'contact first, then the order');
    t.diagnostic(`after the contact's replay: the order landed ${orderAt - contactAt} ms after the contact`);
    assert.equal(callsTo('/orders/o-2').length, 1);
    assert.equal((await dlq()).filter((d) => ['order/o-2', 'contact/c-2'].includes(entityOf(d.entry))).length, 0, 'nothing of it left in the DLQ');
    const audited = await waitFor(async () => {
      for await (const r of auditRecordsOf(bus, 'deliver', 'dependent-replayed')) if (r.entity?.id === 'o-2') return r;
      return undefined;
    }, { what: 'the automatic replay audited' });
    assert.match(audited.reason ?? '', /contact\/c-2 was delivered to depcrm: order\/o-2, dead-lettered waiting for it, is replayed/);
  });

  it('the contact still retrying past the wait: the order is dead-lettered naming it; the contact dead-lettered too; its replay delivers both, in order', async () => {
    // ten 503s: every attempt of the contact fails (maxAttempts 10, ~5 s of backoff), longer than the order's 4 s wait
    target.script(...Array.from({ length: 10 }, () => ({ status: 503 })));
    await publish('contact.updated', { type: 'contact', id: 'c-5' }, { email: 'eve@example.com' });
    await publish('order.created', { type: 'order', id: 'o-5' }, { contactId: 'c-5', total: 5 });
    const order = await waitFor(async () => (await dlq()).find((d) => entityOf(d.entry) === 'order/o-5'), { what: 'the order dead-lettered', timeoutMs: 20_000, intervalMs: 100 });
    assert.match(order.entry.reason, /order\/o-5 needs contact\/c-5 at depcrm first, and it was still pending or retrying after \d+ s \(dependencies\.waitMs 4000\)/);
    const contact = await waitFor(async () => (await dlq()).find((d) => entityOf(d.entry) === 'contact/c-5'), { what: 'the contact dead-lettered (attempts exhausted)', timeoutMs: 30_000, intervalMs: 100 });
    assert.equal(contact.entry.failureClass, 'transient');
    assert.equal(callsTo('/orders/o-5').length, 0, 'the order was never sent');
    const replay = await cli(['dlq', 'replay', '--seq', String(contact.seq)]);
    assert.equal(replay.code, 0, replay.out);
    const orderAt = await waitFor(() => okAt('/orders/o-5'), { what: 'the order delivered after the contact\'s replay', timeoutMs: 20_000, intervalMs: 50 });
    assert.ok(orderAt >= okAt('/contacts/c-5')!, 'contact first, then the order');
  });

  it('a contact that never comes: the order waits dependencies.waitMs (4 s), then is dead-lettered naming it', async () => {
    const sent = Date.now();
    await publish('order.created', { type: 'order', id: 'o-3' }, { contactId: 'c-404', total: 1 });
    const order = await waitFor(async () => (await dlq()).find((d) => entityOf(d.entry) === 'order/o-3'), { what: 'the order dead-lettered', timeoutMs: 20_000, intervalMs: 100 });
    assert.ok(Date.now() - sent >= 4_000, 'not before the wait was over');
    assert.match(order.entry.reason, /order\/o-3 needs contact\/c-404 at depcrm first, and it had not reached depcrm after \d+ s \(dependencies\.waitMs 4000\)/);
    assert.equal(callsTo('/orders/o-3').length, 0);
  });
});
