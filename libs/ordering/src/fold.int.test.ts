import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, loadBusConfig } from '@bus/bus';
import { createLogger } from '@bus/observability';
import { topology } from '@bus/streams';
import { uniquePrefix } from '@bus/testkit';
import { appliedVersion, createOrderingGuard, foldIdleVersions, type OrderingGuard, partitionKeyOf } from './index.js';
import { startTestBus } from './test-support.js';

describe('folding idle entities into partition values', () => {
  let t: Awaited<ReturnType<typeof startTestBus>>;
  let bus: Bus;
  before(async () => {
    t = await startTestBus();
    bus = t.bus;
  });
  after(() => t.stop());
  const kv = () => bus.kv(bus.names.kv.versions);
  const guard = async (connector: string, mode: 'strict' | 'latest' = 'strict') =>
    createOrderingGuard({ kv: await kv(), connector, mode, leaseMs: 10_000, takeoverGraceMs: 0 });
  const e = (id: string) => ({ type: 'contact', id });
  const cmd = (id: string, version: number) => ({ entity: e(id), version, storedAtMs: Date.now() });
  async function deliver(g: OrderingGuard, id: string, version: number): Promise<void> {
    const b = await g.begin(cmd(id, version));
    assert.equal(b.kind, 'go', `${id} v${version}: ${JSON.stringify(b)}`);
    if (b.kind === 'go') assert.ok(await g.commit(b.token));
  }
  /** Subjects (keys) of the versions bucket nats-server holds for one connector: what costs its memory. */
  async function keysHeld(connector: string): Promise<number> {
    const info = await bus.jsm.streams.info(`KV_${bus.names.kv.versions}`, { subjects_filter: `$KV.${bus.names.kv.versions}.${connector}.>` });
    return Object.keys(info.state.subjects ?? {}).length;
  }

  it('idle entities leave their keys for a few partition values; every version decision stays the same', async () => {
    const g = await guard('fold1');
    for (let i = 0; i < 60; i++) for (let v = 1; v <= 3; v++) await deliver(g, `c-${i}`, v);
    assert.equal(await keysHeld('fold1'), 60);
    const r = await foldIdleVersions({ bus, connector: 'fold1', idleMs: 0 });
    assert.equal(r.removal, 'sequence', 'bus_versions is made with deny_delete off: a folded key goes by its sequence');
    assert.equal(r.folded, 60);
    assert.equal(r.kept, 0);
    const held = await keysHeld('fold1');
    assert.equal(held, r.partitions, 'only partition values are left (one per entity at this size: 16,384 partitions)');
    const fresh = await guard('fold1'); // another process: nothing cached
    for (const g2 of [g, fresh]) {
      assert.deepEqual(await g2.state(e('c-7')), { applied: 3 });
      assert.deepEqual(await g2.begin(cmd('c-7', 3)), { kind: 'skip', reason: 'duplicate', applied: 3 });
      assert.deepEqual(await g2.begin(cmd('c-8', 2)), { kind: 'skip', reason: 'stale', applied: 3 });
    }
    assert.equal(await appliedVersion(await kv(), 'fold1', e('c-9')), 3);
    assert.equal(await appliedVersion(await kv(), 'fold1', e('never')), 0);
    // a strict gap after a fold is still a gap: version 5 waits for 4
    assert.equal((await fresh.begin(cmd('c-10', 5))).kind, 'wait');
    await deliver(fresh, 'c-10', 4);
    assert.deepEqual(await fresh.state(e('c-10')), { applied: 4 }, 'the key is back, from the folded version');
    await deliver(fresh, 'c-10', 5);
  });

  it('a redelivered first version of a folded entity is a duplicate (the create fast path reads the partition)', async () => {
    const g = await guard('fold2');
    await deliver(g, 'only-v1', 1);
    await foldIdleVersions({ bus, connector: 'fold2', idleMs: 0 });
    for (const g2 of [g, await guard('fold2')]) assert.deepEqual(await g2.begin(cmd('only-v1', 1)), { kind: 'skip', reason: 'duplicate', applied: 1 });
    assert.deepEqual(await g.state(e('only-v1')), { applied: 1 }, 'the create found it folded: its version went back into the key, no lease left');
  });

  it('a key created over a folded entity by a process that stopped before reading the partition still counts the folded version', async () => {
    const g = await guard('fold8');
    await deliver(g, 'stopped', 1);
    await deliver(g, 'stopped', 2);
    while ((await foldIdleVersions({ bus, connector: 'fold8', idleMs: 0 })).folded === 0);
    // what begin's create writes for a first version, left by a holder whose lease ran out before it looked at the partition
    await (await kv()).create('fold8.contact.stopped', JSON.stringify({ applied: 0, lease: { version: 1, holder: 'gone', untilMs: Date.now() - 1 } }));
    const fresh = await guard('fold8');
    assert.deepEqual(await fresh.begin(cmd('stopped', 2)), { kind: 'skip', reason: 'duplicate', applied: 2 });
    assert.equal(await appliedVersion(await kv(), 'fold8', e('stopped')), 2);
    await deliver(fresh, 'stopped', 3);
  });

  it('latest mode: an older version after a fold is stale, a newer one goes', async () => {
    const g = await guard('fold3', 'latest');
    await deliver(g, 'l', 7);
    await foldIdleVersions({ bus, connector: 'fold3', idleMs: 0 });
    const fresh = await guard('fold3', 'latest');
    assert.deepEqual(await fresh.begin(cmd('l', 4)), { kind: 'skip', reason: 'stale', applied: 7 });
    await deliver(fresh, 'l', 9);
    assert.equal(await appliedVersion(await kv(), 'fold3', e('l')), 9);
  });

  it('keeps what is in use or written meanwhile: a held lease, a version in doubt, a key written after it was listed, a recent write', async () => {
    const g = await guard('fold4');
    await deliver(g, 'leased', 1);
    const held = await g.begin(cmd('leased', 2));
    assert.equal(held.kind, 'go');
    await deliver(g, 'doubt', 1);
    const d = await g.begin(cmd('doubt', 2));
    if (d.kind === 'go') await g.abort(d.token, { inDoubt: true });
    await deliver(g, 'racing', 1);
    await deliver(g, 'recent', 1);
    const r = await foldIdleVersions({
      bus, connector: 'fold4', idleMs: 0,
      // 'racing' is written between the listing and the fold: its newer write must survive
      afterList: async (keys) => {
        assert.ok(keys.some((k) => k.endsWith('.racing')));
        await deliver(g, 'racing', 2);
      },
    });
    assert.equal(r.kept, 1, 'the raced key is kept');
    assert.deepEqual(await g.state(e('racing')), { applied: 2 });
    assert.deepEqual(await (await guard('fold4')).state(e('doubt')), { applied: 1, inDoubt: 2 });
    if (held.kind === 'go') assert.ok(await g.commit(held.token), 'the lease held across the fold still commits (fenced write)');
    assert.equal(await appliedVersion(await kv(), 'fold4', e('leased')), 2);
    const none = await foldIdleVersions({ bus, connector: 'fold4', idleMs: 60_000 });
    assert.equal(none.folded, 0, 'nothing idle for a minute yet');
  });

  it('partitions merge with the higher version: a second fold, or two at once, never lowers one', async () => {
    const g = await guard('fold5');
    for (let i = 0; i < 20; i++) await deliver(g, `m-${i}`, 1);
    await Promise.all([foldIdleVersions({ bus, connector: 'fold5', idleMs: 0 }), foldIdleVersions({ bus, connector: 'fold5', idleMs: 0 })]);
    for (let i = 0; i < 20; i++) await deliver(g, `m-${i}`, 2);
    await foldIdleVersions({ bus, connector: 'fold5', idleMs: 0 });
    const fresh = await guard('fold5');
    for (let i = 0; i < 20; i++) assert.equal((await fresh.state(e(`m-${i}`))).applied, 2, `m-${i}`);
    const pk = partitionKeyOf('fold5', `fold5.contact.m-0`);
    const v = await (await kv()).get(pk);
    assert.ok(v, 'the partition value exists');
    assert.equal((v.json() as { e: Record<string, number> }).e['contact.m-0'], 2);
    // an old partition value is rewritten as it is, so it does not pin its file block (and the block's deleted keys) in memory
    const fresh1 = await foldIdleVersions({ bus, connector: 'fold5', idleMs: 0, refreshMs: 60_000 });
    assert.equal(fresh1.refreshed, 0, 'written a moment ago: fresh');
    const r = await foldIdleVersions({ bus, connector: 'fold5', idleMs: 0, refreshMs: 0 });
    assert.ok(r.refreshed >= 1);
    const again = await (await kv()).get(pk);
    assert.ok(again && again.revision > v.revision);
    assert.deepEqual(again.json(), v.json());
  });

  it('passes with a cursor read what was written since the last pass, not every key, and still fold what goes idle', async () => {
    const g = await guard('fold6');
    const cursor = { idle: 0, refresh: 0 };
    const idleMs = 60_000;
    /** The pass's clock: idle means written before `boundary`. */
    let boundary = Date.now() - idleMs;
    const pass = (o: { refreshMs?: number } = {}) => foldIdleVersions({ bus, connector: 'fold6', idleMs, now: () => boundary + idleMs, cursor, ...o });
    const tick = () => {
      const t = Date.now();
      while (Date.now() < t + 2); // two milliseconds on: what is written next is after t + 1 (stored times are whole ms to the fold)
      return t + 1;
    };
    for (let i = 0; i < 30; i++) await deliver(g, `q-${i}`, 1);
    const none = await pass();
    assert.deepEqual([none.looked, none.folded], [0, 0], 'nothing idle yet: the cursor waits at the first key');
    boundary = tick();
    for (let i = 30; i < 40; i++) await deliver(g, `q-${i}`, 1); // written after the boundary: not idle
    const first = await pass();
    assert.deepEqual([first.looked, first.folded], [30, 30], 'the 30 idle keys; it stopped at the first recent one');
    // held in use (a lease) when its pass comes: kept, and met again once it is written
    const held = await g.begin(cmd('q-35', 2));
    assert.equal(held.kind, 'go');
    boundary = tick();
    const second = await pass();
    assert.equal(second.looked, 10, 'only the keys written since the first pass (not the 30 folded, nor the partitions)');
    assert.equal(second.folded, 9, 'q-35 holds a lease');
    if (held.kind === 'go') assert.ok(await g.commit(held.token));
    boundary = tick();
    const third = await pass();
    assert.deepEqual([third.looked, third.folded], [1, 1], 'q-35, rewritten at its commit');
    const subjects = await bus.jsm.streams.info(`KV_${bus.names.kv.versions}`, { subjects_filter: `$KV.${bus.names.kv.versions}.fold6.>` });
    assert.deepEqual(Object.keys(subjects.state.subjects ?? {}).filter((k) => !k.includes('.=fold.')), [], 'every entity key folded');
    const fresh = await guard('fold6');
    for (let i = 0; i < 40; i++) assert.equal((await fresh.state(e(`q-${i}`))).applied, i === 35 ? 2 : 1, `q-${i}`);
    // the refresh cursor: every partition value older than refreshMs rewritten once; then none is old
    const partitionValues = Object.keys(subjects.state.subjects ?? {}).length;
    const refreshed = await pass({ refreshMs: 0 });
    assert.equal(refreshed.refreshed, partitionValues);
    const again = await pass({ refreshMs: 60_000 });
    assert.equal(again.refreshed, 0, 'rewritten after the boundary: fresh');
  });

  it('a bucket made before deny_delete was lifted: applyTopology reports the drift, the fold still works (by purge)', async () => {
    const prefix = uniquePrefix();
    const old = await connectBus({ config: loadBusConfig({ NATS_URL: t.nats.url, BUS_PREFIX: prefix }), name: 'old', log: createLogger({ service: 't', level: 'silent' }) });
    try {
      const bucket = old.names.kv.versions;
      // as applyTopology made it before: the KV client's settings with message deletes denied
      await old.jsm.streams.add({ name: `KV_${bucket}`, subjects: [`$KV.${bucket}.>`], max_msgs_per_subject: 1, allow_rollup_hdrs: true, deny_delete: true, allow_direct: true });
      const report = await old.applyTopology(topology({ prefix }));
      assert.deepEqual(report.drift.map((d) => [d.resource, d.field, d.have, d.want]), [[`bucket ${bucket}`, 'deny_delete', true, false]]);
      const g = createOrderingGuard({ kv: await old.kv(bucket), connector: 'oldb', mode: 'strict', leaseMs: 10_000, takeoverGraceMs: 0 });
      for (let i = 0; i < 5; i++) for (const v of [1, 2]) await deliver(g, `o-${i}`, v);
      const r = await foldIdleVersions({ bus: old, connector: 'oldb', idleMs: 0, now: () => Date.now() + 1_000 }); // the last write may share this millisecond
      assert.equal(r.removal, "purge", JSON.stringify(r));
      assert.equal(r.folded, 5, JSON.stringify(r));
      assert.deepEqual(await g.begin(cmd('o-3', 2)), { kind: 'skip', reason: 'duplicate', applied: 2 });
    } finally {
      await old.close();
    }
  });
});
