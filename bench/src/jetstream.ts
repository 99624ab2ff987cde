// Raw JetStream vs libs/bus publish() / consume(): what the library costs.
import { type Bus, connectBus, done, loadBusConfig } from '@bus/bus';
import { createEnvelope, decodeEnvelope, encodeEnvelope, envelopeHeaders } from '@bus/envelope';
import { createLogger } from '@bus/observability';
import { topology, workerConsumer } from '@bus/streams';
import { jetstream, jetstreamManager, AckPolicy } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { ensureConsumer } from '@bus/bus';
import { type Figure, percentile } from './stats.js';

const log = createLogger({ service: 'bench', level: 'silent' });

function payloadEnvelope(i: number) {
  // ~1 KiB msgpack, like the README's Benchmarks figures
  return createEnvelope(
    { type: 'order.created', entity: { type: 'order', id: `o-${i % 1000}` }, version: i + 1, data: { note: 'x'.repeat(820), i } },
    { source: 'bench' },
  );
}

export interface JsBench {
  publishOneByOne(n: number): Promise<{ raw: Figure; bus: Figure }>;
  publishWindow(n: number, window: number): Promise<{ raw: Figure; bus: Figure }>;
  consume(n: number): Promise<{ raw: Figure; bus: Figure }>;
  close(): Promise<void>;
}

export async function jetstreamBench(url: string, prefix: string): Promise<JsBench> {
  const nc = await connect({ servers: url });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const bus: Bus = await connectBus({ config: loadBusConfig({ NATS_URL: url, BUS_PREFIX: prefix }), name: 'bench', log });
  await bus.applyTopology(topology({ prefix }));
  const n = bus.names;
  const rawStream = `${prefix.toUpperCase()}_RAW`;
  await jsm.streams.add({ name: rawStream, subjects: [`${prefix}.raw.>`], duplicate_window: 3_600e9 });
  let run = 0;

  // envelopes are built before the clock starts: raw is the plain client's cost, bus adds only its own
  let envelopes: ReturnType<typeof payloadEnvelope>[] = [];
  let encoded: { data: Uint8Array; id: string; headers: Record<string, string> }[] = [];
  const prepare = (count: number) => {
    envelopes = Array.from({ length: count }, (_, i) => payloadEnvelope(i));
    encoded = envelopes.map((e) => ({ data: encodeEnvelope(e), id: e.id, headers: envelopeHeaders(e) }));
  };
  const rawPublish = (i: number, r: number) => {
    const e = encoded[i]!;
    const h = natsHeaders();
    for (const [k, v] of Object.entries(e.headers)) if (v) h.set(k, v);
    return js.publish(`${prefix}.raw.${r}`, e.data, { msgID: e.id, headers: h });
  };
  const busPublish = (i: number) => bus.publishEnvelope(n.subjects.event('bench', `r${run}`), envelopes[i]!);

  async function timed(count: number, window: number, one: (i: number) => Promise<unknown>): Promise<Figure> {
    const lat: number[] = [];
    const started = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const i = next++;
        const t0 = performance.now();
        await one(i);
        lat.push(performance.now() - t0);
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
    const sec = (performance.now() - started) / 1000;
    return { what: '', rate: count / sec, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99) };
  }

  return {
    async publishOneByOne(count) {
      run++;
      prepare(count);
      const r = run;
      return { raw: await timed(count, 1, (i) => rawPublish(i, r)), bus: await timed(count, 1, busPublish) };
    },
    async publishWindow(count, window) {
      run++;
      prepare(count);
      const r = run;
      return { raw: await timed(count, window, (i) => rawPublish(i, r)), bus: await timed(count, window, busPublish) };
    },
    async consume(count) {
      run++;
      prepare(count);
      // fill both with `count` messages first, then time draining them
      const r = run;
      await timed(count, 256, (i) => rawPublish(i, r));
      const busSubject = n.subjects.event('bench', `c${r}`);
      await timed(count, 256, (i) => bus.publishEnvelope(busSubject, envelopes[i]!));

      const rawDurable = `raw${r}`;
      await jsm.consumers.add(rawStream, { durable_name: rawDurable, ack_policy: AckPolicy.Explicit, filter_subject: `${prefix}.raw.${r}`, max_ack_pending: 10_000 });
      const rawConsumer = await js.consumers.get(rawStream, rawDurable);
      let seen = 0;
      const t0 = performance.now();
      const msgs = await rawConsumer.consume({ max_messages: 512 });
      for await (const m of msgs) {
        decodeEnvelope(m.data); // same decode work as the bus does, for a fair comparison
        m.ack();
        if (++seen === count) break;
      }
      const raw: Figure = { what: '', rate: count / ((performance.now() - t0) / 1000) };
      await msgs.close();

      const durable = `bus${r}`;
      await ensureConsumer(bus.jsm, workerConsumer({ stream: n.streams.events, durable, description: 'bench', filterSubject: busSubject, maxAckPending: 10_000 }));
      let handled = 0;
      let finish!: () => void;
      const all = new Promise<void>((res) => (finish = res));
      const t1 = performance.now();
      const c = await bus.consume({ stream: n.streams.events, durable, stage: 'bench', decode: decodeEnvelope, concurrency: 256,
        handler: async () => {
          if (++handled === count) finish();
          return done();
        } });
      await all;
      const busFig: Figure = { what: '', rate: count / ((performance.now() - t1) / 1000) };
      await c.stop();
      return { raw, bus: busFig };
    },
    async close() {
      await bus.close();
      await nc.close();
    },
  };
}
