import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, loadBusConfig } from '@bus/bus';
import { topology } from '@bus/streams';
import { createEnvelope } from '@bus/envelope';
import { createMetrics } from '@bus/observability';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { lastEventAt, learnRhythm, sourcesRhythm, watchSourceRhythm } from './rhythm.js';
import { silent, standardSource } from './test-support.js';
import { defineSource } from './source.js';

describe('source rhythm: last event, learned interval, quiet and back', () => {
  let nats: TestNats;
  let bus: Bus;
  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'rhythm-test', log: silent });
    await bus.applyTopology(topology({ prefix }));
  });
  after(async () => {
    await bus.close();
    await nats.stop({ removeStore: true });
  });
  let n = 0;
  const send = (source: string, type = 'thing.changed') => bus.publishEnvelope(bus.names.subjects.event(source, type),
    createEnvelope({ type, entity: { type: 'thing', id: String(++n) }, version: 1, data: {} }, { source, id: `${source}-${n}` }));

  it('lastEventAt reads the last event of one source across its event types, and undefined for a source never heard of', async () => {
    assert.equal(await lastEventAt(bus, 'alpha'), undefined);
    await send('alpha', 'a.one');
    await send('beta');
    const before = Date.now();
    await send('alpha', 'a.two.dotted');
    await send('beta');
    const at = await lastEventAt(bus, 'alpha');
    assert.ok(at !== undefined && at >= before - 50 && at <= Date.now(), `the last alpha event (${at})`);
    assert.equal(await lastEventAt(bus, 'alph'), undefined, 'a prefix of a source name is not the source');
  });

  it('learnRhythm: too few events teach nothing; enough give three mean gaps, at least a minute', async () => {
    assert.equal(await learnRhythm(bus, 'alpha', 3_600_000), undefined, 'two events are too few');
    for (let i = 0; i < 25; i++) await send('gamma');
    assert.equal(await learnRhythm(bus, 'gamma', 3_600_000), 60, 'a burst of 25 in a moment: the one-minute floor');
    assert.equal(await learnRhythm(bus, 'nobody', 3_600_000), undefined);
  });

  it('a watched source goes quiet after twice its interval, once, and comes back at the next event; one that never sent is measured from the start', async () => {
    const src = (name: string) => defineSource({ ...standardSource(), name, expectEverySec: 1 });
    const quiet: string[] = [];
    const registry = createMetrics('rhythm').registry;
    await send('delta');
    const stop = watchSourceRhythm({ bus, sources: [src('delta'), src('never')], log: silent, registry, checkEveryMs: 100, learnWindowMs: 0, onQuiet: (s) => quiet.push(s.name) });
    try {
      const sentAt = Date.now();
      await waitFor(() => quiet.includes('delta'), { what: 'delta quiet', timeoutMs: 10_000 });
      assert.ok(Date.now() - sentAt >= 1_500, 'not before twice its interval (minus the time since the send)');
      await waitFor(() => quiet.includes('never'), { what: 'never quiet', timeoutMs: 10_000 });
      const metrics = await registry.metrics();
      assert.match(metrics, /bus_source_silent\{source="delta"[^}]*\} 1/);
      const rhythm = await waitFor(async () => (await sourcesRhythm(bus)).find((r) => r.source === 'delta' && r.quiet), { what: 'the state in KV' });
      assert.equal(rhythm.expectEverySec, 1);
      await send('delta');
      await waitFor(async () => /bus_source_silent\{source="delta"[^}]*\} 0/.test(await registry.metrics()), { what: 'delta back', timeoutMs: 5_000 });
      assert.equal(quiet.filter((q) => q === 'delta').length, 1, 'onQuiet once per silence');
      const state = (await sourcesRhythm(bus)).find((r) => r.source === 'delta');
      assert.equal(state?.quiet, false);
    } finally {
      stop();
    }
  });
});
