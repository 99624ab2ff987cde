import { timingSafeEqual } from 'node:crypto';
import { PublishError } from '@bus/bus';
import { publishDomainEvent } from '@bus/client';
import { EnvelopeError } from '@bus/envelope';
import { ConfigError } from '@bus/errors';
import { labelFolder, type Logger } from '@bus/observability';
import type { Bus } from '@bus/bus';
import { z } from 'zod';
import { correlationIdOf } from './correlation.js';
import type { Answer, Headers } from './intake.js';
import type { IntakeMetrics } from './metrics.js';
import { problem } from './problem.js';

/** At most this many events per request: bounds memory and the time to answer. */
export const MAX_BATCH = 500;

const Batch = z.object({
  source: z.string().min(1),
  events: z.array(z.record(z.string(), z.unknown())).min(1).max(MAX_BATCH),
});

/**
 * A bearer token for POST /events and the sources it may publish as. `sources` is a list of
 * names, `'*'` (any source, webhook providers included: say so explicitly), or `'services'`
 * (any source that is not a webhook source of this ingest: what a token without a list gets).
 */
export interface ApiToken {
  token: string;
  sources: string[] | '*' | 'services';
}

/**
 * INGEST_API_TOKENS → tokens: `token:source|source,token2:*`, comma-separated. Rotate by
 * listing the new token next to the old with the same sources, then dropping the old one.
 * A token without `:` may publish as any source except the webhook sources (a service must
 * not impersonate a provider). Throws (ConfigError) on an empty token or an empty list.
 */
export function parseApiTokens(spec: string): ApiToken[] {
  const out: ApiToken[] = [];
  const problems: string[] = [];
  for (const [i, entry] of spec.split(',').map((e) => e.trim()).entries()) {
    if (!entry) continue;
    const colon = entry.indexOf(':');
    const token = (colon < 0 ? entry : entry.slice(0, colon)).trim();
    const list = colon < 0 ? undefined : entry.slice(colon + 1).split('|').map((x) => x.trim()).filter(Boolean);
    if (!token) problems.push(`entry ${i + 1} has no token before ":"`);
    else if (list && list.length === 0) problems.push(`entry ${i + 1} lists no source after ":" (write token:source|source, or token:* for any)`);
    else out.push({ token, sources: !list ? 'services' : list.includes('*') ? '*' : list });
  }
  if (problems.length || out.length === 0) {
    throw new ConfigError(`INGEST_API_TOKENS is invalid: ${problems.join('; ') || 'no token'}. Format: token:source|source,token2:source (README → Configuration)`);
  }
  return out;
}

export interface EventsApiOptions {
  bus: Bus;
  /** Bearer tokens accepted, with the sources each may publish as (parseApiTokens); several for rotation. A plain string is `{ token, sources: 'services' }`. */
  tokens: (ApiToken | string)[];
  /** Sources that arrive as signed webhooks: only a token bound to them by name (or `*`) may publish as them. Default none. */
  webhookSources?: string[];
  log: Logger;
  metrics: IntakeMetrics;
}

/** The token `given` is, compared with every one in constant time, so timing tells nothing. */
function tokenMatching(given: string, tokens: { token: ApiToken; bytes: Buffer }[]): ApiToken | undefined {
  const g = Buffer.from(given);
  let found: ApiToken | undefined;
  for (const t of tokens) {
    if (t.bytes.length === g.length && timingSafeEqual(t.bytes, g)) found ??= t.token;
  }
  return found;
}

function mayPublishAs(t: ApiToken, source: string, webhookSources: ReadonlySet<string>): boolean {
  if (t.sources === '*') return true;
  if (t.sources === 'services') return !webhookSources.has(source);
  return t.sources.includes(source);
}

/**
 * POST /events: a batch of domain events from the organisation's services, with one
 * result per event. 200 when all are stored (or duplicates), 207 when some are not,
 * 503 + Retry-After when none could be stored because the bus is unavailable.
 */
export function createEventsApi(o: EventsApiOptions) {
  const tokens = o.tokens.map((t): ApiToken => (typeof t === 'string' ? { token: t, sources: 'services' } : t));
  const tokenBytes = tokens.map((token) => ({ token, bytes: Buffer.from(token.token) })); // encoded once, not per request
  const webhookSources = new Set(o.webhookSources ?? []);
  // `source` comes from the request body: the metric label keeps the sources a token is bound to
  // and the webhook sources, 16 more, then `other`
  const sourceLabel = labelFolder([...webhookSources, ...tokens.flatMap((t) => (Array.isArray(t.sources) ? t.sources : []))], 16);
  return {
    async receive(headers: Headers, body: Buffer): Promise<Answer> {
      const correlationId = correlationIdOf(headers);
      const base = { 'x-correlation-id': correlationId };
      const auth = String(headers.authorization ?? '');
      const token = auth.startsWith('Bearer ') ? tokenMatching(auth.slice(7), tokenBytes) : undefined;
      if (!token) {
        o.metrics.rejected.inc({ source: '(events-api)', reason: 'unauthorized' });
        return { status: 401, headers: { ...base, 'www-authenticate': 'Bearer' }, body: problem(401, 'unauthorized', 'Unauthorized', 'Send Authorization: Bearer <INGEST_API_TOKENS entry>.') };
      }
      let parsed: z.infer<typeof Batch>;
      try {
        parsed = Batch.parse(JSON.parse(body.toString('utf8')));
      } catch (err) {
        const detail = err instanceof z.ZodError ? err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') : 'body is not JSON';
        return { status: 400, headers: base, body: problem(400, 'bad-batch', 'Not a batch of events', `Expected {"source": "...", "events": [...]} with 1 to ${MAX_BATCH} events: ${detail}`) };
      }
      if (!mayPublishAs(token, parsed.source, webhookSources)) {
        o.metrics.rejected.inc({ source: '(events-api)', reason: 'source_not_allowed' });
        o.log.warn({ correlationId, source: parsed.source }, 'publish API: token not bound to this source; answered 403');
        const allowed = token.sources === 'services' ? 'any source but the webhook sources' : (token.sources as string[]).join(', ');
        return { status: 403, headers: base, body: problem(403, 'source-not-allowed', 'Token not allowed for this source',
          `This token may publish as ${allowed}; not as "${parsed.source}". Nothing was stored. Bind it in INGEST_API_TOKENS (token:source|source).`, { correlationId }) };
      }
      const results = await Promise.all(parsed.events.map(async (event, index) => {
        try {
          const r = await publishDomainEvent(o.bus, parsed.source, { correlationId, ...event } as never);
          if (r.status === 'stored') {
            const label = sourceLabel(parsed.source);
            o.metrics.count.stored(label, { source: label }); // publishDomainEvent audited it
          } else {
            o.metrics.duplicate.inc({ source: sourceLabel(parsed.source), where: 'stream' });
          }
          return { index, status: r.status, eventId: r.eventId, correlationId: r.correlationId };
        } catch (err) {
          if (err instanceof EnvelopeError) return { index, status: 'invalid' as const, issues: err.issues };
          if (err instanceof PublishError && err.retryable) return { index, status: 'unavailable' as const, retryable: true };
          o.log.error({ err, correlationId, index }, 'publish API: unexpected failure');
          return { index, status: 'failed' as const, detail: (err as Error).message };
        }
      }));
      const ok = results.filter((r) => r.status === 'stored' || r.status === 'duplicate').length;
      const unavailable = results.filter((r) => r.status === 'unavailable').length;
      if (unavailable === results.length) {
        return { status: 503, headers: { ...base, 'retry-after': '5' }, body: problem(503, 'store-unavailable', 'Event store unavailable', 'No event was stored; retry with the same ids.', { results }) };
      }
      return { status: ok === results.length ? 200 : 207, headers: base, body: { correlationId, results } };
    },
  };
}
export type EventsApi = ReturnType<typeof createEventsApi>;
