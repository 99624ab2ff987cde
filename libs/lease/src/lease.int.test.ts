import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, loadBusConfig } from '@bus/bus';
import { createLogger } from '@bus/observability';
import { topology } from '@bus/streams';
import { startNats, startProcess, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { Kvm, type KV } from '@nats-io/kv';
import { acquireLease, type Lease } from './index.js';
import { decodeRecord } from './record.js';

const log = createLogger({ service: 'lease-test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let n = 0;
const key = () => `test.k${++n}`;

describe('lease: one holder at a time across processes', () => {
  let nats: TestNats;
  let bus: Bus;
  let prefix: string;
  let kv: KV;
  const held: Lease[] = [];
  const take = async <D>(k: string, opts: { holder?: string; ttlMs?: number; data?: D; autoRenew?: boolean } = {}) => {
    const l = await acquireLease<D>({ kv, key: k, ttlMs: 1_500, log, ...opts });
    if (l) held.push(l as Lease);
    return l;
  };
  before(async () => {
    nats = await startNats();
    prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'lease-test', log });
    await bus.applyTopology(topology({ prefix }));
    kv = await bus.kv(bus.names.kv.leases);
  });
  after(async () => {
    for (const l of held) await l.release();
    await bus.close();
    await nats.stop({ removeStore: true });
  });

  it('two contenders → exactly one wins; release lets the other in', async () => {
    const k = key();
    const [a, b] = await Promise.all([take(k, { holder: 'a' }), take(k, { holder: 'b' })]);
    assert.equal([a, b].filter(Boolean).length, 1);
    const winner = (a ?? b)!;
    assert.equal(await take(k, { holder: 'c' }), undefined, 'a live lease is not taken');
    await winner.release();
    assert.equal(winner.held(), false);
    assert.equal(winner.lost.aborted, false, 'release is not a loss');
    const next = await take(k, { holder: 'c' });
    assert.ok(next, 'released → the next contender gets it at once');
    assert.ok(next.token > winner.token, 'the fencing token grows with every acquisition');
    assert.equal(next.previous, undefined, 'a released lease has no previous holder');
  });

  it('20 acquirers in parallel, on a free key and on an expired one → one each time', async () => {
    const k = key();
    const first = await Promise.all(Array.from({ length: 20 }, (_, i) => take(k, { holder: `p${i}`, ttlMs: 300, autoRenew: false })));
    const winners = first.filter(Boolean);
    assert.equal(winners.length, 1);
    await waitFor(async () => decodeRecord(await kv.get(k))!.expiresAtMs < Date.now(), { what: 'the unrenewed lease to expire' });
    const second = await Promise.all(Array.from({ length: 20 }, (_, i) => take(k, { holder: `q${i}` })));
    assert.equal(second.filter(Boolean).length, 1);
    assert.equal(second.find(Boolean)!.previous?.holder, winners[0]!.holder);
  });

  it('renewal keeps the lease well past its ttl; nobody else gets it meanwhile', async () => {
    const k = key();
    const lease = (await take(k, { ttlMs: 600 }))!;
    const until = Date.now() + 3 * 600;
    await waitFor(async () => Date.parse(decodeRecord(await kv.get(k))!.renewedAt) > until, { what: 'renewals past three ttls' });
    assert.equal(lease.held(), true);
    assert.equal(lease.lost.aborted, false);
    assert.equal(await take(k, { holder: 'other', ttlMs: 600 }), undefined);
  });

  it('a holder SIGKILLed is taken over after its ttl, not before; its data is visible to the next holder', async () => {
    const k = key();
    const child = startProcess({
      command: process.execPath, args: [fileURLToPath(new URL('./fixtures/holder.js', import.meta.url))],
      env: { NATS_URL: nats.url, BUS_PREFIX: prefix, LEASE_KEY: k, LEASE_HOLDER: 'child', LEASE_TTL_MS: '1500', LOG_LEVEL: 'silent' },
    });
    try {
      await child.waitForOutput(/acquired token=\d+/, 'the child to acquire');
      child.kill('SIGKILL');
      await child.exited;
      assert.equal(await take(k), undefined, 'right after the kill its lease is still live');
      const lastExpiry = decodeRecord(await kv.get(k))!.expiresAtMs;
      const next = await waitFor(() => take(k, { holder: 'heir' }), { what: 'the dead holder\'s lease to be taken over', timeoutMs: 5_000 });
      assert.ok(Date.now() >= lastExpiry, 'not taken before the expiry in the value');
      assert.equal(next.previous?.holder, 'child');
      assert.deepEqual(next.previous?.data, { run: 'child-run' });
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a frozen holder (SIGSTOP) is taken over after its ttl; once it runs again its `lost` fires', async () => {
    const k = key();
    const child = startProcess({
      command: process.execPath, args: [fileURLToPath(new URL('./fixtures/holder.js', import.meta.url))],
      env: { NATS_URL: nats.url, BUS_PREFIX: prefix, LEASE_KEY: k, LEASE_HOLDER: 'frozen', LEASE_TTL_MS: '1000', LOG_LEVEL: 'silent' },
    });
    try {
      await child.waitForOutput(/acquired/, 'the child to acquire');
      child.kill('SIGSTOP');
      const next = await waitFor(() => take(k, { holder: 'heir', ttlMs: 5_000 }), { what: 'the frozen holder\'s lease to be taken over', timeoutMs: 5_000 });
      assert.equal(next.previous?.holder, 'frozen');
      child.kill('SIGCONT');
      await child.waitForOutput(/lost: \[LEASE_LOST\]/, 'the frozen holder to learn it lost the lease');
      const record = decodeRecord(await kv.get(k))!;
      assert.equal(record.holder, 'heir', 'the woken holder wrote nothing over the new one');
      assert.equal(next.held(), true);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('taken over behind its back → the next renewal finds it and `lost` fires with LEASE_LOST', async () => {
    const k = key();
    const lease = (await take(k, { ttlMs: 600 }))!;
    const e = (await kv.get(k))!;
    await kv.update(k, JSON.stringify({ ...decodeRecord(e), holder: 'intruder', nonce: 'x', expiresAtMs: Date.now() + 60_000 }), e.revision);
    await waitFor(() => lease.lost.aborted, { what: 'lost to fire' });
    assert.match((lease.lost.reason as Error).message, /LEASE_LOST.*taken over by intruder/);
    assert.equal(await lease.renew(), false);
    await lease.release();
    assert.equal(decodeRecord(await kv.get(k))?.holder, 'intruder', 'release never deletes someone else\'s lease');
  });

  it('data is kept with the lease and survives renewals', async () => {
    const k = key();
    const lease = (await take<{ runId: string; page?: number }>(k, { data: { runId: 'r1' } }))!;
    assert.deepEqual(lease.data.get(), { runId: 'r1' });
    assert.equal(await lease.data.set({ runId: 'r1', page: 2 }), true);
    assert.equal(await lease.renew(), true);
    assert.deepEqual(decodeRecord(await kv.get(k))!.data, { runId: 'r1', page: 2 });
    await assert.rejects(lease.data.set({ runId: 'x'.repeat(10_000) }), /LEASE_INVALID/);
  });

  it('a bucket whose max age is shorter than the ttl: renewals come often enough to keep the key', async () => {
    const short = await new Kvm(bus.js).create(`${prefix}_short_leases`, { ttl: 900, history: 1 });
    const k = key();
    const lease = (await acquireLease({ kv: short, key: k, ttlMs: 5_000, log }))!;
    held.push(lease);
    const until = Date.now() + 2_000;
    await waitFor(async () => Date.parse(decodeRecord(await short.get(k))!.renewedAt) > until, { what: 'renewals past two bucket max ages', timeoutMs: 5_000 });
    assert.equal(await acquireLease({ kv: short, key: k, ttlMs: 5_000 }), undefined);
  });

  it('NATS unreachable for longer than the ttl → `lost` fires; nothing is acquired while it is down', async (t) => {
    if (!nats.canRestart) return t.skip('NATS_URL is set: the server cannot be stopped');
    const lease = (await take(key(), { ttlMs: 1_000 }))!;
    await nats.stop();
    try {
      await waitFor(() => lease.lost.aborted, { what: 'lost to fire while NATS is down', timeoutMs: 5_000 });
      assert.match((lease.lost.reason as Error).message, /LEASE_LOST/);
      await assert.rejects(acquireLease({ kv, key: key(), ttlMs: 1_000 }), /LEASE_UNAVAILABLE/);
    } finally {
      await nats.start();
    }
    await waitFor(async () => (await acquireLease({ kv, key: key(), ttlMs: 1_000, autoRenew: false }))?.held(), { what: 'leases again after NATS is back', timeoutMs: 15_000 });
  });

  it('bad options → LEASE_INVALID naming each field', async () => {
    await assert.rejects(acquireLease({ kv, key: 'bad key', ttlMs: 5 }), /LEASE_INVALID.*key must be.*ttlMs must be/);
    await assert.rejects(acquireLease({ kv, key: 'k', ttlMs: 1_000, renewEveryMs: 2_000 }), /renewEveryMs/);
  });
});
