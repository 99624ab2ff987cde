// Dedup past the EVENTS window (issue #16): compact entries in DEDUP, confirmed against EVENTS.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, loadBusConfig } from '@bus/bus';
import { createMetrics } from '@bus/observability';
import { topology } from '@bus/streams';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { createDedupLog, type DedupLogOptions, hashOf } from './dedup.js';
import { createIntake } from './intake.js';
import { createIntakeMetrics } from './metrics.js';
import { events, silent, standardSource } from './test-support.js';

const source = standardSource();

async function busFor(url: string, prefix: string): Promise<Bus> {
  const bus = await connectBus({ config: loadBusConfig({ NATS_URL: url, BUS_PREFIX: prefix, BUS_PUBLISH_TIMEOUT_MS: '1000' }), name: 'dedup-test', log: silent });
  await bus.applyTopology(topology({ prefix, eventsDuplicateWindowSec: 1 })); // a 1 s stream window, to test past it
  return bus;
}

/** An ingest (listed items: the webhook pipeline minus the signature) with its own dedup log. */
function ingest(bus: Bus, opts: Partial<DedupLogOptions> = {}) {
  const dedup = createDedupLog({ bus, log: silent, horizons: new Map([['standard', 60_000]]), flushMs: 50, ...opts });
  const intake = createIntake({ bus, sources: [source], env: {}, log: silent, metrics: createIntakeMetrics(createMetrics('t').registry), webhooks: false, dedup });
  const send = async (id: string) => {
    const a = await intake.receiveListed('standard', { payload: { type: 'contact.updated', data: { id: 'c1', version: 1, email: 'a@example.com' } }, headers: { 'webhook-id': id } });
    return String(a.body.status);
  };
  return { intake, dedup, send };
}

/** Waits until EVENTS has forgotten ids stored before now (its window is 1 s here). */
async function pastStreamWindow(bus: Bus) {
  const probe = bus.names.subjects.event('probe', 'x');
  const id = `probe-${Date.now()}-${Math.random()}`;
  await bus.publish(probe, new Uint8Array([1]), { msgId: id });
  await waitFor(async () => !(await bus.publish(probe, new Uint8Array([1]), { msgId: id })).duplicate, { what: 'the stream window to pass', timeoutMs: 10_000, intervalMs: 200 });
}

describe('ingest dedup past the stream window (DEDUP)', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop({ removeStore: true }));

  it('a duplicate past the stream window within the horizon is refused; nothing is stored twice', async () => {
    const bus = await busFor(nats.url, uniquePrefix());
    const { intake, send } = ingest(bus);
    try {
      assert.equal(await send('msg_a'), 'stored');
      await intake.dedup.flush();
      await pastStreamWindow(bus);
      assert.equal(await send('msg_a'), 'duplicate');
      assert.equal((await events(bus, 'standard')).length, 1);
    } finally {
      await intake.close();
      await bus.close();
    }
  });

  it('a hash collision does not refuse a distinct delivery (2-bit hashes: every entry collides with many)', async () => {
    const bus = await busFor(nats.url, uniquePrefix());
    const { intake, send } = ingest(bus, { hashBits: 2 });
    try {
      const first = Array.from({ length: 12 }, (_, i) => `msg_first_${i}`);
      for (const id of first) assert.equal(await send(id), 'stored');
      await intake.dedup.flush();
      await pastStreamWindow(bus);
      // these share 2-bit hashes with stored ones (12 entries over 4 values): suspects, confirmed absent in EVENTS
      const distinct = Array.from({ length: 12 }, (_, i) => `msg_other_${i}`);
      assert.ok(distinct.some((id) => first.some((f) => hashOf(`standard:${f}`, 2) === hashOf(`standard:${id}`, 2))));
      for (const id of distinct) assert.equal(await send(id), 'stored', `${id} is not a duplicate`);
      for (const id of first) assert.equal(await send(id), 'duplicate', `${id} is`);
      assert.equal((await events(bus, 'standard')).length, 24);
    } finally {
      await intake.close();
      await bus.close();
    }
  });

  it('past the horizon a delivery is accepted again', async () => {
    const bus = await busFor(nats.url, uniquePrefix());
    const { intake, send } = ingest(bus, { horizons: new Map([['standard', 1_500]]), slotMs: 250 });
    try {
      assert.equal(await send('msg_old'), 'stored');
      const storedAt = Date.now();
      await intake.dedup.flush();
      await pastStreamWindow(bus);
      // the horizon is kept to within one slot: past 1.5 s + 0.25 s it is gone
      await waitFor(() => Date.now() - storedAt > 1_800, { what: 'the horizon to pass', intervalMs: 100 });
      assert.equal(await send('msg_old'), 'stored');
      assert.equal((await events(bus, 'standard')).length, 2);
    } finally {
      await intake.close();
      await bus.close();
    }
  });

  it('ended slots are merged (a lookup searches few); what they hold is still refused, and accepted again past the horizon', async () => {
    const bus = await busFor(nats.url, uniquePrefix());
    const { intake, send } = ingest(bus, { horizons: new Map([['standard', 3_000]]), slotMs: 100, mergedSlotMs: 1_500 });
    try {
      const ids = Array.from({ length: 6 }, (_, i) => `msg_slot_${i}`);
      const firstAt = Date.now();
      for (const id of ids) {
        assert.equal(await send(id), 'stored');
        await intake.dedup.flush();
        const at = Date.now();
        await waitFor(() => Date.now() - at > 120, { what: 'the next slot', intervalMs: 20 }); // each batch in a slot of its own
      }
      await waitFor(() => intake.dedup.size().entries === ids.length, { what: 'the entries read back' });
      // six 100 ms slots, ended: merged into at most two of up to 1.5 s
      await waitFor(() => intake.dedup.size().slots <= 2, { what: 'the ended slots to merge', timeoutMs: 5_000, intervalMs: 50 });
      assert.equal(intake.dedup.size().entries, ids.length);
      await pastStreamWindow(bus);
      for (const id of ids) assert.equal(await send(id), 'duplicate', `${id} is one`);
      // kept to within one merged slot past the horizon: 3 s + 1.5 s
      await waitFor(() => Date.now() - firstAt > 4_700, { what: 'the horizon to pass', timeoutMs: 10_000, intervalMs: 100 });
      assert.equal(await send(ids[0]!), 'stored');
      assert.equal((await events(bus, 'standard')).length, ids.length + 1);
    } finally {
      await intake.close();
      await bus.close();
    }
  });

  it("a source declared dedupHorizon 'none' is deduplicated by the stream window only", async () => {
    const bus = await busFor(nats.url, uniquePrefix());
    const { intake, send } = ingest(bus, { horizons: new Map([['standard', 0]]) });
    try {
      assert.equal(await send('msg_n'), 'stored');
      assert.equal(await send('msg_n'), 'duplicate'); // within the stream window
      await pastStreamWindow(bus);
      assert.equal(await send('msg_n'), 'stored');
      assert.equal(intake.dedup.size().entries, 0, 'nothing kept for it');
    } finally {
      await intake.close();
      await bus.close();
    }
  });

  it('a restart (of nats-server and of ingest) keeps the state: a new ingest refuses what the old one stored', async (tc) => {
    if (!nats.canRestart) return tc.skip('NATS_URL is set: the server cannot be restarted');
    const prefix = uniquePrefix();
    const bus = await busFor(nats.url, prefix);
    const old = ingest(bus);
    assert.equal(await old.send('msg_r'), 'stored');
    await old.intake.close(); // its pending batch is stored on the way out
    await bus.close();
    await nats.stop();
    await nats.start();
    const bus2 = await busFor(nats.url, prefix);
    const fresh = ingest(bus2);
    try {
      await pastStreamWindow(bus2);
      assert.equal(await fresh.send('msg_r'), 'duplicate');
      assert.equal(fresh.intake.dedup.size().entries, 1);
    } finally {
      await fresh.intake.close();
      await bus2.close();
    }
  });

  it('concurrent ingest processes: what one stored, the other refuses; the same delivery to both at once is stored once', async () => {
    const prefix = uniquePrefix();
    const [busA, busB] = [await busFor(nats.url, prefix), await busFor(nats.url, prefix)];
    const a = ingest(busA);
    const b = ingest(busB);
    try {
      assert.equal(await a.send('msg_x'), 'stored');
      await a.intake.dedup.flush();
      await pastStreamWindow(busA);
      await waitFor(() => b.intake.dedup.size().entries >= 1, { what: "B to read A's entry" }).catch(() => undefined); // B starts reading on its first request
      assert.equal(await b.send('msg_x'), 'duplicate');
      const both = await Promise.all(Array.from({ length: 10 }, (_, i) => [a.send(`msg_y${i}`), b.send(`msg_y${i}`)]).flat());
      assert.equal(both.filter((s) => s === 'stored').length, 10);
      assert.equal(both.filter((s) => s === 'duplicate').length, 10);
      await Promise.all([a.intake.dedup.flush(), b.intake.dedup.flush()]);
      await pastStreamWindow(busA);
      for (let i = 0; i < 10; i++) assert.deepEqual([await a.send(`msg_y${i}`), await b.send(`msg_y${i}`)], ['duplicate', 'duplicate']);
      assert.equal((await events(busA, 'standard')).length, 11);
    } finally {
      await a.intake.close();
      await b.intake.close();
      await busA.close();
      await busB.close();
    }
  });
});
