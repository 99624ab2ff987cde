// Shared set-up for intake's integration tests (not exported).
import { type Bus, connectBus, decodeDeadLetter, type DeadLetter, loadBusConfig, readStream } from '@bus/bus';
import { decodeEnvelope, type Envelope } from '@bus/envelope';
import { createLogger, createMetrics, Readiness } from '@bus/observability';
import { topology } from '@bus/streams';
import { z } from 'zod';
import { createEventsApi, parseApiTokens } from './events-api.js';
import { createHttpApp } from './http.js';
import { createIntake } from './intake.js';
import { createIntakeMetrics } from './metrics.js';
import { type AnySource, defineSource } from './source.js';

export const WH_SECRET = `whsec_${Buffer.from('test-secret-for-standard-webhooks').toString('base64')}`;
export const WH_SECRET_OLD = `whsec_${Buffer.from('old-secret-for-standard-webhooks!').toString('base64')}`;
export const env = {
  STANDARD_WEBHOOK_SECRET: `${WH_SECRET_OLD},${WH_SECRET}`,
  STRIPE_WEBHOOK_SECRET: 'whsec_stripe_test',
  GITHUB_WEBHOOK_SECRET: 'gh-secret',
};

export function standardSource(strict = true): AnySource {
  const data = z.looseObject({ id: z.string(), version: z.number().int(), email: strict ? z.email() : z.string() });
  return defineSource({
    name: 'standard', verification: { scheme: 'standard-webhooks' }, secretsEnv: 'STANDARD_WEBHOOK_SECRET', maxBodyBytes: 4096,
    schema: z.object({ type: z.string(), data }),
    deliveryId: ({ signedDeliveryId }) => signedDeliveryId,
    eventType: ({ payload }) => payload.type, entity: ({ payload }) => ({ type: 'contact', id: payload.data.id }),
    version: ({ payload }) => payload.data.version, occurredAt: () => undefined,
  });
}
export const stripeSource = defineSource({
  name: 'stripe', verification: { scheme: 'stripe' }, secretsEnv: 'STRIPE_WEBHOOK_SECRET',
  schema: z.looseObject({ id: z.string(), type: z.string(), created: z.number(), data: z.object({ object: z.looseObject({ id: z.string() }) }) }),
  deliveryId: ({ payload }) => payload.id, eventType: ({ payload }) => payload.type,
  entity: ({ payload }) => ({ type: 'contact', id: payload.data.object.id }), version: ({ payload }) => payload.created,
  occurredAt: ({ payload }) => new Date(payload.created * 1000),
});
export const githubSource = defineSource({
  name: 'github', verification: { scheme: 'github' }, secretsEnv: 'GITHUB_WEBHOOK_SECRET',
  schema: z.looseObject({ repository: z.looseObject({ id: z.number() }) }),
  deliveryId: ({ signedDeliveryId }) => signedDeliveryId, eventType: ({ headers }) => String(headers['x-github-event']),
  entity: ({ payload }) => ({ type: 'repository', id: String(payload.repository.id) }), version: () => 1, occurredAt: () => undefined,
});

export const silent = createLogger({ service: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export async function ingestFor(url: string, prefix: string, sources: AnySource[] = [standardSource(), stripeSource, githubSource], duplicateWindowSec = 60) {
  const config = loadBusConfig({ NATS_URL: url, BUS_PREFIX: prefix, BUS_PUBLISH_TIMEOUT_MS: '1000' });
  const metrics = createMetrics('ingest-test');
  const readiness = new Readiness();
  const bus = await connectBus({ config, name: 'ingest-test', log: silent, metrics, readiness });
  await bus.applyTopology(topology({ prefix, eventsDuplicateWindowSec: duplicateWindowSec }));
  const intakeMetrics = createIntakeMetrics(metrics.registry);
  const intake = createIntake({ bus, sources, env, log: silent, metrics: intakeMetrics, retryAfterSec: 2 });
  // old-token and api-token: a rotation (same sources); service-token: no list, so any source but the webhook ones
  const eventsApi = createEventsApi({ bus, tokens: parseApiTokens('old-token:shop|billing,api-token:shop|billing,service-token'),
    webhookSources: sources.map((s) => s.name), log: silent, metrics: intakeMetrics });
  const app = createHttpApp({ intake, eventsApi, registry: metrics.registry, readiness });
  return { bus, intake, app, metrics, readiness };
}

/** Every message on a stream subject, decoded. */
export async function storedOn<T>(bus: Bus, stream: string, filter: (subject: string) => boolean, decode: (b: Uint8Array) => T): Promise<{ subject: string; msgId?: string; value: T }[]> {
  const out: { subject: string; msgId?: string; value: T }[] = [];
  for await (const m of readStream(bus.jsm, stream, { subject: filter })) out.push({ subject: m.subject, msgId: m.header?.get('Nats-Msg-Id'), value: decode(m.data) });
  return out;
}

export const events = (bus: Bus, source?: string) =>
  storedOn<Envelope>(bus, bus.names.streams.events, (s) => !source || s.startsWith(bus.names.subjects.event(source, '')), decodeEnvelope);
export const quarantined = (bus: Bus) =>
  storedOn<DeadLetter>(bus, bus.names.streams.dlq, (s) => s.startsWith(bus.names.subjects.dlq('ingest', '').slice(0, -1)), decodeDeadLetter);
