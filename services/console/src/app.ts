import { readFileSync } from 'node:fs';
import type { Bus, TraceKeyKind } from '@bus/bus';
import { BusError } from '@bus/errors';
import type { Logger } from '@bus/observability';
import {
  type Activity, assertKnownConnector, connectorStates, discardEntries, type DlqFilter, dlqEntryAt, knownConnectors, matchingEntries, overview, parseSince,
  reconcileRun, reconcileRuns, replayEntries, requestRun, type Resolution, resolveDifference, setPaused, showDeadLetter, TRACE_KINDS, trace, traceSteps,
} from '@bus/operations';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { type Auth, createAuth, type OperatorToken } from './auth.js';
import { html, page, type PageOptions } from './html.js';
import {
  connectorsPage, dlqConfirmPage, dlqEntryPage, dlqPage, loginPage, overviewFragment, overviewPage, reconcilePage, reconcileRunPage, tracePage,
} from './views.js';

export interface ConsoleOptions {
  bus: Bus;
  log: Logger;
  tokens: OperatorToken[];
  activity?: Activity;
  /** Field names masked in payloads (as reconcile reports do). */
  personalFields: string[];
  /** Most DLQ entries a page lists. */
  dlqPageSize?: number;
  /** Where the console's counters go (the service's /metrics); none in tests that do not look. */
  registry?: Registry;
}

const COOKIE = 'bus_console';
const back = html`<p><a href="/">Back to the overview</a></p>`;
const STATIC = new URL('../static/', import.meta.url);
const assets: Record<string, { type: string; body: string }> = {
  'console.css': { type: 'text/css; charset=utf-8', body: readFileSync(new URL('console.css', STATIC), 'utf8') },
  'console.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('console.js', STATIC), 'utf8') },
};

type Form = Record<string, string | string[] | undefined>;
const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)?.trim() || undefined;
const many = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function cookieOf(req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

/** The operator of a request: a session cookie (browser) or a bearer token (API, scripts). */
function operatorOf(auth: Auth, req: FastifyRequest): OperatorToken | undefined {
  const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
  return bearer ? auth.byToken(bearer) : auth.bySession(cookieOf(req, COOKIE));
}

/** The filter from a query or form; unknown values are ignored rather than passed on. */
function dlqFilterOf(q: Form): DlqFilter {
  const f: DlqFilter = {};
  const stage = one(q.stage);
  if (stage && /^[a-z-]{1,30}$/.test(stage)) f.stage = stage;
  const connector = one(q.connector);
  if (connector && /^[A-Za-z0-9_-]{1,60}$/.test(connector)) f.connector = connector;
  const cls = one(q.class);
  if (cls && ['transient', 'business', 'permanent', 'ambiguous'].includes(cls)) f.failureClass = cls;
  const since = one(q.since);
  if (since) {
    parseSince(since); // refuses a bad value with CLI_USAGE, shown on the page
    f.since = since;
  }
  return f;
}

/**
 * The console's HTTP app: server-rendered pages over @bus/operations (the calls the CLI makes),
 * a session cookie from an operator token, CSRF tokens and an origin check on every action,
 * and a Content-Security-Policy that allows only its own script and style.
 */
export function createConsole(o: ConsoleOptions): FastifyInstance {
  const { bus } = o;
  const auth = createAuth(o.tokens);
  const limit = o.dlqPageSize ?? 200;
  const app = Fastify({ logger: false, bodyLimit: 256 * 1024 });
  const registers = o.registry ? [o.registry] : [];
  const refused = new Counter({ name: 'console_refused_total', help: 'Requests the console refused: no or an unknown operator token, a bad CSRF token or origin', labelNames: ['reason'] as const, registers });
  const actions = new Counter({ name: 'console_actions_total', help: 'Operator actions done from the console, by action and outcome', labelNames: ['action', 'outcome'] as const, registers });
  app.addHook('onResponse', async (req, reply) => {
    if (req.method !== 'POST' || req.url.startsWith('/log')) return;
    actions.inc({ action: req.url.split('?')[0]!.slice(1).replace('/', '_'), outcome: reply.statusCode < 400 ? 'done' : 'refused_or_failed' });
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    const form: Form = {};
    for (const [k, v] of new URLSearchParams(body as string)) {
      const had = form[k];
      form[k] = had === undefined ? v : [...many(had), v];
    }
    done(null, form);
  });

  app.addHook('onSend', async (_req, reply) => {
    reply.header('content-security-policy', "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'same-origin');
    reply.header('cache-control', 'no-store');
  });

  const send = (reply: FastifyReply, status: number, opts: PageOptions, body: Parameters<typeof page>[1]) =>
    reply.status(status).type('text/html; charset=utf-8').send(page(opts, body));

  /** Every page and API call but login and static files needs an operator; refused ones see the sign-in form and nothing else. */
  const operators = new WeakMap<FastifyRequest, OperatorToken>();
  app.addHook('preHandler', async (req, reply) => {
    const path = req.url.split('?')[0]!;
    if (path === '/login' || path.startsWith('/static/') || path === '/healthz') return;
    const op = operatorOf(auth, req);
    if (!op) {
      o.log.info({ path, method: req.method }, 'console: refused a request without a valid operator token');
      refused.inc({ reason: 'no_token' });
      if (path.startsWith('/api/') || path.startsWith('/fragment/')) {
        return reply.status(401).header('www-authenticate', 'Bearer').send({ code: 'CONSOLE_UNAUTHORIZED', message: 'an operator token is needed (Authorization: Bearer <token>)' });
      }
      return send(reply, 401, { title: 'Sign in' }, loginPage());
    }
    if (req.method === 'POST' && path !== '/logout' && !req.headers.authorization) {
      // a browser action: it must come from a page of this console, with the session's CSRF token
      const origin = req.headers.origin;
      const host = req.headers.host;
      const form = (req.body ?? {}) as Form;
      if ((origin && host && new URL(origin).host !== host) || !auth.checkCsrf(op, one(form.csrf))) {
        o.log.warn({ path, operator: op.name, origin }, 'console: refused an action without a valid CSRF token or from another origin');
        refused.inc({ reason: 'csrf' });
        return send(reply, 403, { title: 'Refused', operator: op.name, csrf: auth.csrf(op), error: 'This action did not come from a console page of this session (CSRF token or origin). Nothing was changed; reload the page and try again.' }, back);
      }
    }
    operators.set(req, op);
  });
  const who = (req: FastifyRequest) => operators.get(req)!;
  const opts = (req: FastifyRequest, title: string, current: string, extra: Partial<PageOptions> = {}): PageOptions => {
    const op = who(req);
    const q = req.query as Form;
    return { title, current, operator: op.name, csrf: auth.csrf(op), notice: one(q.done), error: one(q.failed), ...extra };
  };
  const by = (req: FastifyRequest) => `console:${who(req).name}`;

  app.setErrorHandler((err, req, reply) => {
    const business = err instanceof BusError && err.failureClass === 'business';
    if (!business) o.log.error({ err, path: req.url.split('?')[0] }, 'console: request failed');
    const message = business ? err.message : `the request failed: ${(err as Error).message}`;
    const op = operators.get(req);
    if (req.url.startsWith('/api/') || !op) return reply.status(business ? 400 : 500).send({ code: (err as BusError).code ?? 'CONSOLE_FAILED', message });
    return send(reply, business ? 400 : 500, { title: 'Something went wrong', operator: op.name, csrf: auth.csrf(op), error: message }, back);
  });

  app.get('/static/:file', async (req, reply) => {
    const a = assets[(req.params as { file: string }).file];
    if (!a) return reply.status(404).send('not found');
    return reply.type(a.type).header('cache-control', 'public, max-age=300').send(a.body);
  });
  app.get('/healthz', async () => ({ ok: true }));

  app.post('/login', async (req, reply) => {
    const origin = req.headers.origin;
    if (origin && req.headers.host && new URL(origin).host !== req.headers.host) return send(reply, 403, { title: 'Sign in', error: 'Sign in from this console\'s own page.' }, loginPage());
    const op = auth.byToken(one(((req.body ?? {}) as Form).token));
    if (!op) {
      o.log.warn('console: a sign-in with an unknown token');
      refused.inc({ reason: 'bad_token' });
      return send(reply, 401, { title: 'Sign in', error: 'That token is not one of CONSOLE_TOKENS.' }, loginPage());
    }
    o.log.info({ operator: op.name }, 'console: signed in');
    reply.header('set-cookie', `${COOKIE}=${encodeURIComponent(auth.session(op))}; HttpOnly; SameSite=Strict; Path=/`);
    return reply.redirect('/', 303);
  });
  app.post('/logout', async (_req, reply) => {
    reply.header('set-cookie', `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`);
    return reply.redirect('/login', 303);
  });
  app.get('/login', async (req, reply) => (operatorOf(auth, req) ? reply.redirect('/', 303) : send(reply, 200, { title: 'Sign in' }, loginPage())));

  // overview
  const series = (c: string) => o.activity?.series(c).slice(-120) ?? [];
  app.get('/', async (req, reply) => send(reply, 200, opts(req, 'Overview', '/'), overviewPage(overviewFragment(await overview(bus, o.activity), series))));
  app.get('/fragment/overview', async (_req, reply) => reply.type('text/html; charset=utf-8').send(overviewFragment(await overview(bus, o.activity), series).value));
  app.get('/api/overview', async () => {
    const ov = await overview(bus, o.activity);
    return { ...ov, series: Object.fromEntries(ov.connectors.map((c) => [c.connector, series(c.connector)])) };
  });

  // trace
  const traceQuery = (q: Form) => {
    const kind = one(q.kind);
    if (kind && !(TRACE_KINDS as readonly string[]).includes(kind)) throw new BusError('CLI_USAGE', 'business', `kind "${kind}": say ${TRACE_KINDS.join(', ')}`);
    const since = one(q.since);
    return { key: one(q.q), kind: kind as TraceKeyKind | undefined, sinceMs: since ? parseSince(since) : undefined };
  };
  app.get('/trace', async (req, reply) => {
    const q = req.query as Form;
    const t = traceQuery(q);
    const found = t.key ? await trace(bus, t.key, t) : undefined;
    return send(reply, 200, opts(req, 'Trace', '/trace'), tracePage({ q: t.key, kind: one(q.kind), since: one(q.since) }, found, (c) => traceSteps(c.records)));
  });
  app.get('/api/trace', async (req) => {
    const t = traceQuery(req.query as Form);
    if (!t.key) throw new BusError('CLI_USAGE', 'business', 'say what to trace: ?q=<correlation id, event id or type/id>');
    return trace(bus, t.key, t);
  });

  // dead letters
  app.get('/dlq', async (req, reply) => {
    const f = dlqFilterOf(req.query as Form);
    const [matches, connectors] = await Promise.all([matchingEntries(bus, f, undefined, limit), knownConnectors(bus)]);
    return send(reply, 200, opts(req, 'Dead letters', '/dlq'), dlqPage(f, matches, limit, auth.csrf(who(req)), connectors));
  });
  app.get('/dlq/:seq', async (req, reply) => {
    const { seq, entry } = await dlqEntryAt(bus, Number((req.params as { seq: string }).seq)).catch((err: BusError) => {
      throw new BusError(err.code ?? 'CLI_NOT_FOUND', 'business', err.message);
    });
    return send(reply, 200, opts(req, `Dead letter ${seq}`, '/dlq'), dlqEntryPage(showDeadLetter(seq, entry, new Set(o.personalFields)), auth.csrf(who(req))));
  });
  app.post('/dlq/action', async (req, reply) => {
    const form = (req.body ?? {}) as Form;
    const action = one(form.action);
    if (action !== 'replay' && action !== 'discard') throw new BusError('CLI_USAGE', 'business', 'say replay or discard');
    const f = dlqFilterOf(form);
    const seqs = many(form.seq).map(Number).filter((n) => Number.isSafeInteger(n) && n > 0);
    if (!seqs.length && !f.stage && !f.connector && !f.failureClass && !f.since) {
      throw new BusError('CLI_USAGE', 'business', `say what to ${action}: filter the list first (stage, connector, class or age), or open one entry`);
    }
    if (one(form.step) !== 'do') {
      const matches = await matchingEntries(bus, f, seqs.length ? seqs : undefined);
      return send(reply, 200, opts(req, action === 'replay' ? 'Replay: dry run' : 'Discard: dry run', '/dlq'), dlqConfirmPage(action, f, matches, auth.csrf(who(req))));
    }
    // exactly the entries the dry run showed (one dead-lettered meanwhile is not touched unseen)
    if (!seqs.length) throw new BusError('CLI_USAGE', 'business', 'nothing was counted: run the dry run again');
    let ok = 0;
    let failed = 0;
    if (action === 'replay') {
      for await (const r of replayEntries(bus, {}, seqs, by(req))) r.ok ? ok++ : failed++;
    } else {
      ok = await discardEntries(bus, {}, seqs, { by: by(req) });
    }
    o.log.info({ operator: who(req).name, action, requested: seqs.length, ok, failed }, `console: DLQ ${action}`);
    const done = action === 'replay' ? `${ok} replayed, ${failed} still failing` : `${ok} discarded`;
    return reply.redirect(`/dlq?done=${encodeURIComponent(done)}`, 303);
  });

  // reconcile
  app.get('/reconcile', async (req, reply) => {
    const [runs, connectors] = await Promise.all([reconcileRuns(bus), knownConnectors(bus)]);
    return send(reply, 200, opts(req, 'Reconcile', '/reconcile'), reconcilePage(runs.slice(0, 50), connectors, auth.csrf(who(req))));
  });
  app.get('/reconcile/:runId', async (req, reply) => {
    const runId = (req.params as { runId: string }).runId;
    const found = await reconcileRun(bus, runId, 500);
    if (!found) throw new BusError('CLI_NOT_FOUND', 'business', `no reconcile run ${runId}`);
    return send(reply, 200, opts(req, `Reconcile run ${runId}`, '/reconcile'), reconcileRunPage(found.run, found.items, auth.csrf(who(req))));
  });
  app.post('/reconcile/run', async (req, reply) => {
    const form = (req.body ?? {}) as Form;
    const connector = one(form.connector) ?? '';
    await assertKnownConnector(bus, connector);
    const dryRun = one(form.dryRun) === '1';
    const a = await requestRun(bus, connector, dryRun);
    if ('error' in a) throw new BusError('RECONCILE_REFUSED', 'business', a.error);
    bus.audit({ stage: 'console', outcome: 'reconcile-run-started', correlationId: a.runId, connector, by: by(req), details: { dryRun, resumed: !!a.resumed } });
    return reply.redirect(`/reconcile/${encodeURIComponent(a.runId)}?done=${encodeURIComponent(`${a.resumed ? 'resumed' : 'started'} run ${a.runId}${dryRun ? ' (dry run)' : ''}`)}`, 303);
  });
  app.post('/reconcile/resolve', async (req, reply) => {
    const form = (req.body ?? {}) as Form;
    const item = one(form.item) ?? '';
    const settled = await resolveDifference(bus, item, (one(form.as) ?? '') as Resolution, by(req));
    return reply.redirect(`/reconcile/${encodeURIComponent(one(form.run) ?? settled.runId)}?done=${encodeURIComponent(`${settled.id} settled as ${settled.resolution?.as}`)}`, 303);
  });

  // connectors
  app.get('/connectors', async (req, reply) => send(reply, 200, opts(req, 'Connectors', '/connectors'), connectorsPage(await connectorStates(bus), auth.csrf(who(req)))));
  for (const verb of ['pause', 'resume'] as const) {
    app.post(`/connectors/${verb}`, async (req, reply) => {
      const form = (req.body ?? {}) as Form;
      const connector = one(form.connector) ?? '';
      const reason = one(form.reason)?.slice(0, 200) ?? (verb === 'resume' ? 'resumed' : '');
      if (!reason) throw new BusError('CLI_USAGE', 'business', 'say why the connector is paused (everyone sees it)');
      await assertKnownConnector(bus, connector);
      await setPaused(bus, connector, verb === 'pause', reason, by(req));
      o.log.info({ operator: who(req).name, connector, reason }, `console: connector ${verb}d`);
      return reply.redirect(`/connectors?done=${encodeURIComponent(`${connector} ${verb}d`)}`, 303);
    });
  }
  return app;
}
