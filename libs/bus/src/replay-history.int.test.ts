import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createEnvelope, decodeEnvelope, type Envelope } from '@bus/envelope';
import { attemptsMade } from '@bus/retry';
import { workerConsumer } from '@bus/streams';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import type { Bus } from './connect.js';
import type { HandlerContext } from './consume.js';
import { type DeadLetter, decodeDeadLetter, PRIOR_HISTORY_HEADER, priorHistoryHeader, REPLAYS_HEADER } from './dead-letter.js';
import { deadLetter, done, type Outcome, retryAfter } from './outcome.js';
import { readStream } from './read.js';
import { ensureConsumer } from './topology.js';
import { testBus } from './test-support.js';

describe('consume: a replayed message carries the history of its DLQ entry', () => {
  let nats: TestNats;
  let bus: Bus;
  const stops: (() => Promise<void>)[] = [];
  before(async () => {
    nats = await startNats();
    bus = await testBus(nats.url, uniquePrefix());
  });
  after(async () => {
    for (const s of stops) await s();
    await bus?.close();
    await nats?.stop({ removeStore: true });
  });

  async function consumer(connector: string, type: string, handler: (env: Envelope, ctx: HandlerContext) => Promise<Outcome>) {
    const durable = `test-${connector}`;
    await ensureConsumer(bus.jsm, workerConsumer({ stream: bus.names.streams.events, durable, description: 'test', filterSubject: bus.names.subjects.event('t', `${type}.>`) }));
    const c = await bus.consume<Envelope>({ stream: bus.names.streams.events, durable, stage: 'test', connector, decode: decodeEnvelope, handler, concurrency: 2 });
    stops.push(() => c.stop());
  }
  async function dlq(connector: string): Promise<{ seq: number; entry: DeadLetter }[]> {
    const out: { seq: number; entry: DeadLetter }[] = [];
    for await (const m of readStream(bus.jsm, bus.names.streams.dlq, { subject: (s) => s === bus.names.subjects.dlq('test', connector) })) {
      out.push({ seq: m.seq, entry: decodeDeadLetter(m.data) });
    }
    return out;
  }
  /** What `bus dlq replay` does (libs/cli replayOne, tested end to end in test/): the original back, with count and history. */
  async function replay(entry: DeadLetter) {
    const replays = entry.replays + 1;
    const msgId = `${entry.original.msgId}.replay${replays}`;
    await bus.publish(entry.original.subject, entry.original.data, { msgId, headers: {
      ...entry.original.headers, [REPLAYS_HEADER]: String(replays), [PRIOR_HISTORY_HEADER]: priorHistoryHeader(entry) } });
  }

  it('fails again → one new entry with the earlier attempts and the new ones numbered on; the handler saw a fresh round', async () => {
    const rounds: { history: number; prior: number | undefined }[] = [];
    // a policy of 3 attempts, counted the way deliver counts them: attemptsMade(history) + 1
    await consumer('crm', 'a', async (_env, ctx) => {
      const attempt = attemptsMade(ctx.history) + 1;
      if (attempt === 1) rounds.push({ history: ctx.history.length, prior: ctx.prior?.history.length });
      return attempt < 3 ? retryAfter(10, `503 (attempt ${attempt})`, { status: 503 }) : deadLetter('transient', 'EXHAUSTED', 'attempts exhausted after 3');
    });
    const env = createEnvelope({ type: 'a.x', entity: { type: 'e', id: '1' }, version: 1, data: {} }, { source: 't' });
    await bus.publishEnvelope(bus.names.subjects.event('t', env.type), env);
    const [first] = await waitFor(async () => ((await dlq('crm')).length === 1 ? dlq('crm') : undefined), { what: 'the first dead-letter' });
    assert.deepEqual(first!.entry.history.map((h) => h.attempt), [1, 2, 3]);

    await bus.jsm.streams.deleteMessage(bus.names.streams.dlq, first!.seq);
    await replay(first!.entry);
    const [second] = await waitFor(async () => ((await dlq('crm')).length === 1 ? dlq('crm') : undefined), { what: 'the replay dead-lettered again' });
    const e = second!.entry;
    assert.equal(e.replays, 1);
    assert.deepEqual(e.history.map((h) => h.attempt), [1, 2, 3, 4, 5, 6], 'earlier + new, numbered on');
    assert.deepEqual(e.history.slice(0, 3), first!.entry.history, 'the earlier records unchanged');
    assert.deepEqual(e.history.slice(3).map((h) => h.message), ['503 (attempt 1)', '503 (attempt 2)', 'attempts exhausted after 3']);
    assert.equal(e.attempts, first!.entry.attempts + 3);
    assert.equal(e.original.headers[PRIOR_HISTORY_HEADER], undefined, 'the history is in the entry, not twice in its headers');
    assert.deepEqual(decodeEnvelope(e.original.data), env);
    assert.deepEqual(rounds, [{ history: 0, prior: undefined }, { history: 0, prior: 3 }], 'the replay got a fresh set of attempts');
    await waitFor(async () => {
      const info = await bus.jsm.consumers.info(bus.names.streams.events, 'test-crm');
      return info.num_pending === 0 && info.num_ack_pending === 0;
    }, { what: 'nothing left in flight' });
    assert.equal((await dlq('crm')).length, 1, 'once, not looping');
  });

  it('a history over the bound keeps the newest 50 records and the total count', async () => {
    await consumer('erp', 'b', async () => deadLetter('business', 'NOPE', 'rejected'));
    const env = createEnvelope({ type: 'b.x', entity: { type: 'e', id: '2' }, version: 1, data: {} }, { source: 't' });
    await bus.publishEnvelope(bus.names.subjects.event('t', env.type), env);
    const [first] = await waitFor(async () => ((await dlq('erp')).length === 1 ? dlq('erp') : undefined), { what: 'the dead-letter' });
    const at = new Date().toISOString();
    const long = { ...first!.entry, attempts: 70, history: Array.from({ length: 50 }, (_, i) => ({ attempt: 21 + i, failureClass: 'transient' as const, at })) };
    await bus.jsm.streams.deleteMessage(bus.names.streams.dlq, first!.seq);
    await replay(long);
    const [second] = await waitFor(async () => ((await dlq('erp')).length === 1 ? dlq('erp') : undefined), { what: 'the replay dead-lettered again' });
    assert.equal(second!.entry.history.length, 50);
    assert.equal(second!.entry.history.at(-1)!.attempt, 71);
    assert.equal(second!.entry.history[0]!.attempt, 22);
  });

  it('another consumer of the same replayed message does not take on its history', async () => {
    let seen: HandlerContext['prior'] | 'unset' = 'unset';
    await consumer('other', 'c', async (_env, ctx) => {
      seen = ctx.prior;
      return done();
    });
    const env = createEnvelope({ type: 'c.x', entity: { type: 'e', id: '3' }, version: 1, data: {} }, { source: 't' });
    const fake: DeadLetter = {
      id: 'x', stage: 'test', connector: 'crm', failureClass: 'business', code: 'NOPE', reason: 'r', attempts: 1,
      history: [{ attempt: 1, failureClass: 'business', at: new Date().toISOString() }], deadLetteredAt: new Date().toISOString(), replays: 0,
      original: { stream: bus.names.streams.events, seq: 1, subject: bus.names.subjects.event('t', env.type), msgId: env.id, headers: {}, data: new Uint8Array() },
    };
    await bus.publishEnvelope(bus.names.subjects.event('t', env.type), env, { msgId: `${env.id}.replay1`, headers: { [PRIOR_HISTORY_HEADER]: priorHistoryHeader(fake) } });
    await waitFor(() => seen !== 'unset', { what: 'the message handled' });
    assert.equal(seen, undefined);
  });
});
