import { hostname } from 'node:os';
import { type Bus, type Consumption, deadLetter, defer, done, ensureConsumer, type HandlerContext, type Outcome, retryAfter } from '@bus/bus';
import { TokenError, type TokenProvider } from '@bus/auth';
import { createCircuitBreaker } from '@bus/breaker';
import { DeliveryCommand } from '@bus/connectors';
import { decode, EnvelopeError, toFieldIssues } from '@bus/envelope';
import type { Logger } from '@bus/observability';
import { createOrderingGuard } from '@bus/ordering';
import { createRateLimiter } from '@bus/ratelimit';
import { attemptsMade, decide } from '@bus/retry';
import { workerConsumer } from '@bus/streams';
import type { DeliverMetrics } from './metrics.js';
import { oauthFor } from './oauth.js';
import type { ResolvedDelivery } from './settings.js';
import { type CallResult, TargetReadError } from './target.js';

export interface DelivererOptions {
  bus: Bus;
  delivery: ResolvedDelivery;
  log: Logger;
  metrics: DeliverMetrics;
  /** Commands handled at once by this process (different entities in parallel). Default 32. */
  concurrency?: number;
  /** For the OAuth2 token endpoint (tests); the target's own calls use resolveDelivery's. */
  fetchFn?: typeof fetch;
}

/** The durable consumer of one connector on DELIVERIES. */
export const deliverDurable = (connector: string) => `deliver-${connector}`;

/**
 * Delivers one connector's commands: paused? breaker open? → wait in the stream; entity
 * lease and version check (ordering guard); rate limit; one call with the idempotency key;
 * then the failure class decides: retry with backoff, dead-letter, or pause the connector.
 */
export function createDeliverer(o: DelivererOptions) {
  const { connector, settings } = o.delivery;
  const name = connector.name;
  const log = o.log.child({ connector: name });
  const circuitValue = { closed: 0, 'half-open': 1, open: 2 } as const;
  const breaker = createCircuitBreaker({
    ...settings.breaker,
    onStateChange: (from, to) => {
      o.metrics.circuit.set({ connector: name }, circuitValue[to]);
      // shown by `bus connectors list`; best effort: the metric is the record
      void connectorsKv().then((kv) => kv.put(`${name}.circuit`, JSON.stringify({ state: to, at: new Date().toISOString(), by: `${hostname()}:${process.pid}` }))).catch(() => undefined);
      log[to === 'open' ? 'error' : 'info']({ from, to }, to === 'open' ? 'circuit opened: the target keeps failing; commands wait in the stream' : `circuit ${to}`);
    },
  });
  const limiter = settings.rateLimit ? createRateLimiter(settings.rateLimit) : undefined;
  let guard: ReturnType<typeof createOrderingGuard> | undefined;
  // a crashed process's command comes back after ack_wait, and its entity lease frees itself after
  // leaseMs: both just above the longest attempt, so a crash costs seconds, not minutes
  const longestAttemptMs = Math.max(o.delivery.policyFor('').attemptTimeoutMs, ...Object.keys(settings.retryByType ?? {}).map((t) => o.delivery.policyFor(t).attemptTimeoutMs));
  const leaseMs = longestAttemptMs * 2 + 2_000;
  const ackWaitSec = Math.ceil(leaseMs / 1000) + 2;
  let paused: string | undefined;
  let tokens: TokenProvider | undefined;
  const target = o.delivery.target;

  /** Runs one target operation with a bearer token when the connector uses OAuth2; a 401 renews the token once and tries once more. */
  async function withToken<T extends { status?: number }>(run: (headers: Record<string, string>) => Promise<T>): Promise<T> {
    if (!tokens) return run({});
    const token = await tokens.token();
    const first = await run({ authorization: `Bearer ${token}` });
    if (first.status !== 401) return first;
    log.warn('target refused the access token; renewing it once');
    return run({ authorization: `Bearer ${await tokens.renew(token)}` });
  }

  /**
   * After an ambiguous attempt (sent, no answer) the target may hold the command already:
   * when the connector can look the record up and it has this version or newer, the attempt
   * landed and nothing is sent again. Any doubt (no lookup, lookup failed) → send again with
   * the same idempotency key, which a well-behaved target also dedups.
   */
  async function landedEarlier(cmd: DeliveryCommand, ctx: HandlerContext, timeoutMs: number): Promise<number | undefined> {
    // a replayed entry whose last attempt before the replay timed out is looked up too
    if (!target.lookup || (ctx.history.at(-1) ?? ctx.prior?.history.at(-1))?.failureClass !== 'ambiguous') return undefined;
    try {
      // a refused token fails the lookup, and the send that follows renews it
      const headers: Record<string, string> = tokens ? { authorization: `Bearer ${await tokens.token()}` } : {};
      const found = await target.lookup(cmd.target, { timeoutMs, headers });
      const landed = found !== undefined && found.version >= cmd.version;
      o.metrics.lookups.inc({ connector: name, result: landed ? 'landed' : 'absent' });
      return landed ? found.version : undefined;
    } catch (err) {
      if (!(err instanceof TargetReadError) && !(err instanceof TokenError)) throw err;
      o.metrics.lookups.inc({ connector: name, result: 'failed' });
      ctx.log.warn({ err: err.message }, 'lookup after an ambiguous attempt failed; sending again with the same idempotency key');
      return undefined;
    }
  }

  const connectorsKv = () => o.bus.kv(o.bus.names.kv.connectors);
  /** Follows the connector's paused state in KV, so a pause from any process or the CLI applies at once. */
  async function watchPaused(): Promise<void> {
    const watch = await (await connectorsKv()).watch({ key: name });
    void (async () => {
      for await (const e of watch) {
        const state = e.operation === 'PUT' && e.value.length ? (e.json() as { paused?: boolean; reason?: string }) : {};
        paused = state.paused ? (state.reason ?? 'paused') : undefined;
        o.metrics.paused.set({ connector: name }, paused ? 1 : 0);
        log[paused ? 'warn' : 'info']({ reason: paused }, paused ? 'connector paused' : 'connector running');
      }
    })();
    stopWatch = () => watch.stop();
  }
  let stopWatch = () => {};
  async function pause(reason: string): Promise<void> {
    await (await connectorsKv()).put(name, JSON.stringify({ paused: true, reason, at: new Date().toISOString(), by: 'deliver' }));
    paused = reason;
    log.error({ reason }, `connector paused: ${reason}. Fix it, then: bus connectors resume ${name}`);
  }

  async function handle(cmd: DeliveryCommand, ctx: HandlerContext): Promise<Outcome> {
    if (paused) return defer(5_000, `connector paused: ${paused}`);
    if (!breaker.canPass()) return defer(Math.max(250, breaker.msUntilProbe()), 'circuit open');
    guard ??= createOrderingGuard({ kv: await o.bus.kv(o.bus.names.kv.versions), connector: name, mode: settings.ordering, gapWaitMs: settings.gapWaitMs, leaseMs });
    const begin = await guard.begin(cmd.entity, cmd.version, ctx.storedAtMs, { repair: cmd.repair !== undefined });
    const audit = (outcome: string, extra: Record<string, unknown> = {}) => o.bus.audit({ stage: 'deliver', outcome, correlationId: cmd.correlationId,
      eventId: cmd.event.id, connector: name, entity: cmd.entity, version: cmd.version,
      attempt: (ctx.prior ? attemptsMade(ctx.prior.history) : 0) + attemptsMade(ctx.history) + 1, ...extra }); // numbered on across a replay
    if (begin.kind === 'skip') {
      o.metrics.outcomes.inc({ connector: name, outcome: begin.reason });
      audit(begin.reason, { reason: `target already has version ${begin.applied}` });
      return done();
    }
    if (begin.kind === 'wait') return defer(begin.delayMs, begin.reason === 'gap' ? `waiting for version ${begin.applied + 1}` : 'entity busy');
    if (begin.kind === 'gap-expired') {
      o.metrics.outcomes.inc({ connector: name, outcome: 'gap' });
      return deadLetter('business', 'DELIVER_ORDER_GAP', `${cmd.entity.type} ${cmd.entity.id} version ${cmd.version} waited ${settings.gapWaitMs} ms for versions ${begin.missing.join(', ')}, which never came. Find them (bus trace), or replay this once the target is consistent.`);
    }
    const token = begin.token;
    const wait = limiter?.tryTake();
    if (wait && !wait.ok) {
      await guard.abort(token);
      return defer(wait.waitMs, 'rate limited');
    }
    const policy = o.delivery.policyFor(cmd.event.type);
    const attempt = attemptsMade(ctx.history) + 1; // counts every attempt, also those trimmed from the history
    const landed = await landedEarlier(cmd, ctx, policy.attemptTimeoutMs);
    if (landed !== undefined) {
      await guard.commit(token);
      o.metrics.outcomes.inc({ connector: name, outcome: 'delivered' });
      audit('delivered', { reason: `found at the target by lookup (version ${landed}) after an ambiguous attempt; not sent again` });
      return done();
    }
    let r: CallResult;
    try {
      r = await withToken((headers) => target.apply(cmd, { timeoutMs: policy.attemptTimeoutMs, headers }));
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      // no token: nothing was sent. Refused credentials pause the connector; an unreachable token endpoint is retried
      r = { ok: false, failureClass: err.failureClass, detail: err.message, durationMs: 0 };
    }
    o.metrics.attempts.inc({ connector: name, class: r.failureClass });
    o.metrics.seconds.observe({ connector: name }, r.durationMs / 1000);
    // a target that says how much quota is left slows us before it has to answer 429
    if (r.rateLimit) limiter?.updateFromHeaders(r.rateLimit.remaining, r.rateLimit.resetMs);
    if (r.ok) {
      await guard.commit(token);
      breaker.recordSuccess();
      limiter?.recordSuccess();
      o.metrics.outcomes.inc({ connector: name, outcome: 'delivered' });
      audit('delivered', { status: r.status, durationMs: r.durationMs, reason: r.detail });
      return done();
    }
    await guard.abort(token);
    if (r.status === 429) limiter?.penalize(r.retryAfterMs);
    // the breaker counts the target being down; a 429 is the rate limiter's, an answer like 422 means the target is up
    if (r.status !== 429 && (r.failureClass === 'transient' || r.failureClass === 'ambiguous')) breaker.recordFailure();
    else if (r.failureClass === 'business') breaker.recordSuccess();
    const failureClass = r.failureClass as Exclude<typeof r.failureClass, 'ok'>;
    audit('failed', { failureClass, status: r.status, durationMs: r.durationMs, reason: r.detail });
    const d = decide(policy, attempt, failureClass, { retryAfterMs: r.retryAfterMs });
    const what = `${name} answered ${r.detail} for ${cmd.target.type} ${cmd.target.id} (attempt ${attempt})`;
    if (d.action === 'retry' || d.action === 'lookup-then-retry') {
      // ambiguous: the next attempt looks the record up first (landedEarlier), else the same idempotency key goes again
      return retryAfter(d.delayMs, what, { failureClass, status: r.status, code: `DELIVER_${failureClass.toUpperCase()}` });
    }
    o.metrics.outcomes.inc({ connector: name, outcome: 'dead_letter' });
    if (d.action === 'pause') await pause(`${what}: ${failureClass}`);
    return deadLetter(failureClass, `DELIVER_${failureClass.toUpperCase()}`, `${what}. ${d.reason}. Not retried further; fix the cause, then: bus dlq replay --connector ${name}`,
      { status: r.status });
  }

  return {
    handle,
    breaker,
    /** Why the connector is paused, or undefined while it runs. */
    paused: () => paused,
    /** Checks the connector's credentials now (OAuth2: fetches a token); undefined when fine, else why not. */
    async checkCredentials(): Promise<string | undefined> {
      if (!tokens) return undefined;
      return tokens.token().then(() => undefined, (err: Error) => err.message);
    },
    tokenExpiresAtMs: () => tokens?.expiresAtMs(),
    async start(): Promise<Consumption> {
      tokens = await oauthFor(o.bus, o.delivery, o.fetchFn);
      await watchPaused();
      const durable = deliverDurable(name);
      await ensureConsumer(o.bus.jsm, workerConsumer({
        stream: o.bus.names.streams.deliveries, durable, description: `deliver for connector ${name}`,
        filterSubject: o.bus.names.subjects.delivery(name, '>'),
        maxDeliver: -1, // the retry policy bounds attempts; deferrals (ordering, breaker) must never run out
        ackWaitSec,
      }));
      const consumption = await o.bus.consume<DeliveryCommand>({
        stream: o.bus.names.streams.deliveries, durable, stage: 'deliver', connector: name, concurrency: o.concurrency ?? 32,
        decode: (b) => {
          const parsed = DeliveryCommand.safeParse(decode(b));
          if (!parsed.success) throw new EnvelopeError(toFieldIssues(parsed.error.issues), 'delivery command');
          return parsed.data;
        },
        handler: handle,
        // paused or circuit open: stop pulling, so the stream holds the backlog instead of cycling through it
        holdOff: () => (paused ? 5_000 : breaker.msUntilProbe()),
      });
      return {
        get inFlight() {
          return consumption.inFlight;
        },
        finished: consumption.finished,
        async stop() {
          stopWatch();
          await consumption.stop();
          await target.close?.();
        },
      };
    },
  };
}
export type Deliverer = ReturnType<typeof createDeliverer>;
