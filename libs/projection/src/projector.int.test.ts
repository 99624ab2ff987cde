import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bus, Consumption } from '@bus/bus';
import type { Envelope } from '@bus/envelope';
import { createMetrics } from '@bus/observability';
import { nanos } from '@nats-io/nats-core';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { createProjectionMetrics, createProjector, getEntity, PROJECTION_DURABLE, readActive, readProjection } from './index.js';
import { busOn, dropAll, entriesOf, envelope, expected, projectorCaughtUp, publish, publishMany, silent } from './test-support.js';

describe('projection: the live projector', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop({ removeStore: true }));

  it('applies the newest version; an older one is stale, the same one again a duplicate — each counted, none written', async () => {
    const bus = await busOn(nats.url);
    const metrics = createMetrics('projection-test');
    const projector = createProjector({ bus, log: silent, metrics: createProjectionMetrics(metrics.registry), concurrency: 1 });
    const running = await projector.start();
    try {
      const e = (version: number, name: string) => envelope({ source: 'crm', type: 'contact', id: 'c1', version, data: { name } });
      const v3 = e(3, 'three');
      await publish(bus, e(1, 'one'));
      await publish(bus, v3);
      await publish(bus, e(2, 'two')); // late: older than what is there
      await publish(bus, v3, `${v3.id}-again`); // the same event stored twice
      assert.equal(await publish(bus, v3), undefined, 'the same Nats-Msg-Id is not stored again');
      await projectorCaughtUp(bus);
      const got = await getEntity(bus, 'crm', 'contact', 'c1');
      assert.equal(got?.version, 3);
      assert.deepEqual(got?.fields, { name: 'three' });
      assert.equal(got?.eventId, v3.id);
      assert.equal(got?.eventTime, v3.occurredAt);
      assert.equal(got?.seq, 2);
      assert.deepEqual(projector.counts(), { applied: 2, stale: 1, duplicate: 1 });
      const text = await metrics.registry.metrics();
      assert.match(text, /projection_events_total\{outcome="stale",service="projection-test"\} 1/);
      assert.match(text, /projection_kv_writes_total\{service="projection-test"\} 2/, 'v1 and v3 written; v2 and v3 again not');
      assert.match(text, /projection_generation\{service="projection-test"\} 1/);
      assert.equal(await getEntity(bus, 'crm', 'contact', 'nobody'), undefined);
    } finally {
      await running.stop();
      await dropAll(bus);
      await bus.close();
    }
  });

  it('two projector processes on the same events end in the right state (compare-and-set on every entry)', async () => {
    const prefix = uniquePrefix();
    const buses: Bus[] = [await busOn(nats.url, prefix, 'projector-a'), await busOn(nats.url, prefix, 'projector-b')];
    const projectors = buses.map((bus) => createProjector({ bus, log: silent, concurrency: 16 }));
    const running: Consumption[] = [];
    try {
      for (const p of projectors) running.push(await p.start());
      // 400 events over 4 entities: many versions of one entity are in flight at once in both processes
      const stored: { env: Envelope; seq: number }[] = [];
      const all: Envelope[] = [];
      for (let i = 0; i < 400; i++) {
        all.push(envelope({ source: i % 2 ? 'crm' : 'shop', type: 'contact', id: `c${i % 4}`, version: 1 + ((i * 37) % 50), data: { i } }));
      }
      const seqs = await Promise.all(all.map((env, i) => publish(buses[0]!, env, i % 10 === 0 ? `${env.id}-copy` : undefined)));
      seqs.forEach((seq, i) => {
        if (seq !== undefined) stored.push({ env: all[i]!, seq });
      });
      await projectorCaughtUp(buses[0]!);
      const active = await readActive(buses[0]!);
      assert.deepEqual(await entriesOf(buses[0]!, active!.value.bucket), expected(stored));
      const [a, b] = projectors.map((p) => p.counts());
      const handled = (c: typeof a) => c!.applied + c!.stale + c!.duplicate;
      assert.equal(handled(a) + handled(b), 400);
      assert.ok(handled(a) > 0 && handled(b) > 0, `both processes took part (${handled(a)} / ${handled(b)})`);
    } finally {
      await Promise.all(running.map((r) => r.stop()));
      await dropAll(buses[0]!);
      await Promise.all(buses.map((b) => b.close()));
    }
  });

  it('a backlog of few entities is written once per entity per batch of handlers, ending in the state the events say', async () => {
    const bus = await busOn(nats.url);
    let running: Consumption | undefined;
    try {
      const stored = await publishMany(bus, 2_000, 10);
      const projector = createProjector({ bus, log: silent });
      running = await projector.start();
      await projectorCaughtUp(bus, 30_000);
      assert.deepEqual(await entriesOf(bus, (await readActive(bus))!.value.bucket), expected(stored));
      const c = projector.counts();
      assert.equal(c.applied + c.stale + c.duplicate, stored.length);
      assert.ok(projector.writes() < stored.length / 4, `${projector.writes()} writes for ${stored.length} events over 10 entities`);
    } finally {
      await running?.stop();
      await dropAll(bus);
      await bus.close();
    }
  });

  it('a projector that dies between its writes and its acknowledgements loses nothing: no message is acknowledged before its write; another process re-applies the rest', async () => {
    const prefix = uniquePrefix();
    const [busA, busB] = [await busOn(nats.url, prefix, 'projector-a'), await busOn(nats.url, prefix, 'projector-b')];
    const bind = <T extends object>(t: T, swap: Record<string | symbol, unknown>) => new Proxy(t, {
      get: (o, p) => (p in swap ? swap[p] : typeof Reflect.get(o, p) === 'function' ? (Reflect.get(o, p) as (...a: unknown[]) => unknown).bind(o) : Reflect.get(o, p)),
    });
    // A's projection writes wait here until the test lets them reach the server
    const held: (() => void)[] = [];
    const ncA = bind(busA.nc, {
      publish: (subject: string, ...rest: unknown[]) => {
        const send = () => (busA.nc.publish as (...a: unknown[]) => void)(subject, ...rest);
        if (subject.startsWith('$KV.')) held.push(send);
        else send();
      },
    });
    // B keeps the short ack wait set below (its start would put the definition's 30 s back), so A's messages come back at once
    const consumersB = bind(busB.jsm.consumers, { update: (stream: string, durable: string) => busB.jsm.consumers.info(stream, durable).then((i) => i.config) });
    const viewB = Object.assign(Object.create(busB) as Bus, { jsm: bind(busB.jsm, { consumers: consumersB }) });
    let runningB: Consumption | undefined;
    try {
      const stored = await publishMany(busB, 300, 30);
      const a = createProjector({ bus: Object.assign(Object.create(busA) as Bus, { nc: ncA }), log: silent, concurrency: 64 });
      (await a.start()).finished.catch(() => undefined); // ends with the connection, below
      const events = busA.names.streams.events;
      const info = () => busB.jsm.consumers.info(events, PROJECTION_DURABLE);
      await waitFor(async () => held.length > 0 && (await info()).num_ack_pending >= 64, { what: 'A to hold 64 events with their writes on the way' });
      assert.equal((await info()).ack_floor.stream_seq, 0, 'nothing is acknowledged while its write is not');
      // half of the writes reach the server; A dies before it hears back (so before any acknowledgement)
      for (const send of held.splice(0, Math.ceil(held.length / 2))) send();
      await busA.nc.close();
      const bucket = (await readActive(busB))!.value.bucket;
      assert.ok(Object.keys(await entriesOf(busB, bucket)).length > 0, 'some writes were stored');
      assert.equal((await info()).ack_floor.stream_seq, 0, 'none of their messages was acknowledged');
      await busB.jsm.consumers.update(events, PROJECTION_DURABLE, { ack_wait: nanos(500) });
      const b = createProjector({ bus: viewB, log: silent });
      runningB = await b.start();
      await projectorCaughtUp(busB, 30_000);
      assert.deepEqual(await entriesOf(busB, bucket), expected(stored));
      assert.ok(b.counts().duplicate > 0, 'what A had written came again and was re-applied as a duplicate');
    } finally {
      await runningB?.stop();
      await dropAll(busB);
      await busB.close();
      await busA.close().catch(() => undefined);
    }
  });

  it('readProjection pages through the active generation, by source and entity type; nothing before any projection exists', async () => {
    const bus = await busOn(nats.url);
    let running: Consumption | undefined;
    try {
      const none = [];
      for await (const e of readProjection(bus)) none.push(e);
      assert.deepEqual(none, []);
      running = await createProjector({ bus, log: silent }).start();
      for (const source of ['crm', 'shop']) {
        for (const type of ['contact', 'order']) {
          for (let i = 0; i < 300; i++) await publish(bus, envelope({ source, type, id: `id.${i}`, version: 1, data: { i } }));
        }
      }
      await projectorCaughtUp(bus, 30_000);
      const count = async (f: Parameters<typeof readProjection>[1]) => {
        let n = 0;
        for await (const e of readProjection(bus, f)) {
          if (f?.source) assert.equal(e.source, f.source);
          if (f?.entityType) assert.equal(e.entity.type, f.entityType);
          n++;
        }
        return n;
      };
      assert.equal(await count({}), 1200);
      assert.equal(await count({ source: 'crm' }), 600);
      assert.equal(await count({ entityType: 'order' }), 600);
      assert.equal(await count({ source: 'shop', entityType: 'contact' }), 300);
      assert.equal(await count({ source: 'nobody' }), 0);
      // stopping early leaves nothing behind: the reading consumer is deleted
      for await (const _ of readProjection(bus)) break;
      const kvStream = `KV_${(await readActive(bus))!.value.bucket}`;
      for await (const c of bus.jsm.consumers.list(kvStream)) assert.fail(`consumer ${c.name} left on ${kvStream}`);
      await assert.rejects(readProjection(bus, { source: 'a.b' }).next(), /must be one subject token/);
    } finally {
      await running?.stop();
      await dropAll(bus);
      await bus.close();
    }
  });
});
