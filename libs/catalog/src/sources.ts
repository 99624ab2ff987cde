// The demo sources `npm start` runs (README → Demo), beside the schemas and connectors. Real deployments declare their own.
import { defineSource } from '@bus/intake';
import { z } from 'zod';
import { stripeEventsListing } from './stripe-events.js';

/** Stripe events: `customer.*` become contacts, everything else names its object. */
export const stripe = defineSource({
  name: 'stripe',
  verification: { scheme: 'stripe' },
  secretsEnv: 'STRIPE_WEBHOOK_SECRET',
  schema: z.object({
    id: z.string().min(1),
    type: z.string().min(1),
    created: z.number().int(),
    data: z.object({ object: z.looseObject({ id: z.string().min(1), object: z.string().optional() }) }),
  }).loose(),
  deliveryId: ({ payload }) => payload.id,
  eventType: ({ payload }) => payload.type,
  entity: ({ payload }) => ({ type: payload.type.startsWith('customer.') ? 'contact' : (payload.data.object.object ?? 'object'), id: payload.data.object.id }),
  // Stripe has no per-object version; `created` (seconds) orders its events: a stamp, not a sequence
  version: ({ payload }) => payload.created,
  versionKind: 'stamp',
  occurredAt: ({ payload }) => new Date(payload.created * 1000),
  // Stripe retries a webhook for up to 3 days, and the events listing looks back STRIPE_EVENTS_LOOKBACK_SEC (3 days)
  dedupHorizon: '3d',
  // missed webhooks: GET /v1/events from STRIPE_API_BASE with STRIPE_API_KEY (not polled while it is unset)
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
