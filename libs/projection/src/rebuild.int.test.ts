import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNats, type TestNats, waitFor } from '@bus/testkit';
import fc from 'fast-check';
import { bucketExists } from './generations.js';
import { getEntity, readActive, readCheckpoint, rebuildProjection, type RebuildProgress } from './index.js';
import { entriesOf, envelope, expected, liveBus, projectorCaughtUp, publish, publishMany, type Stored } from './test-support.js';

describe('projection: rebuild by replay', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop({ removeStore: true }));

  const live = (startNow = true) => liveBus(nats.url, startNow);

  it('rebuild == live, for random event sequences with duplicates, reordering and clashing versions (fast-check)', async () => {
    const op = fc.record({
      entity: fc.nat({ max: 5 }),
      version: fc.integer({ min: 1, max: 6 }),
      value: fc.nat({ max: 3 }),
      repeat: fc.constantFrom('none', 'none', 'stored-twice', 'same-msg-id'),
    });
    await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
      const t = await live(false); // a backlog first: the projector then handles many at once, out of order
      try {
        const stored: Stored[] = [];
        for (const o of ops) {
          const env = envelope({ source: o.entity % 2 ? 'crm' : 'shop', type: o.entity < 3 ? 'contact' : 'order', id: `e${o.entity}`, version: o.version, data: { value: o.value } });
          const seq = await publish(t.bus, env);
          if (seq !== undefined) stored.push({ env, seq });
          if (o.repeat === 'none') continue;
          const again = await publish(t.bus, env, o.repeat === 'stored-twice' ? `${env.id}-again` : undefined);
          if (again !== undefined) stored.push({ env, seq: again });
        }
        await t.start();
        await projectorCaughtUp(t.bus);
        const liveEntries = await entriesOf(t.bus, (await readActive(t.bus))!.value.bucket);
        assert.deepEqual(liveEntries, expected(stored));
        await t.stop();
        const r = await rebuildProjection({ bus: t.bus });
        assert.equal(r.generation, 2);
        assert.equal((await readActive(t.bus))!.value.generation, 2);
        assert.deepEqual(await entriesOf(t.bus, (await readActive(t.bus))!.value.bucket), liveEntries);
      } finally {
        await t.done();
      }
    }), { numRuns: 20 });
  });

  it('interrupted by its AbortSignal, then resumed: the checkpoint moved, the second call starts there, and the state equals live', async () => {
    const t = await live();
    try {
      const stored = await publishMany(t.bus, 3_000, 200);
      await projectorCaughtUp(t.bus, 30_000);
      const want = expected(stored);
      const abort = new AbortController();
      const seen: RebuildProgress[] = [];
      const first = await rebuildProjection({
        bus: t.bus, signal: abort.signal, progressEveryMs: 10, concurrency: 8,
        onProgress: (p) => {
          seen.push(p);
          if (p.seq >= 500) abort.abort();
        },
      });
      assert.equal(first.interrupted, true);
      assert.equal(first.switched, false);
      assert.equal(seen.at(-1)?.phase, 'interrupted');
      const ckpt = await readCheckpoint(t.bus);
      assert.ok(ckpt && ckpt.lastSeq >= 500 && ckpt.lastSeq < stored.at(-1)!.seq, `checkpoint moved into the stream (${ckpt?.lastSeq})`);
      assert.equal(ckpt.state, 'replaying');
      assert.equal((await readActive(t.bus))!.value.generation, 1, 'an unfinished generation is never active');

      const second = await rebuildProjection({ bus: t.bus });
      assert.equal(second.resumed, true);
      assert.equal(second.generation, first.generation);
      assert.equal(second.startedAtSeq, ckpt.lastSeq + 1, 'resumed at the checkpoint, not from zero');
      assert.ok(second.events < stored.length, `the second call read only the rest (${second.events} of ${stored.length})`);
      assert.equal(second.switched, true);
      const active = (await readActive(t.bus))!.value;
      assert.deepEqual([active.generation, active.previous, active.by], [2, 1, 'rebuild']);
      assert.deepEqual(await entriesOf(t.bus, active.bucket), want);
      assert.equal((await readCheckpoint(t.bus))?.state, 'done');
    } finally {
      await t.done();
    }
  });

  it('restart abandons an unfinished rebuild: its bucket is deleted and a new generation is built from the start', async () => {
    const t = await live();
    try {
      const stored = await publishMany(t.bus, 2_000, 100);
      await projectorCaughtUp(t.bus, 30_000);
      const abort = new AbortController();
      const first = await rebuildProjection({ bus: t.bus, signal: abort.signal, progressEveryMs: 10, concurrency: 4, onProgress: (p) => p.seq > 0 && abort.abort() });
      assert.equal(first.interrupted, true);
      const again = await rebuildProjection({ bus: t.bus, restart: true });
      // the abandoned one when it started, the replaced one (1) once it was done
      assert.deepEqual([again.generation, again.resumed, again.startedAtSeq, again.deletedGenerations], [first.generation + 1, false, 1, [first.generation, 1]]);
      // 20 events per entity, up to 512 a pull: an entity's events in one pull make one write
      assert.ok(again.writes < again.events / 4, `${again.writes} writes for ${again.events} events over 100 entities`);
      assert.deepEqual(await entriesOf(t.bus, (await readActive(t.bus))!.value.bucket), expected(stored));
    } finally {
      await t.done();
    }
  });

  it('--from-seq N: replays from N and keeps older entries from the active generation, ending equal to live; --since finds its sequence', async () => {
    const t = await live();
    try {
      const firstHalf = await publishMany(t.bus, 400, 60);
      // the first half was stored before `acked` — but possibly within its millisecond (a whole chunk is stored in well under
      // one): splitAt is the next millisecond, so every first-half timestamp is before it
      const acked = Date.now();
      await waitFor(() => Date.now() > acked, { what: 'the clock past the first half\'s last PubAck' });
      const splitAt = Date.now();
      await waitFor(() => Date.now() > splitAt + 1, { what: 'the clock past splitAt, so what follows is stored strictly after it' });
      const secondHalf = await publishMany(t.bus, 400, 60, 400);
      await projectorCaughtUp(t.bus);
      const fromSeq = secondHalf[0]!.seq;
      const r = await rebuildProjection({ bus: t.bus, fromSeq });
      assert.equal(r.fromSeq, fromSeq);
      assert.equal(r.events, secondHalf.at(-1)!.seq - fromSeq + 1);
      assert.ok(r.counts.seeded > 0, 'entries last changed before N were copied');
      assert.deepEqual(await entriesOf(t.bus, (await readActive(t.bus))!.value.bucket), expected([...firstHalf, ...secondHalf]));

      const s = await rebuildProjection({ bus: t.bus, sinceMs: splitAt });
      assert.equal(s.fromSeq, fromSeq, 'the server found the first event stored since then');
      assert.deepEqual(r.deletedGenerations, [1], 'the replaced generation is deleted once the rebuild is done');
      assert.deepEqual(s.deletedGenerations, [r.generation]);
      assert.equal(await bucketExists(t.bus, t.bus.names.projectionBucket(r.generation)), false);
      assert.deepEqual(await entriesOf(t.bus, (await readActive(t.bus))!.value.bucket), expected([...firstHalf, ...secondHalf]));
      await assert.rejects(rebuildProjection({ bus: t.bus, fromSeq: 10_000 }), /past the end/);
    } finally {
      await t.done();
    }
  });

  it('keepPrevious keeps the replaced generation, frozen, for a rollback; the next rebuild deletes it', async () => {
    const t = await live();
    try {
      const stored = await publishMany(t.bus, 200, 20);
      await projectorCaughtUp(t.bus);
      const kept = await rebuildProjection({ bus: t.bus, keepPrevious: true });
      assert.deepEqual([kept.previous, kept.keptPrevious, kept.deletedGenerations], [1, true, []]);
      assert.deepEqual(await entriesOf(t.bus, t.bus.names.projectionBucket(1)), expected(stored), 'the old generation is still readable');
      const next = await rebuildProjection({ bus: t.bus });
      assert.deepEqual([next.previous, next.keptPrevious, next.deletedGenerations], [kept.generation, false, [1, kept.generation]]);
      assert.equal(await bucketExists(t.bus, t.bus.names.projectionBucket(1)), false);
      assert.equal(await bucketExists(t.bus, t.bus.names.projectionBucket(kept.generation)), false);
      // the live projector goes on in the active generation after the one it wrote into is gone
      const later = await publishMany(t.bus, 5, 20, 99_000);
      await projectorCaughtUp(t.bus);
      assert.deepEqual(await entriesOf(t.bus, (await readActive(t.bus))!.value.bucket), expected([...stored, ...later]));
    } finally {
      await t.done();
    }
  });

  it('the switch makes the live projector write into the new generation; events arriving during the rebuild are in it too', async () => {
    const t = await live();
    try {
      const earlier = await publishMany(t.bus, 2_000, 300);
      await projectorCaughtUp(t.bus, 30_000);
      // keep publishing while the rebuild runs and switches: 10 events per progress report of the
      // rebuild (every 20 ms), so the load follows the rebuild instead of a clock
      let publishing = true;
      let reports = 0;
      const during: Stored[] = [];
      const writer = (async () => {
        for (let i = 0; publishing || i < 50; i++) {
          const seen = reports;
          during.push(...(await publishMany(t.bus, 10, 300, 10_000 + i * 10)));
          if (publishing) await waitFor(() => !publishing || reports > seen, { what: 'the rebuild reporting progress', timeoutMs: 30_000 });
        }
      })();
      const phases = new Set<string>();
      const r = await rebuildProjection({ bus: t.bus, concurrency: 16, progressEveryMs: 20, keepPrevious: true, onProgress: (p) => {
        phases.add(p.phase);
        reports++;
      } });
      publishing = false;
      await writer;
      assert.equal(r.switched, true);
      assert.ok(phases.has('catching-up') && phases.has('done'), [...phases].join(','));
      const later = await publishMany(t.bus, 1, 300, 99_999);
      await projectorCaughtUp(t.bus, 30_000);
      const active = (await readActive(t.bus))!.value;
      assert.equal(active.generation, 2);
      const want = expected([...earlier, ...during, ...later]);
      assert.deepEqual(await entriesOf(t.bus, active.bucket), want);
      const last = later[0]!.env;
      const { updatedAt: _, ...got } = (await getEntity(t.bus, last.source, last.entity.type, last.entity.id))!;
      assert.deepEqual(got, Object.values(want).find((e) => e.source === last.source && e.entity.id === last.entity.id));
      const old = await t.bus.jsm.streams.info(`KV_${t.bus.names.projectionBucket(1)}`);
      assert.match(old.config.description ?? '', /REPLACED projection generation 1: generation 2 is active/);
    } finally {
      await t.done();
    }
  });

  it('one rebuild at a time: a second one is refused with what to do', async () => {
    const t = await live();
    try {
      await publishMany(t.bus, 2_000, 100);
      let second: Promise<unknown> | undefined;
      const first = await rebuildProjection({
        bus: t.bus, concurrency: 2,
        onProgress: () => {
          second ??= rebuildProjection({ bus: t.bus }).then(() => 'it ran', (err: Error) => err.message);
        },
      });
      assert.equal(first.switched, true);
      assert.match(String(await second), /\[PROJECTION_REBUILD_BUSY\] another projection rebuild is running .* run the command again then/);
      const third = await rebuildProjection({ bus: t.bus }); // the lease is free again once the first is done
      assert.equal(third.generation, 3);
    } finally {
      await t.done();
    }
  });
});
