import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNats, type TestNats, uniquePrefix } from '@bus/testkit';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import type { Bus } from './connect.js';
import { classifyNatsError } from './nats-errors.js';
import { testBus } from './test-support.js';

/** What the client really throws, caught: each case provokes it against a real server. */
async function thrown(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

describe('classifyNatsError: what @nats-io v3 throws against a real nats-server', () => {
  let nats: TestNats;
  let bus: Bus;
  before(async () => {
    nats = await startNats();
    bus = await testBus(nats.url, uniquePrefix());
  });
  after(async () => {
    await bus?.close();
    await nats?.stop({ removeStore: true });
  });

  it('a request nobody subscribes to → NATS_UNAVAILABLE, transient, naming the subject', async () => {
    const err = await thrown(bus.nc.request(`${bus.names.prefix}nobody`, '', { timeout: 1_000 }));
    const c = classifyNatsError(err)!;
    assert.equal(c.code, 'NATS_UNAVAILABLE');
    assert.equal(c.failureClass, 'transient');
    assert.match(c.message, /nobody/);
    assert.equal(c.cause, err);
  });

  it('a request nobody answers → NATS_TIMEOUT, transient', async () => {
    const subject = `${bus.names.prefix}mute`;
    const sub = bus.nc.subscribe(subject, { callback: () => undefined });
    try {
      const c = classifyNatsError(await thrown(bus.nc.request(subject, '', { timeout: 100 })))!;
      assert.deepEqual([c.code, c.failureClass], ['NATS_TIMEOUT', 'transient']);
    } finally {
      sub.unsubscribe();
    }
  });

  it('a KV read or write on a deleted bucket: the read → NATS_STREAM_NOT_FOUND (permanent, says `bus streams apply`); the write → transient, naming the bucket', async () => {
    const bucket = `${bus.names.prefix}deleted`;
    await new Kvm(bus.js).create(bucket);
    const kv = await bus.kv(bucket);
    await bus.jsm.streams.delete(`KV_${bucket}`);
    const read = classifyNatsError(await thrown(kv.get('k')))!;
    assert.deepEqual([read.code, read.failureClass], ['NATS_STREAM_NOT_FOUND', 'permanent']);
    assert.match(read.message, /bus streams apply/);
    assert.match(classifyNatsError(await thrown(kv.get('k')), `KV bucket ${bucket}`)!.message, new RegExp(`KV bucket ${bucket}`));
    // nothing answers on $KV.<bucket>.k: missing, or leaderless for a moment — the two cannot be told apart
    const write = classifyNatsError(await thrown(kv.put('k', 'v')))!;
    assert.deepEqual([write.code, write.failureClass], ['NATS_UNAVAILABLE', 'transient']);
    assert.match(write.message, new RegExp(`KV bucket ${bucket}.*bus streams apply`));
  });

  it('a missing stream or consumer → permanent; a compare-and-set lost to another writer → NATS_CONFLICT, transient', async () => {
    assert.equal(classifyNatsError(await thrown(bus.jsm.streams.info(`${bus.names.prefix}NOPE`)))!.code, 'NATS_STREAM_NOT_FOUND');
    const consumer = classifyNatsError(await thrown(bus.jsm.consumers.info(bus.names.streams.events, 'nope')))!;
    assert.deepEqual([consumer.code, consumer.failureClass], ['NATS_CONSUMER_NOT_FOUND', 'permanent']);
    const kv = await bus.kv(bus.names.kv.attempts);
    const rev = await kv.put(`${bus.names.prefix}cas`, '1');
    await kv.put(`${bus.names.prefix}cas`, '2');
    const conflict = classifyNatsError(await thrown(kv.update(`${bus.names.prefix}cas`, '3', rev)))!;
    assert.deepEqual([conflict.code, conflict.failureClass], ['NATS_CONFLICT', 'transient']);
  });

  it('the server stopped mid-request or down → NATS_TIMEOUT; the connection closed → NATS_DISCONNECTED; all transient', async () => {
    const own = await startNats();
    const nc = await connect({ servers: own.url, noAsyncTraces: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    try {
      const kv = await new Kvm(jetstream(nc, { timeout: 1_000 })).create('k');
      nc.subscribe('mute', { callback: () => undefined });
      await nc.flush();
      const inFlight = thrown(nc.request('mute', '', { timeout: 1_500 })); // sent, unanswered, when the server goes
      await own.stop();
      const mid = classifyNatsError(await inFlight)!;
      assert.deepEqual([mid.code, mid.failureClass], ['NATS_TIMEOUT', 'transient']);
      const down = classifyNatsError(await thrown(kv.get('a')))!;
      assert.deepEqual([down.code, down.failureClass], ['NATS_TIMEOUT', 'transient']);
      await own.start();
      await nc.close();
      const closed = classifyNatsError(await thrown(kv.get('a')))!;
      assert.deepEqual([closed.code, closed.failureClass], ['NATS_DISCONNECTED', 'transient']);
    } finally {
      await nc.close().catch(() => undefined);
      await own.stop({ removeStore: true });
    }
  });

  it('a server without JetStream → NATS_UNAVAILABLE, transient', async () => {
    const plain = await startNats({ jetstream: false });
    const nc = await connect({ servers: plain.url, noAsyncTraces: true });
    try {
      const c = classifyNatsError(await thrown(jetstreamManager(nc)))!;
      assert.deepEqual([c.code, c.failureClass], ['NATS_UNAVAILABLE', 'transient']);
    } finally {
      await nc.close();
      await plain.stop({ removeStore: true });
    }
  });
});
