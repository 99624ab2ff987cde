// The raw counterpart of the end-to-end figure (the README's "raw two-hop" column), plain NATS v3
// client, no bus code: this process publishes to stream A → a worker process (decode,
// publish to stream B with a msg id, ack) → this process consumes B and times each message.
import { fileURLToPath } from 'node:url';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { forkTracked, stopChild, waitForMessage } from './children.js';
import { driveMax, driveSteady, Run } from './load.js';

export interface TwoHop {
  /** `count` messages, at most `window` PubAcks outstanding at the publisher. */
  max(messages: Uint8Array[], window: number): Promise<Run>;
  /** The messages at `ratePerSec`, open loop. */
  steady(messages: Uint8Array[], ratePerSec: number): Promise<Run & { stalls: number; lagMaxMs: number }>;
  close(): Promise<void>;
}

export async function startTwoHop(url: string, prefix: string, workerWindow = 256): Promise<TwoHop> {
  const nc = await connect({ servers: url, name: 'bench-two-hop' });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const P = prefix.toUpperCase();
  const [streamA, streamB] = [`${P}_HOP_A`, `${P}_HOP_B`];
  // what a bus stream has too: file storage (the default) and a dedup window for the msg ids
  await jsm.streams.add({ name: streamA, subjects: [`${prefix}.hop.a`], duplicate_window: 120e9 });
  await jsm.streams.add({ name: streamB, subjects: [`${prefix}.hop.b`], duplicate_window: 120e9 });
  const consumerCfg = { ack_policy: AckPolicy.Explicit, max_ack_pending: 10_000, ack_wait: 30e9 };
  await jsm.consumers.add(streamA, { durable_name: 'worker', ...consumerCfg });
  await jsm.consumers.add(streamB, { durable_name: 'sink', ...consumerCfg });

  const worker = forkTracked(fileURLToPath(new URL('./two-hop-worker.js', import.meta.url)), [], {
    env: { ...process.env, NATS_URL: url, STREAM_A: streamA, DURABLE: 'worker', SUBJECT_B: `${prefix}.hop.b`, WINDOW: String(workerWindow) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await waitForMessage(worker, (m) => ((m as { type?: string })?.type === 'ready' ? true : undefined), 15_000, 'two-hop worker');

  // the far end: one consumer for every phase; Bench-Id "<phase>.<i>" says whose message it is
  const runs = new Map<string, Run>();
  const sink = await (await js.consumers.get(streamB, 'sink')).consume({ max_messages: 512 });
  void (async () => {
    for await (const m of sink) {
      const id = m.headers?.get('Bench-Id') ?? '';
      const dot = id.indexOf('.');
      runs.get(id.slice(0, dot))?.arrive(Number(id.slice(dot + 1)));
      m.ack();
    }
  })();

  const sender = (tag: string, messages: Uint8Array[]) => (i: number) => {
    const h = natsHeaders();
    h.set('Bench-Id', `${tag}.${i}`);
    return js.publish(`${prefix}.hop.a`, messages[i]!, { msgID: `${tag}.${i}`, headers: h }).then(() => undefined);
  };

  return {
    ...twoHopPhases(runs, 'p', sender),
    async close() {
      await stopChild(worker);
      await sink.close();
      await nc.close();
    },
  };
}

/**
 * The max and steady phases of a two-hop pipeline: each phase a Run under a new tag (`<letter><n>`),
 * registered in `runs` so the far end can time its arrivals, sent by `sender`, settled.
 */
export function twoHopPhases(runs: Map<string, Run>, letter: string, sender: (tag: string, messages: Uint8Array[]) => (i: number) => Promise<void>): Omit<TwoHop, 'close'> {
  let phase = 0;
  const start = (n: number) => {
    const tag = `${letter}${++phase}`;
    const run = new Run(n);
    runs.set(tag, run);
    return { tag, run };
  };
  return {
    async max(messages, window) {
      const { tag, run } = start(messages.length);
      await driveMax(run, window, sender(tag, messages));
      await run.settle();
      return run;
    },
    async steady(messages, ratePerSec) {
      const { tag, run } = start(messages.length);
      const s = await driveSteady(run, ratePerSec, 256, sender(tag, messages));
      await run.settle();
      return Object.assign(run, s);
    },
  };
}
