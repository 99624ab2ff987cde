// An adopter's catalog: a helpdesk (not in the demo) sends signed ticket webhooks; each ticket
// becomes an issue in the engineering team's issue tracker. Every service and the CLI load it with
// BUS_CATALOG=examples/ticketing/dist/catalog.js (README → "Your first connector").
import { defineConnector, SchemaRegistry } from '@bus/connectors';
import { type AnySource, defineSource } from '@bus/intake';
import { z } from 'zod';

/** A ticket as the helpdesk sends it in `data` (one schema for opened and updated). */
export const Ticket = z.object({
  id: z.string().min(1),
  /** The helpdesk counts every change of a ticket: 1, 2, 3 … */
  version: z.number().int().min(1),
  subject: z.string().min(1),
  status: z.enum(['open', 'pending', 'solved', 'closed']),
  priority: z.enum(['low', 'normal', 'high', 'urgent']).default('normal'),
  requester: z.object({ email: z.email() }),
});

/** The event types this catalog knows, each with the schema of its `data`. */
export const schemas = new SchemaRegistry().add('ticket.opened', 1, Ticket).add('ticket.updated', 1, Ticket);

/**
 * The helpdesk's webhooks: `POST /webhooks/helpdesk`, signed with HMAC-SHA256 over
 * `<timestamp>.<body>` (hex, `sha256=` before it) in `x-helpdesk-signature`, the unix time in
 * `x-helpdesk-timestamp` (5 minutes' tolerance) and the delivery id in `x-helpdesk-delivery`
 * (a redelivery with the same id is a duplicate). Secret(s) from HELPDESK_WEBHOOK_SECRET.
 */
export const helpdesk = defineSource({
  name: 'helpdesk',
  verification: {
    scheme: 'hmac',
    header: 'x-helpdesk-signature',
    prefix: 'sha256=',
    algorithm: 'sha256',
    encoding: 'hex',
    timestampHeader: 'x-helpdesk-timestamp',
    signedPayload: '{timestamp}.{body}',
    deliveryIdHeader: 'x-helpdesk-delivery',
  },
  secretsEnv: 'HELPDESK_WEBHOOK_SECRET',
  schema: z.object({ event: z.enum(['ticket.opened', 'ticket.updated']), ticket: z.looseObject({ id: z.string().min(1), version: z.number().int().min(1) }) }),
  deliveryId: ({ signedDeliveryId }) => signedDeliveryId,
  eventType: ({ payload }) => payload.event,
  entity: ({ payload }) => ({ type: 'ticket', id: payload.ticket.id }),
  version: ({ payload }) => payload.ticket.version,
  occurredAt: () => undefined, // the helpdesk sends no event time: ingest stamps its own
  data: ({ payload }) => payload.ticket, // what the Ticket schema describes
});

export const sources: AnySource[] = [helpdesk];

const toIssue = (d: Record<string, unknown>) => {
  const t = d as z.infer<typeof Ticket>;
  return {
    action: 'upsert' as const,
    target: { type: 'issue', id: `HD-${t.id}` },
    fields: { title: t.subject, status: t.status, priority: t.priority, reporter: t.requester.email },
  };
};

/**
 * The issue tracker (examples/ticketing/dist/tracker-main.js is a small one): `PUT /issues/{id}`
 * with an API key, versions in order per ticket, read back at `GET /issues/{id}` after an attempt
 * whose answer was lost. The tracker's people assign issues: `assignee` is never overwritten.
 */
export const tracker = defineConnector(
  {
    name: 'tracker',
    description: 'example: helpdesk tickets as issue-tracker issues',
    subscribes: [
      { type: 'ticket.opened', source: 'helpdesk', map: toIssue },
      { type: 'ticket.updated', source: 'helpdesk', map: toIssue },
    ],
    ownership: { targetOwned: ['assignee'] },
    delivery: {
      kind: 'http',
      baseUrlEnv: 'TRACKER_BASE_URL',
      routes: { upsert: { method: 'PUT', path: '/{type}s/{id}' } },
      lookup: { path: '/{type}s/{id}', fieldsField: 'fields' },
      auth: { kind: 'api-key', header: 'x-api-key', env: 'TRACKER_API_KEY' },
      retry: { initialDelayMs: 200, maxAttempts: 6, attemptTimeoutMs: 5_000 },
      ordering: 'strict',
    },
  },
  schemas,
);

export const connectors = [tracker];
