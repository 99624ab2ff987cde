import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createEnvelope, decodeEnvelope, type Envelope } from '@bus/envelope';
import { createMetrics } from '@bus/observability';
import { workerConsumer } from '@bus/streams';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { Kvm } from '@nats-io/kv';
import { loadBusConfig } from './config.js';
import { type Bus, connectBus } from './connect.js';
import type { Consumption, HandlerContext } from './consume.js';
import { decodeDeadLetter, type DeadLetter } from './dead-letter.js';
import { done, type Outcome, retryAfter } from './outcome.js';
import { readStream } from './read.js';
import { ensureConsumer } from './topology.js';
import { silent } from './test-support.js';

// NATS going wrong under a consumer: its errors are retried, not dead-lettered, and a
// dead-letter that cannot be written on the last attempt keeps the message.
describe('consume under NATS faults', () => {
  let nats: TestNats;
  let bus: Bus;
  const metrics = createMetrics('consume-faults');
  const running: Consumption[] = [];
  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix, BUS_PUBLISH_TIMEOUT_MS: '1000' }), name: 'faults', log: silent, metrics });
    await bus.applyTopology();
  });
  after(async () => {
    for (const c of running) await c.stop();
    await bus?.close();
    await nats?.stop({ removeStore: true });
  });

  let n = 0;
  async function setUp(handler: (env: Envelope, ctx: HandlerContext) => Promise<Outcome>, maxDeliver = 20) {
    const type = `fault${++n}`;
    const durable = `test-${type}`;
    await ensureConsumer(bus.jsm, workerConsumer({
      stream: bus.names.streams.events, durable, description: 'test', filterSubject: bus.names.subjects.event('t', `${type}.>`), maxDeliver,
    }));
    running.push(await bus.consume<Envelope>({
      stream: bus.names.streams.events, durable, stage: 'test', connector: type, decode: decodeEnvelope, handler,
      retryDelayMs: () => 50, deadLetterRetryMs: 100,
    }));
    const publish = async () => {
      const env = createEnvelope({ type: `${type}.x`, entity: { type: 'e', id: type }, version: 1, data: {} }, { source: 't' });
      await bus.publishEnvelope(bus.names.subjects.event('t', env.type), env);
      return env;
    };
    return { type, publish, info: () => bus.jsm.consumers.info(bus.names.streams.events, durable) };
  }

  async function dlqEntries(connector: string): Promise<DeadLetter[]> {
    const out: DeadLetter[] = [];
    for await (const m of readStream(bus.jsm, bus.names.streams.dlq, { subject: (s) => s === bus.names.subjects.dlq('test', connector) })) {
      out.push(decodeDeadLetter(m.data));
    }
    return out;
  }

  const counter = async (outcome: string) =>
    Number((await metrics.registry.getSingleMetric('bus_consumed_total')?.get())?.values.find((v) => v.labels.outcome === outcome)?.value ?? 0);

  it('a handler that hits a NATS timeout or "no responders" is retried with backoff, not dead-lettered', async () => {
    const silentSubject = `${bus.names.prefix}silent`;
    const sub = bus.nc.subscribe(silentSubject, { callback: () => undefined }); // takes requests, never answers
    try {
      const seen: { attempt: number; codes: (string | undefined)[] }[] = [];
      const t = await setUp(async (_env, ctx) => {
        seen.push({ attempt: ctx.attempt, codes: ctx.history.map((h) => h.code) });
        if (ctx.attempt === 1) await bus.nc.request(silentSubject, '', { timeout: 100 }); // a real TimeoutError
        if (ctx.attempt === 2) await bus.nc.request(`${bus.names.prefix}nobody`, '', { timeout: 1_000 }); // a real "no responders"
        return done();
      });
      await t.publish();
      await waitFor(async () => seen.length === 3 && (await t.info()).num_ack_pending === 0, { what: 'the third attempt done' });
      assert.deepEqual(seen.map((s) => s.attempt), [1, 2, 3]);
      assert.deepEqual(seen[2]!.codes, ['NATS_TIMEOUT', 'NATS_UNAVAILABLE']);
      assert.deepEqual(await dlqEntries(t.type), []);
    } finally {
      sub.unsubscribe();
    }
  });

  it('a handler whose KV bucket is gone is dead-lettered at once as permanent, naming the fix', async () => {
    const bucket = `${bus.names.prefix}gone`;
    await new Kvm(bus.js).create(bucket);
    const kv = await bus.kv(bucket);
    await bus.jsm.streams.delete(`KV_${bucket}`);
    let calls = 0;
    const t = await setUp(async () => {
      calls++;
      await kv.get('k');
      return done();
    });
    await t.publish();
    const [entry] = await waitFor(async () => {
      const e = await dlqEntries(t.type);
      return e.length ? e : undefined;
    }, { what: 'the DLQ entry' });
    assert.equal(entry!.failureClass, 'permanent');
    assert.equal(entry!.code, 'NATS_STREAM_NOT_FOUND');
    assert.match(entry!.reason, /bus streams apply/);
    assert.equal(calls, 1);
  });

  it('maxDeliver reached and the DLQ unavailable: the message stays, and lands in the DLQ once the DLQ is back', async () => {
    const dlq = await bus.jsm.streams.info(bus.names.streams.dlq);
    const failedBefore = await counter('failed_dead_letter');
    const attempts: number[] = [];
    const t = await setUp(async (_env, ctx) => {
      attempts.push(ctx.attempt);
      // the DLQ goes away while the final attempt runs
      if (ctx.finalAttempt && attempts.length === 3) await bus.jsm.streams.delete(bus.names.streams.dlq);
      return retryAfter(20, 'target still down');
    }, 3);
    try {
      await t.publish();
      // today JetStream's max_deliver would have dropped it here: no redelivery, nothing pending
      await waitFor(async () => (await t.info()).delivered.consumer_seq >= 5, { what: 'deliveries past the final attempt while the DLQ is gone' });
      const info = await t.info();
      assert.equal(info.num_pending + info.num_ack_pending, 1, 'the message is still in its stream');
      assert.ok((await counter('failed_dead_letter')) > failedBefore, 'failed_dead_letter counted');
    } finally {
      await bus.jsm.streams.add(dlq.config).catch(() => undefined);
    }
    const entries = await waitFor(async () => {
      const e = await dlqEntries(t.type);
      return e.length ? e : undefined;
    }, { what: 'the DLQ entry once the DLQ is back' });
    await waitFor(async () => {
      const i = await t.info();
      return i.num_pending === 0 && i.num_ack_pending === 0;
    }, { what: 'the message terminated' });
    assert.equal((await dlqEntries(t.type)).length, 1);
    assert.equal(entries[0]!.code, 'ATTEMPTS_EXHAUSTED');
    assert.match(entries[0]!.reason, /target still down/);
    assert.deepEqual(attempts, [1, 2, 3], 'the handler ran maxDeliver times, no more');
    assert.equal(entries[0]!.history.length, 3);
  });
});

describe('consume while the NATS server restarts', () => {
  let nats: TestNats;
  let bus: Bus;
  let consumption: Consumption | undefined;
  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'restart', log: silent });
    await bus.applyTopology();
  });
  after(async () => {
    await consumption?.stop();
    await bus?.close();
    await nats?.stop({ removeStore: true });
  });

  it('a KV read that fails because the server stopped mid-handler is retried after the restart, not dead-lettered', async () => {
    const durable = 'test-restart';
    await ensureConsumer(bus.jsm, workerConsumer({ stream: bus.names.streams.events, durable, description: 'test', ackWaitSec: 5 }));
    const kv = await bus.kv(bus.names.kv.attempts);
    const outcomes: string[] = [];
    consumption = await bus.consume<Envelope>({
      stream: bus.names.streams.events, durable, stage: 'test', decode: decodeEnvelope, retryDelayMs: () => 200,
      handler: async (_env, ctx) => {
        if (ctx.attempt === 1) {
          await nats.stop(); // the server goes away under the handler's KV read
          try {
            await kv.get('anything');
          } catch (err) {
            outcomes.push((err as Error).name);
            await nats.start(); // back before the error reaches consume: only its class decides what happens
            await bus.nc.flush();
            throw err;
          }
        }
        outcomes.push('done');
        return done();
      },
    });
    const env = createEnvelope({ type: 'r.x', entity: { type: 'e', id: '1' }, version: 1, data: {} }, { source: 't' });
    await bus.publishEnvelope(bus.names.subjects.event('t', env.type), env);
    await waitFor(() => outcomes.includes('done'), { what: 'the retry after the restart', timeoutMs: 30_000 });
    assert.deepEqual(outcomes, ['TimeoutError', 'done']);
    const info = await waitFor(async () => {
      const i = await bus.jsm.consumers.info(bus.names.streams.events, durable);
      return i.num_ack_pending === 0 ? i : undefined;
    }, { what: 'the message acknowledged' });
    assert.equal(info.num_pending, 0);
    assert.equal((await bus.jsm.streams.info(bus.names.streams.dlq)).state.messages, 0);
  });
});
