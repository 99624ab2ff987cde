// The demo sources `npm start` runs (README → Demo), beside the schemas and connectors. Real deployments declare their own.
import { BusError } from '@bus/errors';
import { defineSource } from '@bus/intake';
import { z } from 'zod';
import { stripeEventsListing } from './stripe-events.js';

/** A Stripe event's type: a thin (v2) event names the v1 type it stands for (`v1.customer.updated`). */
const stripeType = (type: string) => type.replace(/^v1\./, '');
/** Stripe's `created`: seconds (snapshot events) or an ISO time (thin v2 events). */
const stripeSeconds = (created: number | string) => (typeof created === 'number' ? created : Math.floor(Date.parse(created) / 1000));

/**
 * Stripe events: `customer.*` become contacts, everything else names its object. Snapshot events carry the object
 * (`data.object`), thin events only its id (`related_object`): the crm maps customers from the current record,
 * refetched from Stripe's API (`GET /v1/customers/{id}`) with the source's one client, which the events listing shares.
 */
export const stripe = defineSource({
  name: 'stripe',
  verification: { scheme: 'stripe' },
  secretsEnv: 'STRIPE_WEBHOOK_SECRET',
  schema: z.object({
    id: z.string().min(1),
    type: z.string().min(1),
    created: z.union([z.number().int(), z.string().refine((t) => Number.isFinite(Date.parse(t)), 'an ISO time')]),
    data: z.object({ object: z.looseObject({ id: z.string().min(1), object: z.string().optional() }) }).optional(),
    related_object: z.looseObject({ id: z.string().min(1), type: z.string().min(1) }).optional(),
  }).loose().refine((p) => p.data || p.related_object, 'a Stripe event carries data.object (snapshot) or related_object (thin)'),
  deliveryId: ({ payload }) => payload.id,
  eventType: ({ payload }) => stripeType(payload.type),
  entity: ({ payload }) => {
    const type = stripeType(payload.type);
    const object = payload.data?.object ?? { id: payload.related_object!.id, object: payload.related_object!.type };
    return { type: type.startsWith('customer.') ? 'contact' : (object.object ?? 'object'), id: object.id };
  },
  // Stripe has no per-object version; `created` (seconds) orders its events: a stamp, not a sequence
  version: ({ payload }) => stripeSeconds(payload.created),
  versionKind: 'stamp',
  occurredAt: ({ payload }) => new Date(stripeSeconds(payload.created) * 1000),
  // Stripe's API from STRIPE_API_BASE with STRIPE_API_KEY: the listing and refetch share it (its read limit, its failure classes)
  api: { baseUrlEnv: 'STRIPE_API_BASE', defaultBaseUrl: 'https://api.stripe.com', auth: { kind: 'bearer', env: 'STRIPE_API_KEY' }, rateLimit: { ratePerSec: 20, burst: 10 } },
  refetch: {
    async fetch(entity, { client, event, signal }) {
      if (entity.type !== 'contact') throw new BusError('STRIPE_REFETCH_UNSUPPORTED', 'business', `the stripe source refetches customers only, not ${entity.type} ${entity.id}`);
      const r = await client.get(`/v1/customers/${encodeURIComponent(entity.id)}`, { signal });
      // a customer has no version of its own: the state read now is as of Stripe's clock (its Date header), never older than the event.
      // Whole seconds: a second change read within the same second as the last one delivered gets the same version and is
      // skipped as a duplicate — the target keeps the earlier state until the next change or reconcile's compare repairs it.
      const version = Math.max(event.version, Math.floor((r.dateMs ?? Date.now()) / 1000));
      const customer = r.body as { id: string; deleted?: boolean };
      if (r.status === 404 || customer?.deleted) return { gone: true, version };
      const sent = event.data as { id?: string; type?: string };
      return { version, data: { id: sent.id ?? event.id, type: event.type, created: version, data: { object: customer } } };
    },
  },
  // Stripe retries a webhook for up to 3 days, and the events listing looks back STRIPE_EVENTS_LOOKBACK_SEC (3 days)
  dedupHorizon: '3d',
  // missed webhooks: GET /v1/events (not polled while STRIPE_API_KEY is unset)
  changes: stripeEventsListing(),
});

/** GitHub: the event name is in X-GitHub-Event, the delivery id in X-GitHub-Delivery. */
export const github = defineSource({
  name: 'github',
  verification: { scheme: 'github' },
  secretsEnv: 'GITHUB_WEBHOOK_SECRET',
  schema: z.object({
    action: z.string().optional(),
    repository: z.looseObject({ id: z.number(), full_name: z.string() }),
  }).loose(),
  deliveryId: ({ signedDeliveryId }) => signedDeliveryId,
  eventType: ({ headers, payload }) => {
    const name = String(headers['x-github-event'] ?? 'unknown');
    return payload.action ? `${name}.${payload.action}` : name;
  },
  entity: ({ payload }) => ({ type: 'repository', id: String(payload.repository.id) }),
  version: () => Date.now(),
  versionKind: 'stamp',
  occurredAt: () => undefined,
  // GitHub does not retry by itself; a person may redeliver a delivery of the past 3 days
  dedupHorizon: '3d',
});

/** Standard Webhooks (Svix and others): the organisation's demo `order`/`contact` events. */
export const standard = defineSource({
  name: 'standard',
  verification: { scheme: 'standard-webhooks' },
  secretsEnv: 'STANDARD_WEBHOOK_SECRET',
  schema: z.object({
    type: z.string().regex(/^[a-z_]+\.[a-z_.]+$/),
    timestamp: z.string().optional(),
    data: z.looseObject({
      id: z.string().min(1),
      version: z.number().int().min(1),
    }),
  }),
  deliveryId: ({ signedDeliveryId }) => signedDeliveryId,
  eventType: ({ payload }) => payload.type,
  entity: ({ payload }) => ({ type: payload.type.split('.')[0]!, id: payload.data.id }),
  version: ({ payload }) => payload.data.version,
  occurredAt: ({ payload }) => payload.timestamp,
  data: ({ payload }) => payload.data,
  // Svix's schedule ends about 28 h after the first attempt; a day of margin
  dedupHorizon: '2d', // the catalog's contact.updated / order.created schemas describe this part
});

export const demoSources = [stripe, github, standard];
