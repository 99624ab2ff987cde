import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bus } from '@bus/bus';
import { startNats, type TestNats } from '@bus/testkit';
import { applyRecord, EntryCache } from './apply.js';
import { type CasBatch, casBatchWriter, casWriter } from './cas.js';
import { createGeneration } from './generations.js';
import { type ApplyOutcome, decide, type ProjectedEntity, projectionKey, recordOf } from './record.js';
import { busOn, dropAll, envelope } from './test-support.js';
import { createWriter } from './writer.js';

const rec = (id: string, version: number, seq: number, eventId?: string): ProjectedEntity =>
  recordOf(envelope({ source: 'crm', type: 'contact', id, version, data: { version, seq }, eventId }), seq);
const keyOf = (id: string) => projectionKey('crm', 'contact', id);

describe('projection: the coalescing writer', () => {
  let nats: TestNats;
  let bus: Bus;
  let generation = 0;
  before(async () => {
    nats = await startNats();
    bus = await busOn(nats.url);
  });
  after(async () => {
    await dropAll(bus);
    await bus.close();
    await nats.stop({ removeStore: true });
  });

  /** A fresh bucket and a writer on it (counting conflicts). */
  async function fresh(maxInFlight?: number) {
    const bucket = await createGeneration(bus, ++generation);
    const kv = await bus.kv(bucket);
    const conflicts = { n: 0 };
    const writer = createWriter(kv, { cache: new EntryCache(), cas: casWriter(bus.nc, bucket), maxInFlight, onConflict: () => void conflicts.n++ });
    const entry = async (id: string) => {
      const e = await kv.get(keyOf(id));
      return e?.operation === 'PUT' ? e.json<ProjectedEntity>() : undefined;
    };
    return { bucket, kv, writer, conflicts, entry };
  }

  /** A fresh bucket and a writer on it that writes in chains (a rebuild before its switch), counting chains sent and broken. */
  async function freshBatched(cache = new EntryCache()) {
    const bucket = await createGeneration(bus, ++generation);
    const kv = await bus.kv(bucket);
    const chains = { sent: 0, broken: 0 };
    const send = casBatchWriter(bus.nc, bucket);
    const batch: CasBatch = (writes) => {
      chains.sent++;
      return send(writes).catch((err: unknown) => {
        chains.broken++;
        throw err;
      });
    };
    const writer = createWriter(kv, { cache, cas: casWriter(bus.nc, bucket), batch });
    const entry = async (id: string) => {
      const e = await kv.get(keyOf(id));
      return e?.operation === 'PUT' ? e.json<ProjectedEntity>() : undefined;
    };
    return { bucket, kv, writer, chains, entry };
  }

  it('folds an entity\'s records of one batch into one write: versions out of order, the same event twice, two events on one version', async () => {
    const { writer, entry } = await fresh();
    const batch: ProjectedEntity[] = [];
    let seq = 0;
    for (let e = 0; e < 20; e++) {
      for (const v of [3, 1, 5, 2, 5, 4]) batch.push(rec(`c${e}`, v, ++seq)); // 5 twice: two events on one version, the first stored wins
      batch.push({ ...batch.at(-3)! }); // the same event (v2) delivered twice
    }
    const outcomes = await Promise.all(batch.map((r) => writer.submit(keyOf(r.entity.id), r)));
    assert.equal(writer.stats().writes, 20, 'one write per entity');
    assert.equal(writer.stats().records, batch.length);
    for (let e = 0; e < 20; e++) {
      const mine = batch.filter((r) => r.entity.id === `c${e}`);
      const winner = mine.reduce((best, r) => (decide(best, r).replace ? r : best));
      const got = await entry(`c${e}`);
      assert.deepEqual([got?.version, got?.seq, got?.eventId], [5, winner.seq, winner.eventId], `c${e} holds the first stored v5`);
    }
    // what applying them one at a time in arrival order says: 3 and the first 5 applied; 1, 2, 4 and the second 2 stale; the second 5 a duplicate
    const count = (o: ApplyOutcome) => outcomes.filter((x) => x === o).length;
    assert.deepEqual([count('applied'), count('stale'), count('duplicate')], [20 * 2, 20 * 4, 20]);
  });

  it('an entity\'s record arriving while its write is on the way waits for it: an older one is then stale without a write, a newer one written next', async () => {
    const { writer, entry } = await fresh();
    const first = writer.submit(keyOf('a'), rec('a', 2, 1));
    await new Promise((r) => setImmediate(r)); // the first write has left
    const older = writer.submit(keyOf('a'), rec('a', 1, 2));
    const newer = writer.submit(keyOf('a'), rec('a', 3, 3));
    assert.deepEqual(await Promise.all([first, older, newer]), ['applied', 'stale', 'applied']);
    assert.equal(writer.stats().writes, 2);
    assert.equal((await entry('a'))?.version, 3);
  });

  it('keeps compare-and-set fencing: another writer\'s newer entry is never overwritten by an older record, whatever this writer remembers', async () => {
    const { kv, writer, conflicts, entry, bucket } = await fresh();
    assert.equal(await writer.submit(keyOf('b'), rec('b', 1, 1)), 'applied'); // remembered at its revision
    await applyRecord(kv, keyOf('b'), rec('b', 5, 2), { cas: casWriter(bus.nc, bucket) }); // another writer (no cache: reads first)
    assert.equal(await writer.submit(keyOf('b'), rec('b', 3, 3)), 'stale', 'the write on the remembered revision lost; read again, it is older');
    assert.equal(conflicts.n, 0, 'a remembered revision that moved on is a wrong guess, not counted as a conflict (as applyRecord)');
    assert.equal((await entry('b'))?.version, 5);
    assert.equal(await writer.submit(keyOf('b'), rec('b', 6, 4)), 'applied');
    assert.equal((await entry('b'))?.version, 6);
  });

  it('an entry deleted or purged by hand is written again by its next version (the remembered revision is stale: read, then written on the marker\'s)', async () => {
    const { kv, writer, entry } = await fresh();
    await writer.submit(keyOf('d'), rec('d', 3, 1));
    await writer.submit(keyOf('p'), rec('p', 3, 2));
    await kv.delete(keyOf('d'));
    await kv.purge(keyOf('p'));
    // an older one is stale against what this writer remembers, as with applyRecord and its cache: a hand delete is repaired by a rebuild
    assert.deepEqual(await Promise.all([writer.submit(keyOf('d'), rec('d', 2, 3)), writer.submit(keyOf('d'), rec('d', 4, 4)), writer.submit(keyOf('p'), rec('p', 4, 5))]),
      ['stale', 'applied', 'applied']);
    assert.deepEqual([(await entry('d'))?.version, (await entry('p'))?.version], [4, 4]);
    assert.equal(writer.stats().writes, 2 + 2 * 2, 'each: a write on the remembered revision (lost), then one on the marker\'s');
  });

  it('a write that fails rejects every record folded into it, and nothing is remembered as written', async () => {
    const { writer, bucket, entry } = await fresh();
    await writer.submit(keyOf('x'), rec('x', 1, 1));
    await bus.jsm.streams.delete(`KV_${bucket}`);
    const folded = [writer.submit(keyOf('x'), rec('x', 2, 2)), writer.submit(keyOf('x'), rec('x', 3, 3))];
    for (const p of folded) await assert.rejects(p, /no responders/);
    await createGeneration(bus, generation); // the bucket again, empty
    assert.equal(await writer.submit(keyOf('x'), rec('x', 2, 4)), 'applied', 'written into the new bucket (read again after the conflict)');
    assert.equal((await entry('x'))?.version, 2);
  });

  it('with few writes in flight at once, every record is still answered and every entity ends at its highest version', async () => {
    const { writer, entry } = await fresh(3);
    // entity j gets version 1 + j % 2 and then 1 + (j + 25) % 2: one of each, in either order
    const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => writer.submit(keyOf(`m${i % 25}`), rec(`m${i % 25}`, 1 + (i % 2), i + 1))));
    assert.equal(outcomes.length, 50);
    for (let j = 0; j < 25; j++) assert.equal((await entry(`m${j}`))?.version, 2);
  });

  /** A writer with its own cache (a process that starts) on `bucket`, counting its reads. */
  async function writerOn(bucket: string, cache = new EntryCache()) {
    const kv = await bus.kv(bucket);
    const reads = { n: 0 };
    const get = (k: string) => {
      reads.n++;
      return kv.get(k);
    };
    const counted = new Proxy(kv, { get: (t, p) => (p === 'get' ? get : Reflect.get(t, p)) });
    return { writer: createWriter(counted, { cache, cas: casWriter(bus.nc, bucket) }), reads };
  }
  /** In groups of 10 one after the other, as pull batches come (a group's guesses all leave before any is answered). */
  const applyAll = async (writer: ReturnType<typeof createWriter>, ids: string[], version: number, seq0: number) => {
    const out: ApplyOutcome[] = [];
    for (let i = 0; i < ids.length; i += 10) out.push(...(await Promise.all(ids.slice(i, i + 10).map((id, j) => writer.submit(keyOf(id), rec(id, version, seq0 + i + j))))));
    return out;
  };
  const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

  it('a writer starting on a bucket whose entries exist (a restarted projector) reads first after a few wrong guesses, instead of a refused create per key', async () => {
    const { bucket, writer: first, entry } = await fresh();
    await applyAll(first, ids('r', 200), 1, 1);
    const { writer, reads } = await writerOn(bucket);
    assert.deepEqual(new Set(await applyAll(writer, ids('r', 200), 2, 1_000)), new Set(['applied']));
    const wrongGuesses = writer.stats().writes - 200;
    assert.ok(wrongGuesses >= 1 && wrongGuesses <= 30, `${wrongGuesses} creates refused (every key a wrong guess without learning: 200)`);
    assert.equal(reads.n, 200, 'each key read once: after its refused create, or before its only write');
    for (const id of ['r0', 'r99', 'r199']) assert.equal((await entry(id))?.version, 2);
    // new entities again (a burst of sign-ups): it learns from the reads that found nothing and guesses again
    const before = { writes: writer.stats().writes, reads: reads.n };
    await applyAll(writer, ids('n', 200), 1, 2_000);
    assert.equal(writer.stats().writes - before.writes, 200, 'one write each, none refused');
    const readsNew = reads.n - before.reads;
    assert.ok(readsNew >= 1 && readsNew <= 30, `${readsNew} new keys read before it guessed again (200 without learning)`);
  });

  it('a fresh bucket: every key a create, no read; a key the cache let go of is read first, not tried as new', async () => {
    const { bucket } = await fresh();
    const { writer, reads } = await writerOn(bucket, new EntryCache(10));
    await applyAll(writer, ids('f', 100), 1, 1);
    assert.deepEqual([writer.stats().writes, reads.n], [100, 0]);
    assert.deepEqual(new Set(await applyAll(writer, ids('f', 90), 2, 200)), new Set(['applied']), 'the 90 evicted ones');
    assert.deepEqual([writer.stats().writes, reads.n], [190, 90], 'each read once and written once: no create refused');
    // reads of keys it let go of (they exist) say nothing of keys it never had: new ones among them are still created unread
    const mixed = ids('f', 40).flatMap((id, i) => [id, `g${i}`]);
    await applyAll(writer, mixed, 3, 400);
    assert.deepEqual([writer.stats().writes, reads.n], [270, 130], '40 evicted: read and written; 40 new: written only');
  });

  it('in chains: the same outcomes and entries as key by key, one chain per flush, and the revisions it remembers are right', async () => {
    const { writer, chains, entry } = await freshBatched();
    const batch: ProjectedEntity[] = [];
    let seq = 0;
    for (let e = 0; e < 20; e++) for (const v of [3, 1, 5, 2, 5, 4]) batch.push(rec(`c${e}`, v, ++seq));
    const outcomes = await Promise.all(batch.map((r) => writer.submit(keyOf(r.entity.id), r)));
    const count = (o: ApplyOutcome) => outcomes.filter((x) => x === o).length;
    assert.deepEqual([count('applied'), count('stale'), count('duplicate')], [20 * 2, 20 * 3, 20]);
    assert.deepEqual([writer.stats().writes, chains.sent, chains.broken], [20, 1, 0], 'one write per entity, all in one chain');
    for (let e = 0; e < 20; e++) assert.equal((await entry(`c${e}`))?.seq, 3 + 6 * e, `c${e} holds the first stored v5`);
    // each next write is a compare-and-set on the revision the chain's acknowledgement gave it: a wrong one would break the chain
    assert.deepEqual(new Set(await Promise.all(Array.from({ length: 20 }, (_, e) => writer.submit(keyOf(`c${e}`), rec(`c${e}`, 6, ++seq))))), new Set(['applied']));
    assert.deepEqual([chains.sent, chains.broken], [2, 0]);
    for (let e = 0; e < 20; e++) assert.equal((await entry(`c${e}`))?.version, 6);
  });

  it('in chains: an entry it did not know of (another writer, an earlier run) breaks the chain; nothing older overwrites it and every key is written after a read', async () => {
    const { kv, bucket, writer, chains, entry } = await freshBatched();
    await applyRecord(kv, keyOf('k5'), rec('k5', 9, 100), { cas: casWriter(bus.nc, bucket) }); // the writer's cache does not know it: taken as new
    const outcomes = await Promise.all(Array.from({ length: 10 }, (_, i) => writer.submit(keyOf(`k${i}`), rec(`k${i}`, 1, i + 1))));
    assert.deepEqual(outcomes, Array.from({ length: 10 }, (_, i) => (i === 5 ? 'stale' : 'applied')));
    assert.deepEqual([chains.sent, chains.broken], [1, 1], 'k5\'s create is refused: it and every write after it in the chain are not stored');
    for (let i = 0; i < 10; i++) assert.equal((await entry(`k${i}`))?.version, i === 5 ? 9 : 1, `k${i}`);
    // the key-by-key writes after the break left the cache right: the next chain goes through
    await Promise.all(Array.from({ length: 10 }, (_, i) => writer.submit(keyOf(`k${i}`), rec(`k${i}`, 10, 200 + i))));
    assert.deepEqual([chains.sent, chains.broken], [2, 1]);
  });

  it('in chains: a key the cache let go of is written key by key after a read, not taken as new (which would break the chain)', async () => {
    const { writer, chains, entry } = await freshBatched(new EntryCache(4));
    await Promise.all(Array.from({ length: 10 }, (_, i) => writer.submit(keyOf(`e${i}`), rec(`e${i}`, 1, i + 1))));
    assert.deepEqual(await Promise.all(Array.from({ length: 10 }, (_, i) => writer.submit(keyOf(`e${i}`), rec(`e${i}`, 2, 20 + i)))), Array(10).fill('applied'));
    assert.equal(chains.broken, 0);
    for (let i = 0; i < 10; i++) assert.equal((await entry(`e${i}`))?.version, 2);
  });

  it('a chain is stored whole or rejected: after a refused write, later ones are not stored even where their own compare-and-set holds', async () => {
    const bucket = await createGeneration(bus, ++generation);
    const kv = await bus.kv(bucket);
    await kv.put('b', 'theirs');
    const send = casBatchWriter(bus.nc, bucket);
    const revisions = await send([{ key: 'x', data: '1', revision: 0 }, { key: 'y', data: '1', revision: 0 }]);
    assert.deepEqual(revisions, [2, 3], 'each write\'s revision, from the last one\'s acknowledgement');
    await assert.rejects(send([{ key: 'a', data: '2', revision: 0 }, { key: 'b', data: '2', revision: 0 }, { key: 'c', data: '2', revision: 0 }]));
    assert.equal((await kv.get('a'))?.string(), '2', 'before the refused write: stored');
    assert.equal((await kv.get('b'))?.string(), 'theirs', 'the refused write');
    assert.equal(await kv.get('c'), null, 'after it: not stored, though its key is new');
    // the ids a chain carries are remembered by the bucket for a second, not a KV bucket's 2 minutes
    assert.equal((await bus.jsm.streams.info(`KV_${bucket}`)).config.duplicate_window, 1_000_000_000);
  });

  it('submitAll: each record\'s outcome as submit gives it, one promise for the batch, rejected when a write fails', async () => {
    const { writer, chains, bucket } = await freshBatched();
    let seq = 0;
    const recs = Array.from({ length: 10 }, (_, e) => [3, 1, 5].map((v) => rec(`s${e}`, v, ++seq))).flat();
    const outcomes: ApplyOutcome[] = [];
    await writer.submitAll(recs, (o) => outcomes.push(o));
    assert.deepEqual([outcomes.filter((o) => o === 'applied').length, outcomes.filter((o) => o === 'stale').length], [20, 10]);
    assert.deepEqual([writer.stats().writes, chains.sent], [10, 1]);
    await bus.jsm.streams.delete(`KV_${bucket}`);
    await assert.rejects(writer.submitAll([rec('s0', 9, ++seq), rec('s1', 9, ++seq)], () => undefined));
  });
});
