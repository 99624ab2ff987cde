import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bus } from '@bus/bus';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { addWorkerConsumer, numbered, numbersIn, release, startWorker, testBus } from './support.js';

describe('faults: server restarts and killed workers', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop({ removeStore: true }));

  it('a nats-server restart in the middle of a publish loop loses no message whose PubAck was received', async (t) => {
    if (!nats.canRestart) return t.skip('NATS_URL is set: the server cannot be restarted');
    const prefix = uniquePrefix();
    const bus: Bus = await testBus(nats.url, prefix);
    const acked = new Set<number>();
    let failures = 0;
    const total = 1_500;
    const subject = bus.names.subjects.event('test', 'item.created');
    let restarted: Promise<void> | undefined;
    try {
      for (let n = 0; n < total; n++) {
        if (n === 300) restarted = nats.restart();
        // a real producer: retry the same id until it is acknowledged (the id dedups a lost ack)
        for (;;) {
          try {
            await bus.publishEnvelope(subject, numbered(n));
            acked.add(n);
            break;
          } catch {
            failures++;
            await waitFor(() => bus.nc.isClosed() === false, { what: 'the client' });
          }
        }
      }
      await restarted;
      assert.ok(failures > 0, 'the restart interrupted some publishes');
      const info = await bus.jsm.streams.info(bus.names.streams.events);
      assert.equal(acked.size, total);
      assert.equal(info.state.messages, total, 'every acknowledged message is stored, none twice');
    } finally {
      await bus.close();
    }
  });

  it('a consumer killed with SIGKILL mid-batch: its unacknowledged messages go to another consumer', async () => {
    const prefix = uniquePrefix();
    const bus = await testBus(nats.url, prefix);
    try {
      await addWorkerConsumer(bus, 'killme', 2);
      for (let n = 0; n < 20; n++) await bus.publishEnvelope(bus.names.subjects.event('test', 'item.created'), numbered(n));
      const first = startWorker(nats.url, prefix, 'killme', false);
      await first.waitForOutput(/consuming/, 'the first worker');
      await waitFor(() => numbersIn(first.output(), 'got').length === 4, { what: 'four messages in hand' });
      await release(bus); // those four finish; it takes the next four and holds them
      await waitFor(() => numbersIn(first.output(), 'done').length === 4 && numbersIn(first.output(), 'got').length === 8, { what: 'four done, four more in hand' });
      first.kill('SIGKILL');
      await first.exited;
      const unfinished = numbersIn(first.output(), 'got').filter((n) => !numbersIn(first.output(), 'done').includes(n));
      assert.equal(unfinished.length, 4, 'the first worker was killed with four messages in hand');

      const second = startWorker(nats.url, prefix, 'killme', true);
      try {
        await waitFor(async () => {
          const info = await bus.jsm.consumers.info(bus.names.streams.events, 'killme');
          return info.num_pending === 0 && info.num_ack_pending === 0;
        }, { what: 'every message acknowledged', timeoutMs: 20_000 });
        const handledBySecond = numbersIn(second.output(), 'done');
        for (const n of unfinished) assert.ok(handledBySecond.includes(n), `message ${n} was redelivered to the second worker`);
        const all = new Set([...numbersIn(first.output(), 'done'), ...handledBySecond]);
        assert.equal(all.size, 20);
      } finally {
        second.kill('SIGKILL');
      }
    } finally {
      await bus.close();
    }
  });

  it('SIGTERM drains: the message in hand is finished and acknowledged, then the process exits 0', async () => {
    const prefix = uniquePrefix();
    const bus = await testBus(nats.url, prefix);
    try {
      await addWorkerConsumer(bus, 'drainme', 30);
      await bus.publishEnvelope(bus.names.subjects.event('test', 'item.created'), numbered(1));
      const worker = startWorker(nats.url, prefix, 'drainme', false);
      await worker.waitForOutput(/^got 1$/m, 'the worker to take the message');
      worker.kill('SIGTERM');
      await worker.waitForOutput(/stopping: draining/, 'the worker to start draining');
      assert.doesNotMatch(worker.output(), /^done 1$/m, 'still in hand while draining');
      await release(bus);
      const exit = await worker.exited;
      assert.deepEqual(exit, { code: 0, signal: null }, worker.output());
      assert.match(worker.output(), /^done 1$/m);
      const info = await bus.jsm.consumers.info(bus.names.streams.events, 'drainme');
      assert.equal(info.num_ack_pending, 0);
      assert.equal(info.num_redelivered, 0);
    } finally {
      await bus.close();
    }
  });
});
