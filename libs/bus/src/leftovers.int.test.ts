import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNats, type TestNats, waitFor } from '@bus/testkit';
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager, type MsgRequest, RetentionPolicy } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { removeAcknowledgedLeftovers } from './leftovers.js';

async function storedSeqs(jsm: JetStreamManager, stream: string, filter: string): Promise<number[]> {
  const seqs: number[] = [];
  for (let seq = 1; ; ) {
    const m = await jsm.streams.getMessage(stream, { next_by_subj: filter, seq } as unknown as MsgRequest);
    if (!m) return seqs;
    seqs.push(m.seq);
    seq = m.seq + 1;
  }
}

// A work queue whose server is SIGKILLed right after a burst of acks can keep some of those
// messages: acknowledged, counted by no consumer, stored for ever. Seen in the conformance
// suite's nats-restart scenario (19 and 77 of ~1,000 in one run).
describe('acknowledged leftovers in a work queue', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop({ removeStore: true }));

  async function setUp(stream: string, n: number) {
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`], retention: RetentionPolicy.Workqueue });
    await jsm.consumers.add(stream, { durable_name: 'worker', ack_policy: AckPolicy.Explicit, filter_subject: `${stream.toLowerCase()}.>` });
    const js = jetstream(nc);
    for (let i = 0; i < n; i++) await js.publish(`${stream.toLowerCase()}.${i}`, new Uint8Array([1]));
    const batch = await (await js.consumers.get(stream, 'worker')).fetch({ max_messages: n, expires: 5_000 });
    return { nc, jsm, batch };
  }

  it('a message still in flight, above the ack floor, is never removed', async () => {
    const { nc, jsm, batch } = await setUp('INFLIGHT', 3);
    for await (const m of batch) if (m.seq !== 2) m.ack(); // 2 stays in flight
    await nc.flush();
    const info = await waitFor(async () => {
      const i = await jsm.consumers.info('INFLIGHT', 'worker');
      return i.num_ack_pending === 1 ? i : undefined;
    }, { what: 'two acks recorded' });
    assert.equal(await removeAcknowledgedLeftovers(jsm, 'INFLIGHT', info), 0);
    assert.deepEqual(await storedSeqs(jsm, 'INFLIGHT', 'inflight.>'), [2]);
    await nc.close();
  });

  it('after a SIGKILL right after a burst of acks: what the server kept is found and removed', async (t) => {
    if (!nats.canRestart) return t.skip('NATS_URL is set: the server cannot be killed');
    const found: number[] = [];
    for (let round = 0; round < 5 && !found.some((n) => n > 0); round++) {
      const stream = `CRASH${round}`;
      const { nc, jsm: before, batch } = await setUp(stream, 500);
      for await (const m of batch) m.ack();
      await waitFor(async () => (await before.consumers.info(stream, 'worker')).ack_floor.stream_seq === 500, { what: 'the acks recorded' });
      await nats.kill(); // right after the acks: some removals may not reach the disk
      await nats.start();
      await nc.close().catch(() => undefined);
      const again = await connect({ servers: nats.url });
      const jsm = await jetstreamManager(again);
      const info = await waitFor(() => jsm.consumers.info(stream, 'worker').catch(() => undefined), { what: 'the consumer after the restart' });
      // stored at or below what the consumer has delivered and nothing in flight: acknowledged, yet kept
      const bound = info.num_ack_pending === 0 ? info.delivered.stream_seq : info.ack_floor.stream_seq;
      const stored = await storedSeqs(jsm, stream, `${stream.toLowerCase()}.>`);
      const leftovers = stored.filter((s) => s <= bound);
      found.push(leftovers.length);
      assert.equal(await removeAcknowledgedLeftovers(jsm, stream, info), leftovers.length);
      const remaining = await storedSeqs(jsm, stream, `${stream.toLowerCase()}.>`);
      assert.deepEqual(remaining, stored.filter((s) => s > bound), 'only the acknowledged ones removed');
      assert.ok(info.num_pending + info.num_ack_pending >= remaining.length, 'what remains is counted by the consumer: it will be delivered');
      await again.close();
    }
    t.diagnostic(`leftovers after each crash: ${found.join(', ')}`);
  });
});
