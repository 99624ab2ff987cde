import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPool } from './pool.js';
import { freshReader } from './projector.js';
import { decide, type ProjectedEntity, projectionKey } from './record.js';

const rec = (version: number, seq: number, eventId = `e${seq}`): ProjectedEntity => ({
  source: 'crm', entity: { type: 'contact', id: 'c1' }, version, fields: {}, eventId, eventType: 'contact.updated',
  eventTime: '2026-01-01T00:00:00.000Z', seq, updatedAt: '',
});

describe('projection: deciding between two states of one entity', () => {
  it('nothing yet → applied; a newer version → applied; an older one → stale, kept as is', () => {
    assert.deepEqual(decide(undefined, rec(3, 9)), { outcome: 'applied', replace: true });
    assert.deepEqual(decide(rec(3, 9), rec(4, 2)), { outcome: 'applied', replace: true });
    assert.deepEqual(decide(rec(3, 9), rec(2, 12)), { outcome: 'stale', replace: false });
  });

  it('the same version again is a duplicate; the first stored copy (lower sequence) wins, so order never matters', () => {
    assert.deepEqual(decide(rec(3, 9), rec(3, 12)), { outcome: 'duplicate', replace: false });
    assert.deepEqual(decide(rec(3, 12), rec(3, 9)), { outcome: 'duplicate', replace: true });
    const events = [rec(1, 1), rec(3, 2, 'a'), rec(2, 3), rec(3, 4, 'b'), rec(3, 5, 'a')];
    const fold = (order: ProjectedEntity[]) => order.reduce<ProjectedEntity | undefined>((cur, c) => (decide(cur, c).replace ? c : cur), undefined);
    const want = fold(events);
    for (const order of [[...events].reverse(), [events[3]!, events[0]!, events[4]!, events[2]!, events[1]!]]) assert.deepEqual(fold(order), want);
    assert.equal(want?.seq, 2);
  });

  it('keys are <source>.<entityType>.<token>; ids with dots or spaces become a stable hash token', () => {
    assert.equal(projectionKey('crm', 'contact', 'c-1'), 'crm.contact.c-1');
    assert.match(projectionKey('crm', 'contact', 'a.b c'), /^crm\.contact\.h[0-9a-f]{40}$/);
    assert.equal(projectionKey('crm', 'contact', 'a.b c'), projectionKey('crm', 'contact', 'a.b c'));
  });
});

describe('projection: helpers', () => {
  it('freshReader: a caller never gets a read that began before it called; callers together share one', async () => {
    let started = 0;
    const releases: (() => void)[] = [];
    const read = freshReader(() => new Promise<number>((r) => {
      const n = ++started;
      releases.push(() => r(n));
    }));
    const a = read();
    const b = read(); // a's read is in flight: b waits for the next one
    const c = read(); // shares b's
    assert.equal(started, 1);
    releases.shift()!();
    assert.equal(await a, 1);
    await new Promise((r) => setImmediate(r));
    assert.equal(started, 2);
    releases.shift()!();
    assert.deepEqual([await b, await c], [2, 2]);
  });

  it('pool: the watermark moves only over finished work, in sequence order, and slot() waits for room', async () => {
    const pool = createPool(10, 3);
    const gates = new Map<number, () => void>();
    const job = (seq: number) => new Promise<void>((r) => gates.set(seq, r));
    pool.track(12, job(12)); // a batch: 11 and 12
    pool.track(13, job(13));
    pool.track(15, job(15));
    let room = false;
    const slot = pool.slot().then(() => (room = true));
    gates.get(13)!();
    await new Promise((r) => setImmediate(r));
    assert.equal(pool.watermark, 10, '13 done, but 12 is not');
    assert.equal(room, false, 'the window (3) is full until the oldest is done');
    gates.get(12)!();
    await slot;
    assert.equal(pool.watermark, 13);
    gates.get(15)!();
    await pool.drain();
    assert.equal(pool.watermark, 15);
  });

  it('pool: a failure stops the watermark before it and is thrown by drain', async () => {
    const pool = createPool(0, 4);
    pool.track(1, Promise.resolve());
    pool.track(2, Promise.reject(new Error('nats down')));
    pool.track(3, Promise.resolve());
    await assert.rejects(pool.drain(), /nats down/);
    assert.equal(pool.watermark, 1);
  });
});
