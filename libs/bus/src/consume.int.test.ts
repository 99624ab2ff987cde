import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BusError } from '@bus/errors';
import { createEnvelope, decodeEnvelope, type Envelope } from '@bus/envelope';
import { workerConsumer } from '@bus/streams';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import type { Bus } from './connect.js';
import type { ConsumeOptions, Consumption, HandlerContext } from './consume.js';
import { decodeDeadLetter, type DeadLetter } from './dead-letter.js';
import { deadLetter, done, type Outcome, retryAfter } from './outcome.js';
import { readStream } from './read.js';
import { ensureConsumer } from './topology.js';
import { createMetrics } from '@bus/observability';
import { loadBusConfig } from './config.js';
import { connectBus } from './connect.js';
import { silent, testBus } from './test-support.js';

describe('consume: outcomes become ack / nak(delay) / dead-letter', () => {
  let nats: TestNats;
  let bus: Bus;
  const running: Consumption[] = [];
  before(async () => {
    nats = await startNats();
    bus = await testBus(nats.url, uniquePrefix());
  });
  after(async () => {
    for (const c of running) await c.stop();
    await bus?.close();
    await nats?.stop({ removeStore: true });
  });

  let n = 0;
  /** A fresh consumer on its own event type, so tests never see each other's messages. */
  async function setUp(
    handler: (env: Envelope, ctx: HandlerContext) => Promise<Outcome>,
    opts: { maxDeliver?: number; extra?: Partial<ConsumeOptions<Envelope>> } = {},
  ) {
    const type = `case${++n}`;
    const durable = `test-${type}`;
    await ensureConsumer(bus.jsm, workerConsumer({
      stream: bus.names.streams.events, durable, description: 'test',
      filterSubject: bus.names.subjects.event('t', `${type}.>`), maxDeliver: opts.maxDeliver ?? 20,
    }));
    const consumption = await bus.consume<Envelope>({
      stream: bus.names.streams.events, durable, stage: 'test', connector: type,
      decode: decodeEnvelope, handler, concurrency: 4, ...opts.extra,
    });
    running.push(consumption);
    const publish = async (i: number) => {
      const env = createEnvelope({ type: `${type}.x`, entity: { type: 'e', id: `e${i}` }, version: 1, data: { i } }, { source: 't' });
      await bus.publishEnvelope(bus.names.subjects.event('t', env.type), env);
      return env;
    };
    const consumerInfo = () => bus.jsm.consumers.info(bus.names.streams.events, durable);
    return { publish, consumerInfo, durable, type };
  }

  async function dlqEntries(connector: string): Promise<DeadLetter[]> {
    const out: DeadLetter[] = [];
    for await (const m of readStream(bus.jsm, bus.names.streams.dlq, { subject: (s) => s === bus.names.subjects.dlq('test', connector) })) {
      out.push(decodeDeadLetter(m.data));
    }
    return out;
  }

  it('done acknowledges: nothing pending, nothing redelivered', async () => {
    const seen: string[] = [];
    const t = await setUp(async (env) => {
      seen.push(env.id);
      return done();
    });
    const sent = await Promise.all([1, 2, 3].map(t.publish));
    await waitFor(async () => {
      const info = await t.consumerInfo();
      return info.num_pending === 0 && info.num_ack_pending === 0 && info.delivered.stream_seq > 0 && seen.length === 3;
    }, { what: 'three messages handled and acknowledged' });
    assert.deepEqual([...seen].sort(), sent.map((e) => e.id).sort());
    assert.equal((await t.consumerInfo()).num_redelivered, 0);
  });

  it('retry after a delay is redelivered no sooner than the delay, with the attempt in its history', async () => {
    const calls: { at: number; attempt: number; history: number }[] = [];
    const t = await setUp(async (_env, ctx) => {
      calls.push({ at: performance.now(), attempt: ctx.attempt, history: ctx.history.length });
      return ctx.attempt === 1 ? retryAfter(700, 'target busy', { status: 503 }) : done();
    });
    await t.publish(1);
    await waitFor(() => calls.length === 2, { what: 'the redelivery' });
    assert.ok(calls[1]!.at - calls[0]!.at >= 700, `redelivered after ${calls[1]!.at - calls[0]!.at} ms`);
    assert.deepEqual(calls.map((c) => [c.attempt, c.history]), [[1, 0], [2, 1]]);
  });

  it('dead-letter lands in the DLQ with reason, class, history and the original bytes, and is terminated', async () => {
    const t = await setUp(async (_env, ctx) =>
      ctx.attempt === 1 ? retryAfter(10, 'timeout', { failureClass: 'transient' }) : deadLetter('business', 'CRM_REJECTED', 'crm said 422: email invalid', { status: 422 }));
    const env = await t.publish(1);
    const entries = await waitFor(async () => {
      const e = await dlqEntries(t.type);
      return e.length === 1 ? e : undefined;
    }, { what: 'one DLQ entry' });
    const entry = entries[0]!;
    assert.equal(entry.failureClass, 'business');
    assert.equal(entry.code, 'CRM_REJECTED');
    assert.equal(entry.reason, 'crm said 422: email invalid');
    assert.deepEqual(entry.details, { status: 422 });
    assert.equal(entry.attempts, 2);
    assert.deepEqual(entry.history.map((h) => [h.attempt, h.failureClass]), [[1, 'transient'], [2, 'business']]);
    assert.equal(entry.correlationId, env.correlationId);
    assert.deepEqual(decodeEnvelope(entry.original.data), env);
    await waitFor(async () => (await t.consumerInfo()).num_ack_pending === 0, { what: 'the message terminated' });
  });

  it('when maxDeliver is reached the handler is told it is the final attempt, and a retry becomes a dead-letter', async () => {
    const finals: boolean[] = [];
    const t = await setUp(async (_env, ctx) => {
      finals.push(ctx.finalAttempt);
      return retryAfter(20, 'still failing');
    }, { maxDeliver: 3 });
    await t.publish(1);
    const [entry] = await waitFor(async () => {
      const e = await dlqEntries(t.type);
      return e.length ? e : undefined;
    }, { what: 'the exhausted message in the DLQ' });
    assert.deepEqual(finals, [false, false, true]);
    assert.equal(entry!.code, 'ATTEMPTS_EXHAUSTED');
    assert.match(entry!.reason, /maxDeliver \(3\).*still failing/);
    assert.equal(entry!.history.length, 3);
  });

  it('a thrown transient error is retried; a thrown bug is dead-lettered as permanent', async () => {
    const attempts: number[] = [];
    const t = await setUp(async (env, ctx) => {
      attempts.push(ctx.attempt);
      if (env.data.i === 1 && ctx.attempt < 3) throw new BusError('TARGET_DOWN', 'transient', 'connection refused');
      if (env.data.i === 2) throw new TypeError('cannot read x of undefined');
      return done();
    }, { extra: { retryDelayMs: () => 10 } });
    await t.publish(1);
    await t.publish(2);
    const [entry] = await waitFor(async () => {
      const e = await dlqEntries(t.type);
      return e.length ? e : undefined;
    }, { what: 'the bug in the DLQ' });
    assert.equal(entry!.failureClass, 'permanent');
    assert.match(entry!.reason, /cannot read x/);
    await waitFor(async () => (await t.consumerInfo()).num_ack_pending === 0 && attempts.length >= 4, { what: 'the transient one retried to success' });
  });

  it('a message whose DLQ publish fails is kept and retried, never dropped', async () => {
    const t = await setUp(async () => deadLetter('business', 'BAD', 'bad'), { extra: { deadLetterRetryMs: 200 } });
    const dlq = await bus.jsm.streams.info(bus.names.streams.dlq);
    await bus.jsm.streams.delete(bus.names.streams.dlq);
    await t.publish(1);
    await waitFor(async () => (await t.consumerInfo()).num_redelivered >= 1, { what: 'a redelivery after the failed dead-letter' });
    await bus.jsm.streams.add(dlq.config);
    const entries = await waitFor(async () => {
      const e = await dlqEntries(t.type);
      return e.length ? e : undefined;
    }, { what: 'the DLQ entry once the DLQ is back' });
    assert.equal(entries.length, 1);
  });

  it('a body that is not an envelope is dead-lettered as business with the bad fields named', async () => {
    const t = await setUp(async () => done());
    await bus.publish(bus.names.subjects.event('t', `${t.type}.x`), new TextEncoder().encode('{"not":"msgpack"}'), { msgId: `junk-${t.type}` });
    const [entry] = await waitFor(async () => {
      const e = await dlqEntries(t.type);
      return e.length ? e : undefined;
    }, { what: 'the junk in the DLQ' });
    assert.equal(entry!.failureClass, 'business');
    assert.equal(entry!.code, 'ENVELOPE_INVALID');
  });

  it('working() keeps a long handler\'s message from being redelivered past ack_wait', async () => {
    const type = `case${++n}`;
    const durable = `test-${type}`;
    await ensureConsumer(bus.jsm, workerConsumer({ stream: bus.names.streams.events, durable, description: 'test', ackWaitSec: 1,
      filterSubject: bus.names.subjects.event('t', `${type}.>`) }));
    let calls = 0;
    const consumption = await bus.consume<Envelope>({ stream: bus.names.streams.events, durable, stage: 'test', decode: decodeEnvelope,
      handler: async (_env, ctx) => {
        calls++;
        // time itself is what is tested: the handler outlives ack_wait (1 s) 2.5 times, saying working() every 300 ms
        await new Promise<void>((resolve) => {
          const beat = setInterval(() => ctx.working(), 300);
          setTimeout(() => {
            clearInterval(beat);
            resolve();
          }, 2_500);
        });
        return done();
      } });
    running.push(consumption);
    const env = createEnvelope({ type: `${type}.x`, entity: { type: 'e', id: '1' }, version: 1, data: {} }, { source: 't' });
    await bus.publishEnvelope(bus.names.subjects.event('t', env.type), env);
    await waitFor(async () => (await bus.jsm.consumers.info(bus.names.streams.events, durable)).num_ack_pending === 0 && calls === 1, { what: 'the long handler done', timeoutMs: 8_000 });
    const info = await bus.jsm.consumers.info(bus.names.streams.events, durable);
    assert.equal(info.num_redelivered, 0);
    assert.equal(calls, 1);
  });

  it('metrics: queue depth and the age of the oldest unfinished message per consumer', async () => {
    const metrics = createMetrics('stats-test');
    const own = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: bus.names.prefix }), name: 'stats', log: silent, metrics });
    const durable = 'test-stats';
    await ensureConsumer(own.jsm, workerConsumer({ stream: own.names.streams.events, durable, description: 'test', filterSubject: own.names.subjects.event('t', 'stats.>') }));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const c = await own.consume<Envelope>({ stream: own.names.streams.events, durable, stage: 'test', decode: decodeEnvelope, concurrency: 1, statsIntervalMs: 100,
      handler: async () => {
        await held;
        return done();
      } });
    try {
      for (let i = 0; i < 3; i++) {
        const env = createEnvelope({ type: 'stats.x', entity: { type: 'e', id: `s${i}` }, version: 1, data: {} }, { source: 't' });
        await own.publishEnvelope(own.names.subjects.event('t', env.type), env);
      }
      const gauge = async (name: string) => Number((await metrics.registry.getSingleMetric(name)?.get())?.values.find((v) => v.labels.consumer === durable)?.value ?? -1);
      await waitFor(async () => (await gauge('bus_consumer_oldest_pending_age_seconds')) > 0.2, { what: 'the oldest unfinished message ageing' });
      assert.ok((await gauge('bus_consumer_pending')) + (await gauge('bus_consumer_ack_pending')) >= 3);
      release();
      await waitFor(async () => (await gauge('bus_consumer_oldest_pending_age_seconds')) === 0, { what: 'nothing unfinished: age 0' });
    } finally {
      release();
      await c.stop();
      await own.close();
    }
  });

  it('the consumer\'s info (a walk of the stream on nats-server 2.9) is asked at most once per 1,000x its answer time', async () => {
    // nats-server 2.9 walks every subject of the stream to answer a filtered consumer's info (tens of ms with a large
    // backlog, holding the stream): with a stats interval of 20 ms the info must still come no more often than that rule
    const metrics = createMetrics('info-backoff-test');
    const own = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: bus.names.prefix }), name: 'backoff', log: silent, metrics });
    const durable = 'test-info-backoff';
    await ensureConsumer(own.jsm, workerConsumer({ stream: own.names.streams.events, durable, description: 'test', filterSubject: own.names.subjects.event('t', 'backoff.>') }));
    const asked: number[] = [];
    const spy = bus.nc.subscribe(`$JS.API.CONSUMER.INFO.${own.names.streams.events}.${durable}`, { callback: () => void asked.push(performance.now()) });
    await bus.nc.flush();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let handled = 0;
    const c = await own.consume<Envelope>({ stream: own.names.streams.events, durable, stage: 'test', decode: decodeEnvelope, concurrency: 1, statsIntervalMs: 20,
      handler: async () => {
        if (++handled === 1) await held;
        return done();
      } });
    try {
      for (let i = 0; i < 4; i++) {
        const env = createEnvelope({ type: 'backoff.x', entity: { type: 'e', id: `b${i}` }, version: 1, data: {} }, { source: 't' });
        await own.publishEnvelope(own.names.subjects.event('t', env.type), env);
      }
      const gauge = async () => Number((await metrics.registry.getSingleMetric('bus_consumer_pending')?.get())?.values.find((v) => v.labels.consumer === durable)?.value ?? -1);
      await waitFor(() => handled === 1, { what: 'the first message held' });
      release();
      await waitFor(async () => handled === 4 && (await gauge()) === 0, { what: 'all handled, nothing pending' });
      // the first two are consume()'s own at start (the consumer looked up, its max_deliver read), then the stats' ones
      await waitFor(() => asked.length >= 5, { what: 'three infos of the stats', timeoutMs: 20_000 });
      const stats = asked.slice(2);
      const gaps = stats.slice(1).map((t, i) => t - stats[i]!);
      assert.ok(gaps.every((g) => g >= 100), `infos ${gaps.map((g) => Math.round(g)).join(', ')} ms apart with a 20 ms interval: the 1,000x rule does not hold`);
    } finally {
      release();
      spy.unsubscribe();
      await c.stop();
      await own.close();
    }
  });

  it('stop() lets a handler in flight finish and acknowledges it before resolving', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = false;
    let finished = false;
    const t = await setUp(async () => {
      started = true;
      await gate;
      finished = true;
      return done();
    });
    await t.publish(1);
    await waitFor(() => started, { what: 'the handler to start' });
    const consumption = running.at(-1)!;
    const stopped = consumption.stop();
    release();
    await stopped;
    assert.equal(finished, true);
    await waitFor(async () => (await t.consumerInfo()).num_ack_pending === 0, { what: 'the ack' });
  });
  it('stop() sends the acknowledgements of the handlers it waited for before resolving: a connection closed next loses none', async () => {
    // acks go out batched per event-loop turn; stop() must not leave the last batch for a turn that comes after close()
    const own = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: bus.names.prefix }), name: 'stop-acks', log: silent });
    const durable = 'test-stop-acks';
    await ensureConsumer(own.jsm, workerConsumer({ stream: own.names.streams.events, durable, description: 'test', filterSubject: own.names.subjects.event('t', 'stopacks.>') }));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = 0;
    const c = await own.consume<Envelope>({ stream: own.names.streams.events, durable, stage: 'test', decode: decodeEnvelope, concurrency: 20,
      handler: async () => {
        started++;
        await gate;
        return done();
      } });
    for (let i = 0; i < 20; i++) {
      const env = createEnvelope({ type: 'stopacks.x', entity: { type: 'e', id: `a${i}` }, version: 1, data: {} }, { source: 't' });
      await own.publishEnvelope(own.names.subjects.event('t', env.type), env);
    }
    await waitFor(() => started === 20, { what: 'twenty handlers running' });
    const stopped = c.stop();
    release();
    await stopped;
    await own.nc.close(); // no drain: a drain's round trips would give a late ack batch time to leave
    // ack_wait is 30 s: an ack lost with the connection would keep these pending far longer than this wait
    await waitFor(async () => (await bus.jsm.consumers.info(bus.names.streams.events, durable)).num_ack_pending === 0, { what: 'all twenty acknowledged', timeoutMs: 3_000 });
    assert.equal((await bus.jsm.consumers.info(bus.names.streams.events, durable)).ack_floor.stream_seq > 0, true);
  });

  it('metrics: handled messages are counted by outcome and in-flight handlers show while they run', async () => {
    const metrics = createMetrics('count-test');
    const own = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: bus.names.prefix }), name: 'counts', log: silent, metrics });
    const durable = 'test-counts';
    await ensureConsumer(own.jsm, workerConsumer({ stream: own.names.streams.events, durable, description: 'test', filterSubject: own.names.subjects.event('t', 'counts.>') }));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const c = await own.consume<Envelope>({ stream: own.names.streams.events, durable, stage: 'test', decode: decodeEnvelope, concurrency: 4,
      handler: async (env) => {
        if (env.data.i === 0) await gate;
        return env.data.i === 1 ? retryAfter(60_000, 'later') : done();
      } });
    const value = async (name: string, labels: Record<string, string>) =>
      Number((await metrics.registry.getSingleMetric(name)?.get())?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0);
    try {
      for (let i = 0; i < 4; i++) {
        const env = createEnvelope({ type: 'counts.x', entity: { type: 'e', id: `n${i}` }, version: 1, data: { i } }, { source: 't' });
        await own.publishEnvelope(own.names.subjects.event('t', env.type), env);
      }
      await waitFor(async () => (await value('bus_consumed_total', { consumer: durable, outcome: 'done' })) === 2, { what: 'two done counted' });
      assert.equal(await value('bus_consumed_total', { consumer: durable, outcome: 'retry' }), 1);
      assert.equal(await value('bus_handler_in_flight', { consumer: durable }), 1);
      release();
      await waitFor(async () => (await value('bus_consumed_total', { consumer: durable, outcome: 'done' })) === 3, { what: 'the held one counted' });
      assert.equal(await value('bus_handler_in_flight', { consumer: durable }), 0);
      assert.match(await metrics.registry.metrics(), /bus_consumed_total\{consumer="test-counts",outcome="done",service="count-test"\} 3/);
    } finally {
      release();
      await c.stop();
      await own.close();
    }
  });
});

// its own server: the test restarts it
describe('consume: acknowledged leftovers of a work queue (leftovers.ts)', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats?.stop({ removeStore: true }));

  it('leftovers are looked for at start and, after a reconnect, with every info for a while — not with every info otherwise', async (t) => {
    if (!nats.canRestart) return t.skip('NATS_URL is set: the server cannot be restarted');
    const own = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: uniquePrefix() }), name: 'leftovers', log: silent });
    await own.applyTopology();
    const stream = own.names.streams.deliveries;
    const durable = 'test-leftovers';
    const filter = own.names.subjects.delivery('lo', '>');
    await ensureConsumer(own.jsm, workerConsumer({ stream, durable, description: 'test', filterSubject: filter }));
    // another connector's backlog in front: what a look from the start walks through on nats-server 2.9
    const subject = (c: string, id: string) => own.names.subjects.delivery(c, 'x', { type: 'x', id });
    for (let i = 0; i < 50; i++) await own.publish(subject('other', `o${i}`), new Uint8Array([1]), { msgId: `o${i}` });
    for (let i = 0; i < 5; i++) await own.publish(subject('lo', `l${i}`), new Uint8Array([1]), { msgId: `l${i}` });
    // on the consumer's own connection: its subscriptions are back before its first request after the reconnect
    const looks: number[] = []; // the sequence each look starts at
    let infos = 0;
    own.nc.subscribe(`$JS.API.STREAM.MSG.GET.${stream}`, { callback: (_e, m) => {
      const q = JSON.parse(m.string()) as { next_by_subj?: string; seq?: number };
      if (q.next_by_subj === filter && q.seq !== undefined) looks.push(q.seq);
    } });
    own.nc.subscribe(`$JS.API.CONSUMER.INFO.${stream}.${durable}`, { callback: () => void infos++ });
    await own.nc.flush();
    let handled = 0;
    const c = await own.consume<Uint8Array>({ stream, durable, stage: 'test', decode: (d) => d, concurrency: 1, statsIntervalMs: 20, handler: async () => {
      handled++;
      return done();
    } });
    const fromStart = () => looks.filter((s) => s === 1).length;
    try {
      await waitFor(() => handled === 5, { what: 'the consumer\'s 5 messages handled' });
      const infosThen = infos;
      await waitFor(() => infos >= infosThen + 6, { what: 'several infos of the stats', timeoutMs: 30_000 });
      assert.deepEqual(looks, [1], `looks started at ${looks.join(', ')}: one, from the start, over ${infos} infos`);
      await nats.restart(); // a server that may have lost removals: the connection reconnects
      const before = looks.length;
      await waitFor(() => fromStart() >= 2, { what: 'a look from the start after the reconnect', timeoutMs: 30_000 });
      const infosAfter = infos;
      await waitFor(() => infos >= infosAfter + 3, { what: 'more infos', timeoutMs: 30_000 });
      // removals lost in a crash can surface a while after the restart, below what the first look found clear
      assert.ok(looks.length - before >= 3 && looks.slice(before).every((s) => s === 1), `looks started at ${looks.join(', ')}: with every info, from the start, after the reconnect`);
    } finally {
      await c.stop();
      await own.close();
    }
  });
});
