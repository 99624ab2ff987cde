// One of three HTTP handlers for the ingest benchmark, in its own process:
//   bare   — answers 202 without storing (the HTTP ceiling)
//   puback — publishes to JetStream and answers after the PubAck (the store-before-2xx ceiling)
//   ingest — the real thing: verify, parse, validate, dedup, store, audit
// env: NATS_URL, BUS_PREFIX, VARIANT, STANDARD_WEBHOOK_SECRET
import { connectBus, loadBusConfig } from '@bus/bus';
import { createHttpApp, createIntake, createIntakeMetrics, defineSource } from '@bus/intake';
import { createLogger, createMetrics, Readiness } from '@bus/observability';
import Fastify from 'fastify';
import { z } from 'zod';

const variant = process.env.VARIANT ?? 'ingest';
const log = createLogger({ service: 'bench', level: 'silent' });
const bus = await connectBus({ config: loadBusConfig(), name: 'bench', log });
await bus.applyTopology();

const source = defineSource({
  name: 'standard', verification: { scheme: 'standard-webhooks' }, secretsEnv: 'STANDARD_WEBHOOK_SECRET',
  schema: z.object({ type: z.string(), data: z.looseObject({ id: z.string(), version: z.number().int() }) }),
  deliveryId: ({ signedDeliveryId }) => signedDeliveryId, eventType: ({ payload }) => payload.type,
  entity: ({ payload }) => ({ type: 'contact', id: payload.data.id }), version: ({ payload }) => payload.data.version, occurredAt: () => undefined,
});

let app: import('fastify').FastifyInstance;
if (variant === 'ingest') {
  const metrics = createMetrics('bench');
  const intake = createIntake({ bus, sources: [source], env: process.env, log, metrics: createIntakeMetrics(metrics.registry) });
  app = createHttpApp({ intake, registry: metrics.registry, readiness: new Readiness() });
} else {
  const plain = Fastify();
  app = plain;
  plain.removeAllContentTypeParsers();
  plain.addContentTypeParser('*', { parseAs: 'buffer' }, (_r, b, done) => done(null, b));
  const subject = bus.names.subjects.event('standard', 'contact.updated');
  plain.post('/webhooks/standard', async (req, reply) => {
    if (variant === 'puback') await bus.publish(subject, req.body as Buffer, { msgId: String(req.headers['webhook-id']) });
    return reply.status(202).send({ status: 'stored' });
  });
}
await app.listen({ port: 0, host: '127.0.0.1' });
console.log(`listening ${(app.server.address() as { port: number }).port}`);
process.once('disconnect', () => process.exit(0)); // the bench is gone (even SIGKILLed): so is this
process.on('SIGTERM', async () => {
  await app.close();
  await bus.close();
  process.exit(0);
});
