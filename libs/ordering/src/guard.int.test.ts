import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bus } from '@bus/bus';
import { topology } from '@bus/streams';
import { appliedVersion, createOrderingGuard, type GuardOptions, pendingVersions } from './index.js';
import { startTestBus } from './test-support.js';

describe('ordering guard decisions', () => {
  let t: Awaited<ReturnType<typeof startTestBus>>;
  let bus: Bus;
  let clock = 1_000_000;
  const now = () => clock;
  before(async () => {
    t = await startTestBus();
    bus = t.bus;
  });
  after(() => t.stop());
  let pending: number[] = [];
  const guard = async (holder: string, mode: 'strict' | 'latest' = 'strict', more: Partial<GuardOptions> = {}) =>
    createOrderingGuard({ kv: await bus.kv(bus.names.kv.versions), connector: 'crm', mode, holder, now, gapWaitMs: 5_000, leaseMs: 10_000, takeoverGraceMs: 0,
      pending: async () => pending, ...more });
  const e = (id: string) => ({ type: 'contact', id });
  const cmd = (id: string, version: number, more: { versionKind?: 'stamp'; repair?: boolean; storedAtMs?: number } = {}) =>
    ({ entity: e(id), version, storedAtMs: more.storedAtMs ?? clock, ...more });

  it('appliedVersion: 0 before anything, not while only leased, the committed version after', async () => {
    const kv = await bus.kv(bus.names.kv.versions);
    const g = await guard('applied');
    assert.equal(await appliedVersion(kv, 'crm', e('av')), 0);
    const b = await g.begin(cmd('av', 1));
    assert.equal(b.kind, 'go');
    assert.equal(await appliedVersion(kv, 'crm', e('av')), 0, 'leased, not applied');
    if (b.kind === 'go') await g.commit(b.token);
    assert.equal(await appliedVersion(kv, 'crm', e('av')), 1);
    assert.equal(await appliedVersion(kv, 'other', e('av')), 0, 'per connector');
  });

  it('strict: the gap clock starts when the missing version is neither pending nor in flight, and only then', async () => {
    const g = await guard('a');
    pending = [2, 3]; // version 2 still queued (a pause, a backlog): waiting, and the clock does not run
    assert.deepEqual(await g.begin(cmd('gap', 3, { storedAtMs: clock - 600_000 })), { kind: 'wait', reason: 'pending', applied: 0, delayMs: 250 });
    clock += 60_000;
    assert.equal((await g.begin(cmd('gap', 3))).kind, 'wait');
    pending = [3]; // version 2 gone without reaching us: now the clock runs
    assert.deepEqual(await g.begin(cmd('gap', 3)), { kind: 'wait', reason: 'gap', applied: 0, delayMs: 250 });
    for (let i = 0; i < 4; i++) {
      clock += 1_000;
      assert.equal((await g.begin(cmd('gap', 3))).kind, 'wait', 'still within gapWaitMs of real absence');
    }
    clock += 1_500;
    const expired = await g.begin(cmd('gap', 3));
    assert.equal(expired.kind, 'gap-expired');
    if (expired.kind === 'gap-expired') {
      assert.deepEqual(expired.missing, [1, 2]);
      assert.ok(expired.waitedMs >= 5_000);
    }
  });

  it('strict: a gap clock not looked at for a while (paused, down, moved) starts again', async () => {
    const g = await guard('a');
    pending = [];
    assert.equal((await g.begin(cmd('pause', 2))).kind, 'wait');
    clock += 4_000;
    assert.equal((await g.begin(cmd('pause', 2))).kind, 'wait');
    clock += 75_000; // an operator pause: nobody looked at it
    assert.deepEqual(await g.begin(cmd('pause', 2)), { kind: 'wait', reason: 'gap', applied: 0, delayMs: 250 }, 'the pause does not count');
  });

  it('strict: the gap clock waits for upstream (transform) to pass what was stored when the gap was seen', async () => {
    let floor = 10;
    const g = await guard('a', 'strict', { upstream: { mark: async () => 20, passed: async (mark) => floor >= mark } });
    pending = [];
    clock += 100_000;
    assert.equal((await g.begin(cmd('up', 2))).kind, 'wait');
    clock += 4_000;
    assert.deepEqual(await g.begin(cmd('up', 2)), { kind: 'wait', reason: 'pending', applied: 0, delayMs: 250 }, 'transform has not passed the mark');
    floor = 20;
    clock += 4_000;
    assert.equal((await g.begin(cmd('up', 2))).kind, 'wait');
    clock += 4_000;
    assert.equal((await g.begin(cmd('up', 2))).kind, 'wait');
    clock += 1_500;
    assert.equal((await g.begin(cmd('up', 2))).kind, 'gap-expired');
  });

  it('strict with stamps: held for the reorder window, never waits for numbers in between, never older over newer', async () => {
    const g = await guard('a', 'strict', { reorderWindowMs: 2_000 });
    pending = [];
    const stamp = 1_760_000_000;
    assert.deepEqual(await g.begin(cmd('st', stamp, { versionKind: 'stamp' })), { kind: 'wait', reason: 'reorder', applied: 0, delayMs: 2_000 });
    pending = [stamp - 5, stamp]; // an older stamp is on its way: it goes first
    assert.deepEqual(await g.begin(cmd('st', stamp, { versionKind: 'stamp', storedAtMs: clock - 3_000 })), { kind: 'wait', reason: 'pending', applied: 0, delayMs: 250 });
    pending = [stamp];
    const go = await g.begin(cmd('st', stamp, { versionKind: 'stamp', storedAtMs: clock - 3_000 }));
    assert.equal(go.kind, 'go');
    if (go.kind === 'go') assert.equal(await g.commit(go.token), true);
    assert.deepEqual(await g.begin(cmd('st', stamp - 5, { versionKind: 'stamp', storedAtMs: clock - 3_000 })), { kind: 'skip', reason: 'stale', applied: stamp });
  });

  it('stale and duplicate versions are skipped; latest accepts a jump; a repair re-applies the same version', async () => {
    const g = await guard('a', 'latest');
    const b = await g.begin(cmd('s', 5));
    assert.equal(b.kind, 'go');
    if (b.kind === 'go') await g.commit(b.token);
    assert.deepEqual(await g.begin(cmd('s', 5)), { kind: 'skip', reason: 'duplicate', applied: 5 });
    assert.deepEqual(await g.begin(cmd('s', 2)), { kind: 'skip', reason: 'stale', applied: 5 });
    assert.equal((await g.begin(cmd('s', 5, { repair: true }))).kind, 'go');
  });

  it('strict: a repair never jumps over a version still pending', async () => {
    const g = await guard('a');
    pending = [2];
    assert.deepEqual(await g.begin(cmd('rep', 3, { repair: true })), { kind: 'wait', reason: 'pending', applied: 0, delayMs: 250 });
    pending = [];
    assert.equal((await g.begin(cmd('rep', 3, { repair: true }))).kind, 'go');
  });

  it('a lease that ran out is an attempt that never finished: its version is in doubt for whoever takes it', async () => {
    const a = await guard('a');
    const b = await guard('b');
    const first = await a.begin(cmd('l', 1));
    assert.equal(first.kind, 'go');
    assert.equal(first.kind === 'go' && first.inDoubt, false);
    assert.equal((await b.begin(cmd('l', 1))).kind, 'wait', 'busy while the lease lives');
    clock += 11_000; // a died holding it
    const taken = await b.begin(cmd('l', 1));
    assert.equal(taken.kind, 'go');
    assert.equal(taken.kind === 'go' && taken.inDoubt, true, 'the dead attempt may have landed: look it up');
    if (first.kind === 'go') assert.equal(await a.commit(first.token), false, 'fenced: the old holder records nothing');
    if (taken.kind === 'go') assert.equal(await b.abort(taken.token, { inDoubt: false, lookup: { found: 0 } }), true);
    const again = await a.begin(cmd('l', 1));
    assert.equal(again.kind === 'go' && again.token.applied, 0, 'abort leaves applied unchanged');
    assert.equal(again.kind === 'go' && again.inDoubt, false, 'a lookup that found nothing resolved the doubt');
  });

  it('a timed-out attempt stays in doubt until a lookup answers; a renewed lease is not taken over', async () => {
    const a = await guard('a');
    const b = await guard('b');
    const first = await a.begin(cmd('d', 1));
    assert.equal(first.kind, 'go');
    if (first.kind !== 'go') return;
    clock += 8_000;
    assert.equal(await a.renew(first.token), true);
    clock += 8_000; // past the first lease, within the renewed one
    assert.equal((await b.begin(cmd('d', 1))).kind, 'wait');
    assert.equal(await a.abort(first.token, { inDoubt: true }), true);
    const next = await b.begin(cmd('d', 1));
    assert.equal(next.kind === 'go' && next.inDoubt, true);
  });

  it('latest: while a newer version is in doubt and still on its way, an older one waits; once it is not, the older one looks up first', async () => {
    const g = await guard('a', 'latest');
    const v6 = await g.begin(cmd('ld', 6));
    assert.equal(v6.kind, 'go');
    if (v6.kind === 'go') await g.abort(v6.token, { inDoubt: true }); // timed out: it may have landed
    pending = [4, 6];
    assert.deepEqual(await g.begin(cmd('ld', 4)), { kind: 'wait', reason: 'pending', applied: 0, delayMs: 250 }, 'never an older one over a newer that may be there');
    pending = [4];
    const v4 = await g.begin(cmd('ld', 4));
    assert.equal(v4.kind === 'go' && v4.inDoubt, true, 'look up first');
    if (v4.kind === 'go') assert.equal(await g.commit(v4.token, { found: 6 }), true, 'the lookup found 6: it had landed');
    assert.deepEqual(await g.begin(cmd('ld', 6)), { kind: 'skip', reason: 'duplicate', applied: 6 });
    assert.deepEqual(await g.begin(cmd('ld', 5)), { kind: 'skip', reason: 'stale', applied: 6 });
  });

  it('latest: a lookup that finds the newer doubted version absent clears the doubt', async () => {
    const g = await guard('a', 'latest');
    const v6 = await g.begin(cmd('lc', 6));
    if (v6.kind === 'go') await g.abort(v6.token, { inDoubt: true });
    pending = [];
    const v4 = await g.begin(cmd('lc', 4));
    assert.equal(v4.kind === 'go' && v4.inDoubt, true);
    if (v4.kind === 'go') assert.equal(await g.commit(v4.token, { found: 0 }), true);
    assert.deepEqual(await g.state(e('lc')), { applied: 4 }, 'applied 4, nothing in doubt');
  });

  it('latest: a lookup that finds an older version than the doubted one records it as applied, so nothing older goes over it', async () => {
    // chaos seed 1001 (kill-deliver, kill-transform): v5 landed with its answer lost, v8 timed out too; v8's lookup found
    // v5, then v8 got a 429. The doubt was cleared but 5 never recorded, so v3 went over the target's v5.
    const g = await guard('a', 'latest');
    pending = [];
    const v5 = await g.begin(cmd('lf', 5));
    if (v5.kind === 'go') await g.abort(v5.token, { inDoubt: true }); // answer lost: may have landed
    const v8 = await g.begin(cmd('lf', 8));
    assert.equal(v8.kind, 'go', 'latest: a newer version goes over a doubted older one');
    if (v8.kind === 'go') await g.abort(v8.token, { inDoubt: true }); // timed out as well
    const again = await g.begin(cmd('lf', 8));
    assert.equal(again.kind === 'go' && again.inDoubt, true, 'look up first');
    if (again.kind === 'go') assert.equal(await g.abort(again.token, { inDoubt: false, lookup: { found: 5 } }), true, 'the lookup found 5, then the call got a 429');
    assert.deepEqual(await g.state(e('lf')), { applied: 5 }, 'the target holds 5: applied 5, nothing in doubt');
    assert.deepEqual(await g.begin(cmd('lf', 3)), { kind: 'skip', reason: 'stale', applied: 5 }, 'never an older version over what the target holds');
  });

  it('a lookup that finds the doubted version itself resolves the doubt on abort too (no second lookup)', async () => {
    const g = await guard('a', 'strict');
    pending = [];
    const v1 = await g.begin(cmd('lr', 1));
    if (v1.kind === 'go') await g.abort(v1.token, { inDoubt: true });
    const v2 = await g.begin(cmd('lr', 2));
    assert.equal(v2.kind, 'wait', 'strict: 2 waits while 1 is in doubt and not applied');
    const again = await g.begin(cmd('lr', 1));
    if (again.kind === 'go') await g.abort(again.token, { inDoubt: false, lookup: { found: 1 } });
    assert.deepEqual(await g.state(e('lr')), { applied: 1 });
  });

  it('one process: a second version read after our lease is stored but before its answer arrives is busy, not a leftover to take over', async () => {
    const kv = await bus.kv(bus.names.kv.versions);
    let hold: (() => void) | undefined;
    let stored: (() => void) | undefined;
    const storedP = new Promise<void>((r) => (stored = r));
    // the lease write reaches the server, and its answer is held back until the test lets it through
    const slowKv = Object.create(kv, { create: { value: async (k: string, d: string) => {
      const rev = await kv.create(k, d);
      stored?.();
      await new Promise<void>((r) => (hold = r));
      return rev;
    } } });
    const g = createOrderingGuard({ kv: slowKv, connector: 'crm', mode: 'latest', holder: 'same', now, leaseMs: 10_000, pending: async () => [] });
    const first = g.begin(cmd('race', 1));
    await storedP;
    const second = await g.begin(cmd('race', 7));
    hold?.();
    assert.equal((await first).kind, 'go');
    assert.equal(second.kind, 'wait', 'our own lease still in use here: never two attempts of one entity at once');
  });

  it('a KV failure is an error, not a lost race', async () => {
    const g = await guard('a');
    const stopped = createOrderingGuard({ kv: await bus.kv(bus.names.kv.versions), connector: 'crm', mode: 'strict', now, pending: async () => [] });
    await bus.jsm.streams.delete(`KV_${bus.names.kv.versions}`);
    try {
      await assert.rejects(() => stopped.begin(cmd('gone', 1)), 'a missing bucket is thrown, not taken for someone else writing first');
    } finally {
      await bus.applyTopology(topology({ prefix: bus.names.prefix }));
    }
    assert.equal((await g.begin(cmd('back', 1))).kind, 'go');
  });

  it('pendingVersions lists the versions stored for one entity under its subject, and nothing else', async () => {
    const s = bus.names.subjects;
    for (const [id, v] of [['p1', 1], ['p1', 2], ['p2', 7], ['p1', 3]] as const) {
      await bus.publish(s.delivery('crm', 'contact', e(id)), new Uint8Array([1]), { msgId: `p-${id}-${v}`, headers: { 'Bus-Entity-Version': String(v) } });
    }
    await bus.publish(s.delivery('crm', 'order', e('p1')), new Uint8Array([1]), { msgId: 'p-o', headers: { 'Bus-Entity-Version': '4' } });
    await bus.publish(s.delivery('erp', 'contact', e('p1')), new Uint8Array([1]), { msgId: 'p-erp', headers: { 'Bus-Entity-Version': '9' } });
    assert.deepEqual(await pendingVersions(bus.jsm, bus.names.streams.deliveries, s.deliveriesOfEntity('crm', e('p1'))), [1, 2, 3, 4]);
    assert.deepEqual(await pendingVersions(bus.jsm, bus.names.streams.deliveries, s.deliveriesOfEntity('crm', e('none'))), []);
  });
});
