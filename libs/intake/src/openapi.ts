// The OpenAPI 3.1 document of ingest's HTTP surface (GET /openapi.json), made from the zod schemas
// the requests are checked with and from PROBLEM_TYPES, so it cannot drift from the code by hand.
import { readFileSync } from 'node:fs';
import { EntityRef, Envelope } from '@bus/envelope';
import { RejectReasons } from '@bus/webhooks';
import { z } from 'zod';
import { MAX_BATCH } from './events-api.js';
import { PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX, PROBLEM_TYPES, type ProblemSlug } from './problem.js';

const FieldIssue = z.object({ path: z.string().meta({ description: 'dotted path of the field, `(root)` for the whole' }), message: z.string() });

/** One event of a POST /events batch: the envelope's fields a service states (the bus adds source and defaults). */
export const OutgoingEventSchema = z
  .object({
    id: Envelope.shape.id
      .optional()
      .meta({ description: 'stable id of this event: the same id again is a duplicate, stored once. Default: a new UUIDv7 (then a retry is stored twice)' }),
    type: Envelope.shape.type,
    entity: EntityRef,
    version: Envelope.shape.version,
    versionKind: Envelope.shape.versionKind,
    data: Envelope.shape.data.meta({ description: "what the catalog's schema for `type@schemaVersion` describes" }),
    schemaVersion: Envelope.shape.schemaVersion.optional().meta({ description: 'default 1' }),
    occurredAt: z.string().optional().meta({ description: 'ISO-8601; default now' }),
    correlationId: Envelope.shape.correlationId
      .optional()
      .meta({ description: "continue a business action; default: the request's x-correlation-id, else a new one" }),
    causationId: Envelope.shape.causationId.optional(),
  })
  .meta({
    description:
      'A domain event. Checked against the event envelope (docs/architecture.md → The event envelope); a bad one is answered `invalid` with its fields, the others of the batch are stored.',
  });

/** The body of POST /events. */
export const EventsBatchSchema = z.object({
  source: Envelope.shape.source.meta({ description: 'the publishing service; the token must be bound to it (INGEST_API_TOKENS token:source)' }),
  events: z.array(OutgoingEventSchema).min(1).max(MAX_BATCH),
});

const EventResult = z.object({
  index: z.number().int().min(0).meta({ description: 'position in the batch' }),
  status: z.enum(['stored', 'duplicate', 'invalid', 'unavailable', 'failed']),
  eventId: z.string().optional(),
  correlationId: z.string().optional(),
  issues: z.array(FieldIssue).optional().meta({ description: '`invalid`: every bad field' }),
  retryable: z.boolean().optional().meta({ description: '`unavailable`: send it again with the same id' }),
  detail: z.string().optional().meta({ description: '`failed`: what went wrong (logged with the correlation id)' }),
});

export const EventsAnswerSchema = z.object({ correlationId: z.string(), results: z.array(EventResult) });

export const WebhookAnswerSchema = z.object({
  status: z.enum(['stored', 'duplicate', 'quarantined']).meta({
    description:
      "`stored` (202): in JetStream, will be delivered. `duplicate` (200): this delivery id was stored before. `quarantined` (202): authentic, but fails the source's schema; kept in the DLQ (`bus dlq list --stage ingest`), not delivered",
  }),
  eventId: z.string().optional(),
  correlationId: z.string(),
  seq: z.number().int().optional(),
  issues: z.array(FieldIssue).optional(),
  dlqSeq: z.number().int().optional(),
});

export const ProblemSchema = z
  .looseObject({
    type: z.string().meta({ description: `${PROBLEM_TYPE_PREFIX}<slug>: one of the problem types (docs/errors.md → Problem types)` }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().meta({ description: 'what happened and what to do; never a secret' }),
    correlationId: z.string().optional(),
    reason: z.enum(RejectReasons).optional().meta({ description: '401 from a webhook: why the signature was not verified' }),
    issues: z.array(FieldIssue).optional(),
    results: z.array(EventResult).optional().meta({ description: '503 from POST /events: one result per event' }),
  })
  .meta({ description: 'RFC 9457 problem details' });

const json = (schema: z.ZodType) => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
};

const correlationHeader = {
  'x-correlation-id': { description: "the business action's id: in every log line, audit record and delivery (`bus trace <id>`)", schema: { type: 'string' } },
};

/** A response of problem types `slugs` (all of one status). */
function problemResponse(slugs: ProblemSlug[], extraHeaders: Record<string, unknown> = {}) {
  return {
    description: slugs.map((s) => `\`${s}\`: ${PROBLEM_TYPES[s].when}`).join('. '),
    headers: { ...correlationHeader, ...extraHeaders },
    content: {
      [PROBLEM_CONTENT_TYPE]: {
        schema: {
          allOf: [{ $ref: '#/components/schemas/Problem' }, { type: 'object', properties: { type: { enum: slugs.map((s) => `${PROBLEM_TYPE_PREFIX}${s}`) } } }],
        },
      },
    },
  };
}
const retryAfter = { 'retry-after': { description: 'seconds to wait before sending again', schema: { type: 'string' } } };

/** Problem types by status; every entry of PROBLEM_TYPES is in exactly one route's responses or in `default`. */
const byStatus = (slugs: ProblemSlug[]) => {
  const out: Record<string, ProblemSlug[]> = {};
  for (const s of slugs) {
    const status = String(PROBLEM_TYPES[s].status);
    out[status] = [...(out[status] ?? []), s];
  }
  return out;
};

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/**
 * The OpenAPI 3.1 document of ingest: POST /webhooks/{source}, POST /events (when served),
 * the health endpoints, /metrics and this document. Sources are not enumerated: who may
 * read this document may not learn which providers are configured (like the 404).
 */
export function openApiDocument(o: { events?: boolean } = {}): Record<string, unknown> {
  const webhookProblems = byStatus([
    'bad-request',
    'not-json',
    'missing-header',
    'malformed-header',
    'timestamp-outside-tolerance',
    'signature-mismatch',
    'unknown-source',
    'unsupported-media-type',
    'too-large',
    'internal',
    'store-unavailable',
  ]);
  const eventsProblems = byStatus([
    'bad-batch',
    'bad-request',
    'unauthorized',
    'source-not-allowed',
    'unsupported-media-type',
    'too-large',
    'internal',
    'store-unavailable',
  ]);
  const problems = (m: Record<string, ProblemSlug[]>) =>
    Object.fromEntries(
      Object.entries(m).map(([status, slugs]) => [
        status,
        problemResponse(
          slugs,
          status === '503' ? retryAfter : status === '401' && slugs.includes('unauthorized') ? { 'www-authenticate': { schema: { type: 'string' } } } : {},
        ),
      ]),
    );
  const paths: Record<string, unknown> = {
    '/webhooks/{source}': {
      post: {
        operationId: 'receiveWebhook',
        summary: "A provider's webhook: verified, stored in JetStream, then answered",
        description:
          "The body is read as raw bytes and verified with the source's signature scheme (Standard Webhooks, Stripe, GitHub or a generic HMAC) before it is parsed; its shape is the provider's and is checked against the source's schema in the catalog. The answer comes only after JetStream stored the event. A delivery id seen before is `duplicate`.",
        parameters: [
          {
            name: 'source',
            in: 'path',
            required: true,
            description: 'a source of the catalog this ingest runs',
            schema: { type: 'string', pattern: '^[A-Za-z0-9_-]+$' },
          },
          { name: 'x-correlation-id', in: 'header', required: false, description: 'continue a business action (else a new id)', schema: { type: 'string' } },
        ],
        requestBody: { required: true, description: "the provider's payload, exactly as signed", content: { 'application/json': { schema: {} } } },
        responses: {
          200: {
            description: '`duplicate`: this delivery was stored before; nothing new stored',
            headers: correlationHeader,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/WebhookAnswer' } } },
          },
          202: {
            description: "`stored` (or `quarantined`: authentic but failing the source's schema, kept in the DLQ)",
            headers: correlationHeader,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/WebhookAnswer' } } },
          },
          ...problems(webhookProblems),
        },
      },
    },
    '/healthz': {
      get: {
        operationId: 'healthz',
        summary: 'the process is alive',
        responses: {
          200: {
            description: 'alive',
            content: { 'application/json': { schema: { type: 'object', properties: { status: { const: 'ok' } }, required: ['status'] } } },
          },
        },
      },
    },
    '/readyz': {
      get: {
        operationId: 'readyz',
        summary: 'ready to take requests: NATS connected, JetStream answering',
        responses: Object.fromEntries(
          ['200', '503'].map((s) => [
            s,
            {
              description: s === '200' ? 'ready' : 'not ready: the checks say why',
              content: { 'application/json': { schema: { type: 'object', properties: { ready: { type: 'boolean' } }, required: ['ready'] } } },
            },
          ]),
        ),
      },
    },
    '/metrics': {
      get: {
        operationId: 'metrics',
        summary: 'Prometheus metrics of this process',
        responses: { 200: { description: 'text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'openapi',
        summary: 'this document',
        responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } },
      },
    },
  };
  if (o.events !== false) {
    paths['/events'] = {
      post: {
        operationId: 'publishEvents',
        summary: "Domain events from the organisation's services, in a batch of 1 to 500",
        description:
          "Each event is checked and stored on its own: 200 when every one is stored or a duplicate, 207 when some are not (each result says why). The token must be bound to the batch's `source`.",
        security: [{ bearer: [] }],
        parameters: [
          { name: 'x-correlation-id', in: 'header', required: false, description: 'continue a business action (else a new id)', schema: { type: 'string' } },
        ],
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/EventsBatch' } } } },
        responses: {
          200: {
            description: 'every event stored or a duplicate',
            headers: correlationHeader,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/EventsAnswer' } } },
          },
          207: {
            description: 'some events were not stored: `invalid` (fix them), `unavailable` (send again with the same ids), `failed`',
            headers: correlationHeader,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/EventsAnswer' } } },
          },
          ...problems(eventsProblems),
        },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'integration bus: ingest',
      version,
      description:
        'Webhooks from providers and domain events from services, stored durably before they are answered. Every error answer is an RFC 9457 problem (`application/problem+json`) with a type from docs/errors.md → Problem types.',
    },
    paths,
    components: {
      schemas: {
        Problem: json(ProblemSchema),
        WebhookAnswer: json(WebhookAnswerSchema),
        EventsBatch: json(EventsBatchSchema),
        EventsAnswer: json(EventsAnswerSchema),
      },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'a token of INGEST_API_TOKENS, bound to the sources it may publish as' } },
    },
  };
}
