import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { JetStreamApiError } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
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

  it('KV reads: a direct get on a one-replica bucket, the same entry as a leader read; the leader when the bucket or the bus says more replicas or no direct gets', async () => {
    const count = (subject: string) => {
      const seen = { n: 0 };
      const sub = bus.nc.subscribe(subject, { callback: () => void seen.n++ });
      return { seen, sub };
    };
    const direct = count('$JS.API.DIRECT.GET.>');
    const leader = count('$JS.API.STREAM.MSG.GET.>');
    const name = `d${uniquePrefix()}`;
    await bus.applyTopology({ streams: [], consumers: [], kv: [{ bucket: name, description: 'direct reads', history: 1, ttlSec: 0, replicas: 1, storage: 'file' }] });
    const ours = await bus.kv(name);
    const leaderRead = await new Kvm(bus.js).open(name, { allow_direct: false });
    const same = async (key: string) => {
      const [a, b] = [await ours.get(key), await leaderRead.get(key)];
      if (b === null) return assert.equal(a, null, key);
      for (const f of ['bucket', 'key', 'revision', 'operation', 'length', 'delta'] as const) assert.deepEqual(a?.[f], b[f], `${key}: ${f}`);
      assert.equal(a?.created.getTime(), b.created.getTime(), `${key}: created`);
      assert.equal(a?.string(), b.string(), `${key}: value`);
    };
    await ours.create('k.put', JSON.stringify({ applied: 3 }));
    await ours.put('k.del', 'x');
    await leaderRead.delete('k.del');
    await ours.put('k.purge', 'x');
    await leaderRead.purge('k.purge');
    await bus.nc.flush();
    const before = { direct: direct.seen.n, leader: leader.seen.n };
    for (const key of ['k.put', 'k.del', 'k.purge', 'k.absent']) await same(key);
    await bus.nc.flush();
    assert.deepEqual([direct.seen.n - before.direct, leader.seen.n - before.leader], [4, 4], 'ours direct, nats.js\'s bound bucket from the leader');
    assert.deepEqual((await ours.get('k.put'))?.json(), { applied: 3 });

    // a bucket that allows no direct gets, and a bus configured for three replicas: leader reads, as before
    const noDirect = `n${uniquePrefix()}`;
    await bus.jsm.streams.add({ name: `KV_${noDirect}`, subjects: [`$KV.${noDirect}.>`], allow_rollup_hdrs: true, allow_direct: false, max_msgs_per_subject: 1 });
    const replicated = await testBus(nats.url, uniquePrefix(), { BUS_REPLICAS: '3' }).catch(() => undefined);
    try {
      const cases: [KV, string][] = [[await bus.kv(noDirect), 'allow_direct off'], ...(replicated ? [[await replicated.kv(name), 'BUS_REPLICAS 3'] as [KV, string]] : [])];
      for (const [kv, what] of cases) {
        await kv.put('k', 'v');
        await bus.nc.flush();
        const was = { direct: direct.seen.n, leader: leader.seen.n };
        assert.equal((await kv.get('k'))?.string(), 'v', what);
        await bus.nc.flush();
        assert.deepEqual([direct.seen.n - was.direct, leader.seen.n - was.leader], [0, 1], what);
      }
    } finally {
      await replicated?.close();
    }
    assert.ok(replicated, 'a bus configured for three replicas connects to a single server (its topology is not applied here)');
    // a bucket that is gone: nats-server leaves its direct get unanswered; the leader read after a second says so
    await bus.jsm.streams.delete(`KV_${name}`);
    const started = performance.now();
    await assert.rejects(ours.get('k.put'), (err: unknown) => err instanceof JetStreamApiError && err.code === 10059);
    const tookMs = performance.now() - started;
    assert.ok(tookMs >= 900 && tookMs < 2_500, `"stream not found" after ${Math.round(tookMs)} ms, not a 5 s timeout`);
    direct.sub.unsubscribe();
    leader.sub.unsubscribe();
  });
});
