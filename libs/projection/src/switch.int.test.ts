import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bus } from '@bus/bus';
import { startCluster, startNats, type TestCluster, type TestNats } from '@bus/testkit';
import fc from 'fast-check';
import { casBatchWriter } from './cas.js';
import { createGeneration, switchActive } from './generations.js';
import { createProjector, projectionKey, readActive, rebuildProjection, type RebuildStep } from './index.js';
import {
  busOn, differences, dropAll, entriesOf, envelope, expected, liveBus, projectorCaughtUp, publish, publishMany, silent, type Stored,
} from './test-support.js';

/** The promise of a rebuild: once everything is handled, the active generation holds what the events say — nothing lost at the switch. */
async function assertNewGenerationComplete(bus: Bus, stored: Stored[], generation: number, context = ''): Promise<void> {
  await projectorCaughtUp(bus, 30_000);
  const active = (await readActive(bus))!.value;
  assert.equal(active.generation, generation);
  const diff = differences(await entriesOf(bus, active.bucket), expected(stored));
  assert.equal(diff, '', `generation ${generation} differs from the events${context}: ${diff}`);
}

const STEPS: RebuildStep[] = ['replay', 'caught-up', 'switching', 'switched', 'final-pass'];

let nextVersion = 1_000; // above publishMany's versions (≤ 97): each update is the newest of its entity

/** `n` events tagged `tag`: half create entities of their own, half update shared ones to a new highest version, so a lost one shows. */
async function batch(bus: Bus, tag: string, n: number): Promise<Stored[]> {
  const envs = Array.from({ length: n }, (_, k) => k % 2
    ? envelope({ source: 'crm', type: 'contact', id: `${tag}-${k}`, version: 1, data: { tag } })
    : envelope({ source: 'crm', type: 'contact', id: `c${k % 50}`, version: ++nextVersion, data: { tag } }));
  const seqs = await Promise.all(envs.map((env) => publish(bus, env)));
  return envs.map((env, k) => ({ env, seq: seqs[k]! }));
}

/** Events given as [entity, version], published at once (their order in the stream is not theirs in the list). */
async function publishLoad(bus: Bus, load: [number, number][], tag: string): Promise<Stored[]> {
  const envs = load.map(([entity, version], k) =>
    envelope({ source: entity % 3 ? 'crm' : 'shop', type: 'contact', id: `e${entity}`, version, data: { tag, k } }));
  const seqs = await Promise.all(envs.map((env) => publish(bus, env)));
  return envs.map((env, k) => ({ env, seq: seqs[k]! }));
}

/** A rebuild with a batch of events stored at each step of the switch, each handled by the live projector before the rebuild goes on. */
async function rebuildWithBatchAtEachStep(url: string, catchUpEvents: number, replicas = 1): Promise<void> {
  const t = await liveBus(url, true, replicas);
  try {
    const stored = await publishMany(t.bus, 1_000, 100);
    await projectorCaughtUp(t.bus, 30_000);
    const steps: RebuildStep[] = [];
    const r = await rebuildProjection({
      bus: t.bus, concurrency: 8, catchUpEvents,
      onStep: async (step) => {
        steps.push(step);
        stored.push(...(await batch(t.bus, step, 40)));
        // the live projector has applied them (to whichever generation it saw as active) before the rebuild's next step
        await projectorCaughtUp(t.bus, 30_000);
      },
    });
    assert.deepEqual(steps, STEPS);
    assert.equal(r.switched, true);
    stored.push(...(await batch(t.bus, 'after', 40)));
    await assertNewGenerationComplete(t.bus, stored, 2);
  } finally {
    await t.done();
  }
}

describe('projection: nothing is lost at the switch', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop({ removeStore: true }));

  // catchUpEvents 0: the replay reads to the end before it switches; 256: it switches with events left
  for (const catchUpEvents of [0, 256]) {
    it(`events stored at each step of the switch, each handled by the live projector before the rebuild goes on, are all in the new generation (catchUpEvents ${catchUpEvents})`,
      () => rebuildWithBatchAtEachStep(nats.url, catchUpEvents));
  }

  it('events stored at each step without waiting for the projector (in flight while the rebuild goes on) are all in the new generation', async () => {
    const t = await liveBus(nats.url);
    try {
      const stored = await publishMany(t.bus, 1_000, 100);
      await projectorCaughtUp(t.bus);
      const r = await rebuildProjection({ bus: t.bus, concurrency: 8, onStep: async (step) => void stored.push(...(await batch(t.bus, step, 40))) });
      assert.equal(r.switched, true);
      await assertNewGenerationComplete(t.bus, stored, 2);
    } finally {
      await t.done();
    }
  });

  it('hold, then burst: 1 000 events when the rebuild is about to switch and 500 right after it — the new generation equals what the events say', async () => {
    const t = await liveBus(nats.url);
    try {
      const stored = await publishMany(t.bus, 3_000, 300);
      await projectorCaughtUp(t.bus, 30_000);
      const bursts: Promise<Stored[]>[] = [];
      const r = await rebuildProjection({
        bus: t.bus, concurrency: 16, progressEveryMs: 5,
        onProgress: (p) => {
          // nothing published while it replays (hold), then a burst as it nears the end, timed off its own reports
          if (p.phase === 'replaying' && p.lastSeq - p.seq < 400 && bursts.length === 0) bursts.push(publishMany(t.bus, 1_000, 300, 20_000));
        },
        onStep: (step) => {
          if (step === 'switched') bursts.push(publishMany(t.bus, 500, 300, 30_000)); // not awaited: it races the final pass
        },
      });
      assert.equal(r.switched, true);
      assert.equal(bursts.length, 2, 'both bursts were started');
      for (const b of bursts) stored.push(...(await b));
      await assertNewGenerationComplete(t.bus, stored, 2);
    } finally {
      await t.done();
    }
  });

  it('the new generation equals what the events say for random loads with bursts at every step of the switch (fast-check)', async () => {
    const events = (max: number) => fc.array(fc.tuple(fc.nat({ max: 24 }), fc.integer({ min: 1, max: 9 })), { minLength: 1, maxLength: max });
    const burst = fc.record({
      at: fc.constantFrom<RebuildStep | 'progress'>('progress', ...STEPS),
      events: events(150),
      settle: fc.boolean(), // the rebuild waits until the projector has handled the burst, or not
    });
    const load = fc.record({
      backlog: events(400),
      bursts: fc.array(burst, { maxLength: 6 }),
      concurrency: fc.constantFrom(1, 8, 64),
      catchUpEvents: fc.constantFrom(0, 8, 256),
    });
    await fc.assert(fc.asyncProperty(load, async (l) => {
      const t = await liveBus(nats.url);
      try {
        const stored = await publishLoad(t.bus, l.backlog, 'backlog');
        const inFlight: Promise<unknown>[] = [];
        const fire = async (at: RebuildStep | 'progress') => {
          for (const [i, b] of l.bursts.entries()) {
            if (b.at !== at) continue;
            const p = publishLoad(t.bus, b.events, `${at}-${i}`).then((s) => void stored.push(...s));
            if (!b.settle || at === 'progress') inFlight.push(p);
            else {
              await p;
              await projectorCaughtUp(t.bus);
            }
          }
        };
        let progressFired = false;
        const r = await rebuildProjection({
          bus: t.bus, concurrency: l.concurrency, catchUpEvents: l.catchUpEvents, progressEveryMs: 5, onStep: fire,
          onProgress: (p) => {
            if (p.phase !== 'replaying' || progressFired) return;
            progressFired = true;
            inFlight.push(fire('progress'));
          },
        });
        assert.equal(r.switched, true);
        await Promise.all(inFlight);
        await assertNewGenerationComplete(t.bus, stored, 2);
      } finally {
        await t.done();
      }
    }), { numRuns: 25, endOnFailure: true });
  });

  it('an apply held up across the switch still reaches the new generation: a write to the old bucket never seeds the new one\'s cache', async () => {
    const bus = await busOn(nats.url);
    try {
      let hold: Promise<void> | undefined;
      let heldBucket = '';
      // the bus as the projector sees it, except that the next open of `heldBucket` waits for `hold`
      const held: Bus = Object.assign(Object.create(bus) as Bus, {
        kv: (bucket: string) => {
          const h = bucket === heldBucket ? hold : undefined;
          if (!h) return bus.kv(bucket);
          hold = undefined;
          return h.then(() => bus.kv(bucket));
        },
      });
      const projector = createProjector({ bus: held, log: silent });
      const e = (id: string, version: number) => envelope({ source: 'crm', type: 'contact', id, version, data: { id } });
      await projector.apply(e('first', 1), 1); // generation 1 is made active
      const old = (await readActive(bus))!;
      // a rebuild's switch, by hand: generation 2 active
      const bucket2 = await createGeneration(bus, 2);
      await switchActive(bus, { generation: 2, bucket: bucket2, since: new Date().toISOString(), previous: 1, by: 'rebuild' }, old.revision);
      let release!: () => void;
      hold = new Promise<void>((r) => (release = r));
      heldBucket = old.value.bucket;
      const x = projector.apply(e('x', 5), 10); // on its way into generation 1, held
      await projector.apply(e('y', 1), 11); // sees the switch: the projector now writes into generation 2
      assert.equal(projector.generation(), 2);
      release();
      await x;
      const got = await (await bus.kv(bucket2)).get(projectionKey('crm', 'contact', 'x'));
      assert.equal(got?.operation === 'PUT' ? got.json<{ version: number }>().version : undefined, 5, 'x is in generation 2');
    } finally {
      await dropAll(bus);
      await bus.close();
    }
  });

  it('pointer reads go to the control bucket\'s stream leader, never a direct get (on R3 a replica that is behind may answer one)', async () => {
    const t = await liveBus(nats.url);
    const spy = await busOn(nats.url);
    try {
      const control = `KV_${t.bus.names.kv.projection}`;
      const direct: string[] = [];
      let leaderReads = 0;
      spy.nc.subscribe('$JS.API.DIRECT.GET.>', { callback: (_err, m) => void direct.push(m.subject) });
      spy.nc.subscribe(`$JS.API.STREAM.MSG.GET.${control}`, { callback: () => void leaderReads++ });
      await spy.nc.flush();
      const stored = await publishMany(t.bus, 300, 30);
      await projectorCaughtUp(t.bus);
      await rebuildProjection({ bus: t.bus, onStep: async () => void stored.push(...(await publishMany(t.bus, 20, 30, 1_000))) });
      await assertNewGenerationComplete(t.bus, stored, 2);
      const onControl = new RegExp(`^\\$JS\\.API\\.DIRECT\\.GET\\.${control}(\\.|$)`);
      assert.deepEqual(direct.filter((subject) => onControl.test(subject)), []);
      assert.ok(leaderReads > 0, 'the pointer was read');
    } finally {
      await spy.close();
      await t.done();
    }
  });
});

describe('projection: nothing is lost at the switch, on a 3-node cluster with R3 buckets', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster(3);
  });
  after(() => cluster.stop({ removeStore: true }));

  it('events stored at each step of the switch, each handled by the live projector before the rebuild goes on, are all in the new generation (R3)',
    () => rebuildWithBatchAtEachStep(cluster.url, 0, 3));

  it('a rebuild\'s chains of writes are stored whole on R3, four in flight (each message checked against its predecessor in log order)', async () => {
    const bus = await busOn(cluster.url, undefined, 'projection-test', 3);
    try {
      const bucket = await createGeneration(bus, 1);
      const send = casBatchWriter(bus.nc, bucket);
      const chains = Array.from({ length: 4 }, (_, c) => send(Array.from({ length: 256 }, (_, i) => ({ key: `k${c}.${i}`, data: 'x', revision: 0 }))));
      const revisions = (await Promise.all(chains)).flat();
      assert.equal(new Set(revisions).size, 1_024, 'every write its own revision');
      assert.equal((await bus.jsm.streams.info(`KV_${bucket}`)).state.messages, 1_024);
    } finally {
      await dropAll(bus);
      await bus.close();
    }
  });
});
