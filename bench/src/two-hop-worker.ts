// The middle of the raw two-hop pipeline, in its own process like a bus service: plain NATS
// v3 client, no bus code. Per message from stream A: msgpack decode, publish the bytes to
// stream B with a msg id, ack once B has stored it. Up to WINDOW publishes in flight.
// env: NATS_URL, STREAM_A, DURABLE, SUBJECT_B, WINDOW
import { decode } from '@bus/envelope';
import { jetstream } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';

const env = process.env;
const nc = await connect({ servers: env.NATS_URL!, name: 'bench-two-hop-worker' });
const js = jetstream(nc);
const consumer = await js.consumers.get(env.STREAM_A!, env.DURABLE!);
const subjectB = env.SUBJECT_B!;
const window = Number(env.WINDOW ?? 256);
let inFlight = 0;
let freed: (() => void) | undefined;

const msgs = await consumer.consume({ max_messages: 512 });
process.send?.({ type: 'ready' });
process.once('SIGTERM', async () => {
  await msgs.close();
  await nc.drain();
  process.exit(0);
});
process.once('disconnect', () => process.exit(0)); // the bench is gone (even SIGKILLed): so is this

for await (const m of msgs) {
  while (inFlight >= window) await new Promise<void>((r) => (freed = r));
  decode(m.data); // the work every real hop does at least once
  const h = natsHeaders();
  h.set('Bench-Id', m.headers?.get('Bench-Id') ?? '');
  inFlight++;
  js.publish(subjectB, m.data, { msgID: `b.${m.headers?.get('Nats-Msg-Id') ?? m.seq}`, headers: h })
    .then(() => m.ack(), () => m.nak(100))
    .finally(() => {
      inFlight--;
      const f = freed;
      freed = undefined;
      f?.();
    });
}
