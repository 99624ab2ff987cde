import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bus, Consumption } from '@bus/bus';
import { dlqEntries, dlqSummary, replayOne } from '@bus/cli';
import { defineConnector, type DeliveryCommand } from '@bus/connectors';
import { createDeliverer, createDeliverMetrics, resolveDelivery } from '@bus/delivery';
import { encode } from '@bus/envelope';
import { createMetrics } from '@bus/observability';
import { startNats, startTarget, type TestNats, type TestTarget, uniquePrefix, waitFor } from '@bus/testkit';
import { collect, silent, testBus } from './support.js';

// three attempts per round, quickly; a breaker that does not open in this test
const connector = defineConnector({
  name: 'crm',
  subscribes: [{ type: 'contact.updated', map: () => null }],
  delivery: {
    kind: 'http', baseUrlEnv: 'CRM_BASE_URL', routes: { upsert: { method: 'PUT', path: '/{type}s/{id}' } },
    retry: { initialDelayMs: 20, maxDelayMs: 50, maxAttempts: 3, attemptTimeoutMs: 1_000, jitter: 'none' },
    breaker: { failureThreshold: 50 }, ordering: 'latest',
  },
});

const command: DeliveryCommand = {
  id: 'crm:evt-r1', connector: 'crm', action: 'upsert', target: { type: 'contact', id: 'r1' }, fields: { email: 'r1@example.com' },
  sourceOwned: ['email'], entity: { type: 'contact', id: 'r1' }, version: 1,
  event: { id: 'evt-r1', type: 'contact.updated', source: 'standard', occurredAt: new Date().toISOString(), schemaVersion: 1 },
  correlationId: 'corr-r1', idempotencyKey: 'crm:evt-r1',
};

describe('dlq replay of a delivery: history kept, fresh attempts, once', () => {
  let nats: TestNats;
  let bus: Bus;
  let target: TestTarget;
  let running: Consumption;
  before(async () => {
    nats = await startNats();
    bus = await testBus(nats.url, uniquePrefix());
    target = await startTarget({ fallback: { status: 503 } });
    running = await createDeliverer({ bus, delivery: resolveDelivery(connector, { CRM_BASE_URL: target.url }), log: silent,
      metrics: createDeliverMetrics(createMetrics('d').registry) }).start();
  });
  after(async () => {
    await running?.stop();
    await target?.close();
    await bus?.close();
    await nats?.stop({ removeStore: true });
  });

  const calls = () => target.calls.filter((c) => c.idempotencyKey === command.idempotencyKey);
  const dlq = () => collect(dlqEntries(bus, { connector: 'crm' }));
  /** The deliver consumer has nothing left: every command it got is acked or terminated, and DELIVERIES (a work queue) is empty. */
  const settled = (streamSeq: number) => waitFor(async () => {
    const c = await bus.jsm.consumers.info(bus.names.streams.deliveries, 'deliver-crm');
    const s = await bus.jsm.streams.info(bus.names.streams.deliveries);
    return c.delivered.stream_seq >= streamSeq && c.num_pending === 0 && c.num_ack_pending === 0 && s.state.messages === 0;
  }, { what: `deliver done with DELIVERIES up to ${streamSeq}` });

  it('fails again → back in the DLQ once, with the earlier and the new attempts; then fixed → one business outcome, and a second replay adds none', async () => {
    const sent = await bus.publish(bus.names.subjects.delivery('crm', 'contact'), encode(command), { msgId: command.id, headers: { 'Bus-Correlation-Id': command.correlationId } });
    const [first] = await waitFor(async () => ((await dlq()).length === 1 ? dlq() : undefined), { what: 'the first dead-letter after three 503s' });
    assert.equal(calls().length, 3);
    assert.deepEqual(first!.entry.history.map((h) => [h.attempt, h.status ?? h.code]), [[1, 503], [2, 503], [3, 'DELIVER_TRANSIENT']]);
    await settled(sent.seq);

    // still failing: the replay gets its own three attempts (the policy's limit is per round), then one entry with all six
    const r1 = await replayOne(bus, first!.seq, first!.entry);
    assert.equal(r1.ok, true, r1.detail);
    const [second] = await waitFor(async () => {
      const d = await dlq();
      return d.length === 1 && d[0]!.seq !== first!.seq ? d : undefined;
    }, { what: 'the replay dead-lettered again' });
    assert.equal(calls().length, 6, 'three fresh attempts, not an immediate dead-letter');
    const e = second!.entry;
    assert.equal(e.replays, 1);
    assert.deepEqual(e.history.map((h) => h.attempt), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(e.history.slice(0, 3), first!.entry.history);
    assert.match(e.history.at(-1)!.message!, /attempt 3\b/, 'the round\'s own attempt number decided the limit');
    assert.ok(e.attempts >= 6);
    assert.equal(e.original.msgId, `${command.id}.replay1`);
    assert.deepEqual(e.original.data, first!.entry.original.data, 'the command — and its idempotency key — unchanged');
    await settled(sent.seq + 1);
    assert.equal((await dlq()).length, 1, 'once: it did not come back again by itself');

    // fixed: the replay is delivered, once
    target.respondWith({ status: 200 });
    const r2 = await replayOne(bus, second!.seq, e);
    assert.equal(r2.ok, true, r2.detail);
    await waitFor(() => target.outcomes.has(command.idempotencyKey), { what: 'the replay delivered' });
    await settled(sent.seq + 2);
    assert.equal(calls().length, 7);
    assert.equal(new Set(calls().map((c) => c.idempotencyKey)).size, 1, 'one idempotency key across every attempt and replay');
    assert.deepEqual(await dlq(), []);

    // the same entry replayed again (a second person, a stale list): the same replay id, stored once, nothing sent
    const r3 = await replayOne(bus, second!.seq, e);
    assert.equal(r3.ok, true, r3.detail);
    assert.match(r3.detail, /already republished/);
    // …and even past the duplicate window (a new replay id), deliver's version guard sends nothing twice
    const r4 = await replayOne(bus, second!.seq, { ...e, replays: 5 });
    assert.equal(r4.ok, true, r4.detail);
    await settled(sent.seq + 3);
    assert.equal(calls().length, 7, 'no call for either');
    assert.equal([...target.outcomes.keys()].filter((k) => k === command.idempotencyKey).length, 1, 'one business outcome');
    assert.deepEqual(await dlq(), []);
  });

  it('bus dlq list shows entries and the oldest age per stage and connector', async () => {
    const dead = async (stage: string, connector: string | undefined, i: number) => bus.deadLetter({
      id: `X.${i}`, stage, connector, failureClass: 'business', code: 'NOPE', reason: 'no', attempts: 1, history: [], replays: 0,
      deadLetteredAt: new Date().toISOString(), original: { stream: 'X', seq: i, subject: 'x', headers: {}, data: new Uint8Array([i]) },
    });
    const oldest = await dead('deliver', 'erp', 1);
    await dead('deliver', 'erp', 2);
    await dead('ingest', undefined, 3);
    const stored = await bus.jsm.streams.getMessage(bus.names.streams.dlq, { seq: oldest.seq });
    const before = Date.now();
    const all = await dlqSummary(bus);
    assert.deepEqual(all.map((r) => [r.stage, r.connector, r.entries]), [['deliver', 'erp', 2], ['ingest', '-', 1]]);
    assert.ok(all[0]!.oldestAgeMs! >= before - Date.parse(stored!.timestamp) - 2, 'the age of the oldest erp entry');
    assert.deepEqual((await dlqSummary(bus, { connector: 'erp' })).map((r) => r.entries), [2]);
    assert.deepEqual(await dlqSummary(bus, { stage: 'transform' }), []);
  });
});
