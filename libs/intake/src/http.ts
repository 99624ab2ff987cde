import { createLogger, type Logger, type Readiness } from '@bus/observability';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { correlationIdOf } from './correlation.js';
import type { EventsApi } from './events-api.js';
import type { Intake } from './intake.js';
import { openApiDocument } from './openapi.js';
import { PROBLEM_CONTENT_TYPE, problem } from './problem.js';

export interface HttpOptions {
  intake: Intake;
  eventsApi?: EventsApi;
  registry: Registry;
  readiness: Readiness;
  /** Largest request body for /events and sources without their own limit. Default 1 MiB. */
  maxBodyBytes?: number;
  /**
   * The service's logger: every 5xx at error, every request at debug (method, path, status,
   * time, correlation id; never headers or bodies). Default a logger of its own named `ingest-http`.
   */
  log?: Logger;
}

/**
 * Ingest's HTTP surface. Bodies are kept as raw bytes: signatures are computed over the
 * exact bytes the provider sent, so nothing may parse or re-serialise them first.
 */
export function createHttpApp(o: HttpOptions): FastifyInstance {
  const defaultLimit = o.maxBodyBytes ?? 1024 * 1024;
  const largest = Math.max(defaultLimit, ...[...o.intake.sources.values()].map((s) => s.maxBodyBytes ?? defaultLimit));
  const app = Fastify({ logger: false, bodyLimit: largest, return503OnClosing: true, requestTimeout: 30_000 });
  const log = o.log ?? createLogger({ service: 'ingest-http' });
  // one correlation id per request, decided before any handler, so the answer, the audit and
  // every log line (the 5xx below included) carry the same one
  // callback hooks: an async one costs a promise per request
  app.addHook('onRequest', (req, _reply, next) => {
    req.headers['x-correlation-id'] = correlationIdOf(req.headers);
    next();
  });
  // the request line is logged at debug: below that level the hook is not registered at all
  if (log.isLevelEnabled('debug')) {
    app.addHook('onResponse', (req, reply, next) => {
      log.debug({ correlationId: req.headers['x-correlation-id'], method: req.method, path: req.url.split('?')[0], status: reply.statusCode,
        ms: Math.round(reply.elapsedTime) }, 'request');
      next();
    });
  }
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = err.statusCode ?? 500;
    const slug = status === 413 ? 'too-large' : status === 415 ? 'unsupported-media-type' : status >= 500 ? 'internal' : 'bad-request';
    const detail = status === 413 ? `The body is larger than this endpoint accepts (${largest} bytes); nothing was stored.` : status >= 500 ? 'Internal error; nothing was stored. Retry later.' : err.message;
    const correlationId = String(req.headers['x-correlation-id']);
    if (status >= 500) log.error({ err, correlationId, method: req.method, path: req.url.split('?')[0], status }, 'request failed; answered 5xx');
    reply.status(status).header('x-correlation-id', correlationId).type(PROBLEM_CONTENT_TYPE).send(problem(status, slug, status === 413 ? 'Body too large' : 'Request failed', detail));
  });
  app.setNotFoundHandler((req, reply) => {
    reply.status(404).type(PROBLEM_CONTENT_TYPE).send(problem(404, 'not-found', 'Not found', `No route ${req.method} ${req.url}. Webhooks go to POST /webhooks/<source>, domain events to POST /events.`));
  });

  app.post<{ Params: { source: string } }>('/webhooks/:source', async (req, reply) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const source = o.intake.sources.get(req.params.source);
    if (source?.maxBodyBytes && body.length > source.maxBodyBytes) {
      return reply.status(413).type(PROBLEM_CONTENT_TYPE).send(problem(413, 'too-large', 'Body too large', `${source.name} accepts at most ${source.maxBodyBytes} bytes; nothing was stored.`));
    }
    const a = await o.intake.receive(req.params.source, req.headers, body);
    reply.status(a.status).headers(a.headers);
    if (a.status >= 400) reply.type(PROBLEM_CONTENT_TYPE);
    return reply.send(a.body);
  });

  if (o.eventsApi) {
    const api = o.eventsApi;
    app.post('/events', async (req, reply) => {
      const a = await api.receive(req.headers, Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
      reply.status(a.status).headers(a.headers);
      if (a.status >= 400 && a.status !== 207) reply.type(PROBLEM_CONTENT_TYPE);
      return reply.send(a.body);
    });
  }

  const openapi = openApiDocument({ events: !!o.eventsApi });
  app.get('/openapi.json', async () => openapi);
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const report = o.readiness.report();
    return reply.status(report.ready ? 200 : 503).send(report);
  });
  app.get('/metrics', async (_req, reply) => reply.type(o.registry.contentType).send(await o.registry.metrics()));
  return app;
}
