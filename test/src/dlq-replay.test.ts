import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, done, ensureConsumer } from '@bus/bus';
import { discardEntries, dlqEntries, replayOne } from '@bus/cli';
import { decodeEnvelope, type Envelope } from '@bus/envelope';
import { createIntake, createIntakeMetrics, defineSource, serveReplays } from '@bus/intake';
import { createMetrics } from '@bus/observability';
import { workerConsumer } from '@bus/streams';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { Webhook } from 'standardwebhooks';
import { z } from 'zod';
import { collect, numbered, silent, testBus } from './support.js';

const secret = `whsec_${Buffer.from('dlq-replay-test-secret').toString('base64')}`;
const source = (strict: boolean) => defineSource({
  name: 'standard', verification: { scheme: 'standard-webhooks' }, secretsEnv: 'STANDARD_WEBHOOK_SECRET',
  schema: z.object({ type: z.string(), data: z.looseObject({ id: z.string(), version: z.number(), email: strict ? z.email() : z.string() }) }),
  deliveryId: ({ signedDeliveryId }) => signedDeliveryId, eventType: ({ payload }) => payload.type,
  entity: ({ payload }) => ({ type: 'contact', id: payload.data.id }), version: ({ payload }) => payload.data.version, occurredAt: () => undefined,
});
const intakeFor = (bus: Bus, strict: boolean) =>
  createIntake({ bus, sources: [source(strict)], env: { STANDARD_WEBHOOK_SECRET: secret }, log: silent, metrics: createIntakeMetrics(createMetrics('t').registry) });

describe('bus dlq replay', () => {
  let nats: TestNats;
  let bus: Bus;
  before(async () => {
    nats = await startNats();
    bus = await testBus(nats.url, uniquePrefix());
  });
  after(async () => {
    await bus.close();
    await nats.stop({ removeStore: true });
  });

  it('a quarantined webhook: replay fails (and stays, once) while the schema is strict, and is stored once it is relaxed', async () => {
    const strict = intakeFor(bus, true);
    const payload = JSON.stringify({ type: 'contact.updated', data: { id: 'c1', version: 1, email: 'not-an-email' } });
    const at = new Date();
    const res = await strict.receive('standard', {
      'webhook-id': 'msg_q1', 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(secret).sign('msg_q1', at, payload),
    }, Buffer.from(payload));
    assert.equal(res.body.status, 'quarantined');
    const [q] = await collect(dlqEntries(bus, { stage: 'ingest' }));
    assert.ok(q);

    const stopStrict = serveReplays(bus, strict, silent);
    const still = await replayOne(bus, q.seq, q.entry);
    stopStrict();
    assert.equal(still.ok, false);
    assert.match(still.detail, /still invalid.*data\.email/);
    assert.equal((await collect(dlqEntries(bus, { stage: 'ingest' }))).length, 1, 'still one entry, not two');

    const stopRelaxed = serveReplays(bus, intakeFor(bus, false), silent);
    try {
      const r = await replayOne(bus, q.seq, q.entry);
      assert.equal(r.ok, true, r.detail);
      const info = await bus.jsm.streams.info(bus.names.streams.events);
      const stored = await bus.jsm.streams.getMessage(bus.names.streams.events, { seq: info.state.last_seq });
      assert.equal(decodeEnvelope(stored!.data).id, 'standard:msg_q1');
      assert.equal((await collect(dlqEntries(bus, { stage: 'ingest' }))).length, 0, 'the entry is gone once stored');
    } finally {
      stopRelaxed();
    }
  });

  it('a dead-lettered message is republished with its replay counted, handled again, and a second failure comes back once with the count', async () => {
    await ensureConsumer(bus.jsm, workerConsumer({ stream: bus.names.streams.events, durable: 'replayer', description: 't',
      filterSubject: bus.names.subjects.event('shop', 'order.>') }));
    let fixed = false;
    const seen: number[] = [];
    const c = await bus.consume<Envelope>({ stream: bus.names.streams.events, durable: 'replayer', stage: 'test', connector: 'shop', decode: decodeEnvelope,
      handler: async (_env, ctx) => {
        seen.push(Number(ctx.headers['Bus-Replays'] ?? 0));
        return fixed ? done() : { kind: 'dead-letter', failureClass: 'business', code: 'NOPE', reason: 'rejected' };
      } });
    try {
      await bus.publishEnvelope(bus.names.subjects.event('shop', 'order.created'), numbered(7));
      const first = await waitFor(async () => (await collect(dlqEntries(bus, { stage: 'test' })))[0], { what: 'the dead-letter' });
      await replayOne(bus, first.seq, first.entry);
      const second = await waitFor(async () => (await collect(dlqEntries(bus, { stage: 'test' })))[0], { what: 'the second dead-letter' });
      assert.equal(second.entry.replays, 1);
      assert.equal((await collect(dlqEntries(bus, { stage: 'test' }))).length, 1);
      fixed = true;
      await replayOne(bus, second.seq, second.entry);
      await waitFor(() => seen.length === 3, { what: 'the third handling' });
      assert.deepEqual(seen, [0, 1, 2]);
      assert.equal((await collect(dlqEntries(bus, { stage: 'test' }))).length, 0);
    } finally {
      await c.stop();
    }
  });

  it('discard deletes only what the filter names, and audits it', async () => {
    await ensureConsumer(bus.jsm, workerConsumer({ stream: bus.names.streams.events, durable: 'discarder', description: 't',
      filterSubject: bus.names.subjects.event('shop', 'invoice.>') }));
    const c = await bus.consume<Envelope>({ stream: bus.names.streams.events, durable: 'discarder', stage: 'test', connector: 'billing', decode: decodeEnvelope,
      handler: async () => ({ kind: 'dead-letter', failureClass: 'business', code: 'NOPE', reason: 'rejected' }) });
    try {
      for (const n of [1, 2]) await bus.publishEnvelope(bus.names.subjects.event('shop', 'invoice.issued'), numbered(100 + n));
      await waitFor(async () => (await collect(dlqEntries(bus, { connector: 'billing' }))).length === 2, { what: 'two dead letters' });
      const [first] = await collect(dlqEntries(bus, { connector: 'billing' }));
      assert.equal(await discardEntries(bus, { connector: 'billing' }, [first!.seq]), 1);
      const left = await collect(dlqEntries(bus, { connector: 'billing' }));
      assert.deepEqual(left.map((e) => e.seq).includes(first!.seq), false);
      assert.equal(left.length, 1);
      assert.equal(await discardEntries(bus, { connector: 'nobody' }), 0);
    } finally {
      await c.stop();
    }
  });
});
