import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { JetStreamApiError } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { headers as natsHeaders, NoRespondersError, TimeoutError } from '@nats-io/nats-core';
import { startNats, type TestNats, uniquePrefix } from '@bus/testkit';
import type { Bus } from './connect.js';
import { encodedHeaders, jsPublisher } from './js-ack.js';
import { testBus } from './test-support.js';

/** What @bus/lease's isCasConflict tests (that package depends on this one). */
const isCasConflict = (err: unknown) => err instanceof JetStreamApiError && (err.code === 10071 || err.code === 10164);

describe('JetStream publishes and KV calls on one reply subscription (js-ack.ts, kv-calls.ts)', () => {
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

  it('headers are the bytes nats.js writes for the same keys and values; bad names and values are refused', () => {
    const theirs = natsHeaders();
    theirs.set('Nats-Msg-Id', 'a-1');
    theirs.set('Bus-Correlation-Id', '  c 1 ');
    const bytes = (h: unknown) => Buffer.from((h as { encode(): Uint8Array }).encode()); // what nats-core publishes
    assert.deepEqual(bytes(encodedHeaders({ 'Nats-Msg-Id': 'a-1', 'Bus-Correlation-Id': '  c 1 ', Empty: '', Missing: undefined })), bytes(theirs));
    assert.throws(() => encodedHeaders({ 'Bad:Name': 'x' }), /not a valid NATS header name/);
    assert.throws(() => encodedHeaders({ 'Bus-X': 'a\r\nInjected: 1' }), /cannot contain/);
  });

  it('a publish resolves with its acknowledgement, a duplicate says so, a failed expectation is the server\'s error', async () => {
    const publish = jsPublisher(bus.nc);
    const subject = bus.names.subjects.event('shop', 'ack.test');
    const first = await publish(subject, 'one', encodedHeaders({ 'Nats-Msg-Id': 'ack-1' }), 2_000);
    assert.equal(first.stream, bus.names.streams.events);
    assert.equal(first.duplicate, false);
    const again = await publish(subject, 'one', encodedHeaders({ 'Nats-Msg-Id': 'ack-1' }), 2_000);
    assert.deepEqual(again, { ...first, duplicate: true });
    await assert.rejects(() => publish(subject, 'two', encodedHeaders({ 'Nats-Expected-Last-Sequence': String(first.seq + 100) }), 2_000),
      (err: unknown) => err instanceof JetStreamApiError && err.code === 10071);
  });

  it('no stream for the subject is NoRespondersError; a silent responder is TimeoutError within the timeout (+0.1 s)', async () => {
    const publish = jsPublisher(bus.nc);
    await assert.rejects(() => publish(`nostream.${uniquePrefix()}`, 'x', undefined, 2_000), NoRespondersError);
    const silentSubject = `silent.${uniquePrefix()}`;
    const sub = bus.nc.subscribe(silentSubject, { callback: () => {} });
    try {
      const started = performance.now();
      await assert.rejects(() => publish(silentSubject, 'x', undefined, 300), TimeoutError);
      const took = performance.now() - started;
      assert.ok(took >= 300 && took < 1_000, `timed out after ${Math.round(took)} ms`);
    } finally {
      sub.unsubscribe();
    }
  });

  it('KV: entries read as nats.js reads them; absent is null; create over a delete marker; a stale update is a CAS conflict', async () => {
    const name = `t${uniquePrefix()}`;
    const theirs = await new Kvm(bus.js).create(name, { history: 2 });
    const ours = await bus.kv(name);
    assert.equal(await ours.get('absent.key'), null);
    const rev = await ours.create('c.one', JSON.stringify({ applied: 1 }));
    const [a, b] = [await ours.get('c.one'), await theirs.get('c.one')];
    for (const f of ['bucket', 'key', 'revision', 'operation', 'length', 'delta'] as const) assert.deepEqual(a?.[f], b?.[f], f);
    assert.equal(a?.created.getTime(), b?.created.getTime());
    assert.deepEqual(a?.json(), { applied: 1 });
    assert.equal(a?.string(), b?.string());
    await assert.rejects(() => ours.create('c.one', 'again'), (err: unknown) => isCasConflict(err));
    await assert.rejects(() => ours.update('c.one', 'stale', rev + 5), (err: unknown) => isCasConflict(err));
    const next = await ours.update('c.one', JSON.stringify({ applied: 2 }), rev);
    assert.equal((await theirs.get('c.one'))?.revision, next);
    await theirs.delete('c.one');
    assert.equal((await ours.get('c.one'))?.operation, 'DEL');
    const created = await ours.create('c.one', 'back'); // over the delete marker, as nats.js's create
    assert.equal((await theirs.get('c.one'))?.revision, created);
    await theirs.purge('c.one');
    assert.equal((await ours.get('c.one'))?.operation, 'PURGE');
    await ours.put('c.two', 'plain');
    assert.equal((await theirs.get('c.two'))?.string(), 'plain');
    await theirs.destroy();
  });
});
