/** RFC 9457 problem details: every error answer of ingest has this shape. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  [extension: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
export const PROBLEM_TYPE_PREFIX = 'urn:integration-bus:problem:';

/**
 * Every problem type ingest's HTTP surface answers with: its status and when. The OpenAPI
 * document (GET /openapi.json) and docs/errors.md are made from / checked against this list.
 * `still-invalid` (422) is missing on purpose: only `bus dlq replay` sees it, never HTTP.
 */
export const PROBLEM_TYPES = {
  unauthorized: { status: 401, when: 'POST /events without `Authorization: Bearer <token>` naming an INGEST_API_TOKENS entry' },
  'missing-header': { status: 401, when: 'a webhook without its signature header (or timestamp, id header); reason `missing_header`' },
  'malformed-header': { status: 401, when: "a webhook whose signature header is not in the scheme's format; reason `malformed_header`" },
  'timestamp-outside-tolerance': {
    status: 401,
    when: 'a webhook signed too long ago or too far ahead (5 minutes by default; replay protection); reason `timestamp_outside_tolerance`',
  },
  'signature-mismatch': { status: 401, when: "a webhook whose signature matches none of the source's secrets; reason `signature_mismatch`" },
  'source-not-allowed': { status: 403, when: "POST /events with a token not bound to the batch's `source`" },
  'unknown-source': { status: 404, when: 'POST /webhooks/<source> for a source this ingest does not run (the configured ones are not listed)' },
  'not-found': { status: 404, when: 'no such route' },
  'not-json': { status: 400, when: 'an authentic webhook whose body is not JSON' },
  'bad-batch': { status: 400, when: 'POST /events whose body is not `{ source, events: [1 to 500 events] }`' },
  'bad-request': { status: 400, when: 'the request could not be read (HTTP-level error)' },
  'unsupported-media-type': { status: 415, when: 'not expected: every content type is read as raw bytes; kept for an HTTP-level 415' },
  'too-large': { status: 413, when: "a body above INGEST_MAX_BODY_BYTES, or the source's `maxBodyBytes`" },
  internal: { status: 500, when: 'an unexpected failure; logged at error with the correlation id; nothing was stored' },
  'store-unavailable': { status: 503, when: 'JetStream could not store the event (Retry-After is set); nothing was stored' },
} as const satisfies Record<string, { status: number; when: string }>;

export type ProblemSlug = keyof typeof PROBLEM_TYPES;

export function problem(status: number, slug: ProblemSlug | 'still-invalid', title: string, detail: string, extra: Record<string, unknown> = {}): Problem {
  return { type: `${PROBLEM_TYPE_PREFIX}${slug}`, title, status, detail, ...extra };
}
