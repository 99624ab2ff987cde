import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, loadBusConfig } from '@bus/bus';
import { createLogger } from '@bus/observability';
import { topology } from '@bus/streams';
import { startNats, type TestNats, uniquePrefix } from '@bus/testkit';
import { createOrderingGuard } from './index.js';

describe('ordering guard decisions', () => {
  let nats: TestNats;
  let bus: Bus;
  let clock = 1_000_000;
  const now = () => clock;
  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 't', log: createLogger({ service: 't', level: 'silent' }) });
    await bus.applyTopology(topology({ prefix }));
  });
  after(async () => {
    await bus.close();
    await nats.stop({ removeStore: true });
  });
  const guard = async (holder: string, mode: 'strict' | 'latest' = 'strict') =>
    createOrderingGuard({ kv: await bus.kv(bus.names.kv.versions), connector: 'crm', mode, holder, now, gapWaitMs: 5_000, leaseMs: 10_000 });
  const e = (id: string) => ({ type: 'contact', id });

  it('strict: a gap is waited for, then escalated once the wait is over', async () => {
    const g = await guard('a');
    assert.deepEqual(await g.begin(e('gap'), 3, clock), { kind: 'wait', reason: 'gap', applied: 0, delayMs: 250 });
    const expired = await g.begin(e('gap'), 3, clock - 6_000);
    assert.deepEqual(expired, { kind: 'gap-expired', applied: 0, missing: [1, 2] });
  });

  it('stale and duplicate versions are skipped; latest accepts a jump', async () => {
    const g = await guard('a', 'latest');
    const b = await g.begin(e('s'), 5, clock);
    assert.equal(b.kind, 'go');
    if (b.kind === 'go') await g.commit(b.token);
    assert.deepEqual(await g.begin(e('s'), 5, clock), { kind: 'skip', reason: 'duplicate', applied: 5 });
    assert.deepEqual(await g.begin(e('s'), 2, clock), { kind: 'skip', reason: 'stale', applied: 5 });
  });

  it('an entity in flight elsewhere is busy; a dead holder\'s lease expires; abort leaves applied unchanged', async () => {
    const a = await guard('a');
    const b = await guard('b');
    const first = await a.begin(e('l'), 1, clock);
    assert.equal(first.kind, 'go');
    assert.equal((await b.begin(e('l'), 1, clock)).kind, 'wait');
    clock += 11_000; // a died holding it
    const taken = await b.begin(e('l'), 1, clock);
    assert.equal(taken.kind, 'go');
    if (taken.kind === 'go') await b.abort(taken.token);
    const again = await a.begin(e('l'), 1, clock);
    assert.equal(again.kind === 'go' && again.token.applied, 0);
  });
});
