import { hostname } from 'node:os';
import { type Bus, type Consumption, deadLetter, defer, done, ensureConsumer, type HandlerContext, type Outcome, retryAfter } from '@bus/bus';
import { missingScopes, scopeProblem, TokenError, type TokenProvider } from '@bus/auth';
import { createCircuitBreaker } from '@bus/breaker';
import { DeliveryCommand } from '@bus/connectors';
import { decode, EnvelopeError, toFieldIssues } from '@bus/envelope';
import type { Logger } from '@bus/observability';
import { createOrderingGuard, type LookupResult, type OrderingGuard, pendingVersions, startFolder, type Token } from '@bus/ordering';
import { transformDurable } from '@bus/transformer';
import type { ConsumerInfo } from '@nats-io/jetstream';
import { createRateLimiter } from '@bus/ratelimit';
import { attemptsMade, decide } from '@bus/retry';
import { workerConsumer } from '@bus/streams';
import { createDependencies, DEPENDENCY_MISSING } from './dependencies.js';
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
  /**
   * Fold entities idle for `idleMs` into partition values (@bus/ordering fold.ts), a pass every `everyMs`:
   * keeps nats-server's memory per entity small. Default 600 000 / 60 000 ms; idleMs 0 = never.
   */
  fold?: { idleMs: number; everyMs: number };
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
  let guard: Promise<OrderingGuard> | undefined;
  // the entity lease outlives the longest attempt with room to renew it (every third of it) during the call;
  // a crashed process's entity is taken over after leaseMs, its command comes back after ack_wait
  const longestAttemptMs = Math.max(o.delivery.policyFor('').attemptTimeoutMs, ...Object.keys(settings.retryByType ?? {}).map((t) => o.delivery.policyFor(t).attemptTimeoutMs));
  const leaseMs = longestAttemptMs * 2 + 2_000;
  const ackWaitSec = Math.ceil(leaseMs / 1000) + 2;
  /** A call must end this long before the lease does, so a lease that cannot be renewed never runs out mid-call. */
  const LEASE_MARGIN_MS = 1_000;
  /** No call starts with less lease left than this: it goes back to wait instead. */
  const SHORTEST_CALL_MS = 1_000;
  let paused: string | undefined;
  let tokens: TokenProvider | undefined;
  const auth = settings.kind === 'http' ? settings.auth : undefined;
  const requiredScopes = auth && 'requiredScopes' in auth ? auth.requiredScopes : undefined;
  /** Why the current token may not be used (a required scope was not granted), or undefined. Read from the token in hand: checked again after every refresh. */
  const scopeMissing = (): string | undefined => {
    const missing = missingScopes(requiredScopes, tokens?.scopes());
    return missing.length ? scopeProblem(name, missing, tokens?.scopes()) : undefined;
  };
  let scopeLogged: string | undefined;
  const target = o.delivery.target;
  const dependencies = createDependencies({ bus: o.bus, connector: name, waitMs: settings.dependencies?.waitMs ?? 60_000, log });
  /** A record was delivered here: commands dead-lettered waiting for it are replayed (only where the connector uses dependencies). */
  const delivered = (cmd: DeliveryCommand) => {
    if (settings.dependencies) void dependencies.afterDelivered(cmd.entity);
  };

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
   * An earlier attempt of this version may have landed (it timed out, or its process died mid-call):
   * when the connector can look the record up, find out before sending. landed: the target has this
   * version or newer; absent: it does not; failed: the lookup failed (retried as a lookup, never
   * turned into a blind send); no-lookup: the target cannot be asked, so the same idempotency key goes again.
   */
  async function lookUp(cmd: DeliveryCommand, timeoutMs: () => number): Promise<{ result: 'landed' | 'absent' | 'failed' | 'no-lookup'; version: number; detail?: string }> {
    if (!target.lookup) return { result: 'no-lookup', version: 0 };
    try {
      const found = await withToken(async (headers) => {
        try {
          return { record: await target.lookup!(cmd.target, { timeoutMs: timeoutMs(), headers }) };
        } catch (err) {
          if (err instanceof TargetReadError && err.status === 401) return { status: 401 as const, err };
          throw err;
        }
      });
      if ('err' in found) throw found.err;
      const r = found.record;
      // a repair is wanted only while the target still lacks this state: the same version with the command's fields is there already
      const landed = r !== undefined && (cmd.repair
        ? r.version > cmd.version || (r.version === cmd.version && Object.entries(cmd.fields).every(([k, v]) => JSON.stringify(r.fields[k]) === JSON.stringify(v)))
        : r.version >= cmd.version);
      o.metrics.lookups.inc({ connector: name, result: landed ? 'landed' : 'absent' });
      return { result: landed ? 'landed' : 'absent', version: found.record?.version ?? 0 };
    } catch (err) {
      if (!(err instanceof TargetReadError) && !(err instanceof TokenError)) throw err;
      o.metrics.lookups.inc({ connector: name, result: 'failed' });
      return { result: 'failed', version: 0, detail: err.message };
    }
  }

  /**
   * The ordering guard, made once on first use. The promise is kept, not the guard: handlers that start
   * together share one guard (one holder, one set of entities in use here) instead of each making its own.
   */
  const guardFor = () => (guard ??= makeGuard().catch((err: unknown) => {
    guard = undefined; // a bucket that could not be opened is tried again by the next command
    throw err;
  }));
  async function makeGuard(): Promise<OrderingGuard> {
    const kv = await o.bus.kv(o.bus.names.kv.versions);
    const { streams, subjects } = o.bus.names;
    const upstreamDurable = transformDurable(name);
    let upstreamInfo: { at: number; info: Promise<ConsumerInfo> } | undefined;
    const kvOps = { get: o.metrics.kvOps.labels({ connector: name, op: 'get' }), create: o.metrics.kvOps.labels({ connector: name, op: 'create' }), update: o.metrics.kvOps.labels({ connector: name, op: 'update' }) };
    return createOrderingGuard({
      kv, connector: name, mode: settings.ordering, gapWaitMs: settings.gapWaitMs, reorderWindowMs: settings.reorderWindowMs, leaseMs,
      // a lapsed lease is taken over only after its holder's longest call could have ended too: a holder stalled
      // (GC, a starved CPU) between its last check and the request going out still lands before its successor
      takeoverGraceMs: longestAttemptMs + LEASE_MARGIN_MS,
      pending: (entity, stopAt) => pendingVersions(o.bus.jsm, streams.deliveries, subjects.deliveriesOfEntity(name, entity), { stopAt }),
      // a version still queued in transform is not missing: the gap clock starts once transform has passed what was stored when the gap was seen
      upstream: {
        mark: async () => (await o.bus.jsm.streams.info(streams.events)).state.last_seq,
        async passed(mark) {
          if (!upstreamInfo || Date.now() - upstreamInfo.at > 500) upstreamInfo = { at: Date.now(), info: o.bus.jsm.consumers.info(streams.events, upstreamDurable) };
          const i = await upstreamInfo.info.catch(() => undefined);
          return i === undefined || (i.num_pending === 0 && i.num_ack_pending === 0) || i.ack_floor.stream_seq >= mark;
        },
      },
      onKvOp: (op) => kvOps[op].inc(),
    });
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
    if (requiredScopes?.length && tokens) {
      // the token in hand (refreshed here when due): one without a required scope is never used, the command waits in the stream
      const problem = await tokens.token().then(scopeMissing, () => undefined); // a token error is the attempt's to classify
      if (problem) {
        o.metrics.waits.inc({ connector: name, reason: 'scope' });
        if (scopeLogged !== problem) log.error({ requiredScopes, granted: tokens.scopes() }, problem);
        scopeLogged = problem;
        return defer(5_000, 'a required OAuth2 scope is missing');
      }
      scopeLogged = undefined;
    }
    if (!breaker.canPass()) return defer(Math.max(250, breaker.msUntilProbe()), 'circuit open');
    if (cmd.needs?.length) {
      // before the entity lease: a command waiting for another record holds nothing
      const dep = await dependencies.check(cmd, ctx.storedAtMs);
      if (dep.kind === 'wait') {
        o.metrics.waits.inc({ connector: name, reason: 'dependency' });
        return defer(dep.delayMs, `waiting for ${dep.need.type}/${dep.need.id} (${dep.why})`);
      }
      if (dep.kind === 'missing') {
        const need = `${dep.need.type}/${dep.need.id}`;
        await dependencies.markWaiting(cmd, dep.need);
        o.metrics.outcomes.inc({ connector: name, outcome: 'dead_letter' });
        return deadLetter('business', DEPENDENCY_MISSING, `${cmd.target.type}/${cmd.target.id} needs ${need} at ${name} first, and ${dep.why}. ` +
          `Not sent. It is replayed by itself once ${need} is delivered (e.g. bus dlq replay --connector ${name} for ${need})`, { needs: cmd.needs.map((n) => `${n.type}/${n.id}`), missing: need });
      }
    }
    const g = await guardFor();
    const begin = await g.begin({ entity: cmd.entity, version: cmd.version, versionKind: cmd.versionKind, storedAtMs: ctx.storedAtMs, repair: cmd.repair !== undefined });
    const audit = (outcome: string, extra: Record<string, unknown> = {}) => o.bus.audit({ stage: 'deliver', outcome, correlationId: cmd.correlationId,
      eventId: cmd.event.id, connector: name, entity: cmd.entity, version: cmd.version,
      attempt: (ctx.prior ? attemptsMade(ctx.prior.history) : 0) + attemptsMade(ctx.history) + 1, // numbered on across a replay
      ...(cmd.repair ? { details: { repair: cmd.repair } } : {}), ...extra }, { eventIndexed: true }); // event id and entity: indexed with the event's `stored` record
    if (begin.kind === 'skip') {
      o.metrics.outcomes.inc({ connector: name, outcome: begin.reason });
      if (begin.reason === 'duplicate') delivered(cmd); // e.g. a replay of what had landed: what waits for it may go
      audit(begin.reason, { reason: `target already has version ${begin.applied}` });
      return done();
    }
    if (begin.kind === 'wait') {
      o.metrics.waits.inc({ connector: name, reason: begin.reason });
      const why = { gap: `waiting for version ${begin.applied + 1}`, pending: 'an older version is still on its way', reorder: 'holding the reorder window', busy: 'entity busy' }[begin.reason];
      // a command that keeps waiting is looked at less often (up to 2 s): a long backlog costs fewer redeliveries
      return defer(Math.min(2_000, begin.delayMs * Math.ceil(ctx.attempt / 4)), why);
    }
    if (begin.kind === 'gap-expired') {
      o.metrics.outcomes.inc({ connector: name, outcome: 'gap' });
      return deadLetter('business', 'DELIVER_ORDER_GAP', `${cmd.entity.type} ${cmd.entity.id} version ${cmd.version}: versions ${begin.missing.join(', ')} were neither pending nor in flight anywhere for ${Math.round(begin.waitedMs / 1000)} s (gapWaitMs ${settings.gapWaitMs}). Find them (bus trace), or replay this once the target is consistent.`);
    }
    const token = begin.token;
    const wait = limiter?.tryTake();
    if (wait && !wait.ok) {
      await g.abort(token);
      return defer(wait.waitMs, 'rate limited');
    }
    // the lease is renewed while the attempt runs (and the message's ack timer with it); every call is bounded by the lease left
    let leaseLost = false;
    const renewal = setInterval(() => {
      ctx.working();
      g.renew(token).then((held) => { if (!held) leaseLost = true; }, (err: Error) => ctx.log.warn({ err: err.message }, 'could not renew the entity lease; calls are cut to the time it has left'));
    }, Math.max(250, Math.floor(leaseMs / 3)));
    try {
      return await attempt(cmd, ctx, g, token, begin.inDoubt, () => leaseLost, audit);
    } finally {
      clearInterval(renewal);
    }
  }

  /** One attempt while holding the entity's lease: look up first when in doubt, then call, then record the outcome (fenced). */
  async function attempt(cmd: DeliveryCommand, ctx: HandlerContext, g: OrderingGuard, token: Token, inDoubt: boolean, leaseLost: () => boolean,
    audit: (outcome: string, extra?: Record<string, unknown>) => void): Promise<Outcome> {
    const policy = o.delivery.policyFor(cmd.event.type);
    const attemptNo = attemptsMade(ctx.history) + 1; // counts every attempt, also those trimmed from the history
    const timeoutMs = () => Math.min(policy.attemptTimeoutMs, token.untilMs - Date.now() - LEASE_MARGIN_MS);
    const leaseEnough = () => !leaseLost() && timeoutMs() >= Math.min(policy.attemptTimeoutMs, SHORTEST_CALL_MS);
    const leaseShort = (what: string): Outcome => {
      // nothing is written: the lease record keeps this version, so the next attempt (here or in another process) looks it up first
      g.release(token);
      o.metrics.waits.inc({ connector: name, reason: 'lease' });
      ctx.log.warn(`entity lease ${leaseLost() ? 'lost' : 'running out'} ${what}; the command goes back to wait and is looked up next time`);
      return defer(1_000, `entity lease ${leaseLost() ? 'lost' : 'too short'} ${what}`);
    };
    /** A failed attempt (or lookup): its class decides — retry with backoff, dead-letter, or pause the connector. */
    const failed = async (failureClass: Exclude<CallResult['failureClass'], 'ok'>, detail: string, status?: number, retryAfterMs?: number): Promise<Outcome> => {
      const d = decide(policy, attemptNo, failureClass, { retryAfterMs });
      const what = `${name} answered ${detail} for ${cmd.target.type} ${cmd.target.id} (attempt ${attemptNo})`;
      if (d.action === 'retry' || d.action === 'lookup-then-retry') {
        // ambiguous: the next attempt looks the record up first, else the same idempotency key goes again
        return retryAfter(d.delayMs, what, { failureClass, status, code: `DELIVER_${failureClass.toUpperCase()}` });
      }
      o.metrics.outcomes.inc({ connector: name, outcome: 'dead_letter' });
      if (d.action === 'pause') await pause(`${what}: ${failureClass}`);
      return deadLetter(failureClass, `DELIVER_${failureClass.toUpperCase()}`, `${what}. ${d.reason}. Not retried further; fix the cause, then: bus dlq replay --connector ${name}`,
        { status });
    };
    // a replayed entry whose last attempt before the replay timed out is looked up too
    const lastClass = (ctx.history.at(-1) ?? ctx.prior?.history.at(-1))?.failureClass;
    let lookup: LookupResult | undefined;
    // a repair looks first too: reconcile compared a moment ago, and the live delivery may have landed since
    if (inDoubt || lastClass === 'ambiguous' || cmd.repair) {
      if (!leaseEnough()) return leaseShort('before the lookup');
      const found = await lookUp(cmd, timeoutMs);
      if (found.result === 'landed') {
        if (!(await g.commit(token, { found: found.version }))) return leaseShort('after the lookup');
        // the target has this version, or a newer one whose attempt had landed: either way nothing is sent
        const outcome = found.version > cmd.version ? 'stale' : 'delivered';
        o.metrics.outcomes.inc({ connector: name, outcome });
        delivered(cmd);
        audit(outcome, { reason: cmd.repair
          ? `repair not needed: the target holds version ${found.version} with these fields already (delivered since reconcile compared); not sent`
          : `found at the target by lookup (version ${found.version}) after an attempt that may have landed; not sent` });
        return done();
      }
      if (found.result === 'failed') {
        // still in doubt: never a blind send; the next attempt looks again
        await g.abort(token, { inDoubt: true });
        ctx.log.warn({ err: found.detail }, 'lookup after an attempt that may have landed failed; looking again later, not sending');
        audit('failed', { failureClass: 'ambiguous', reason: `lookup failed: ${found.detail}` });
        return failed('ambiguous', `a lookup with ${found.detail}`);
      }
      if (found.result === 'absent') lookup = { found: found.version };
    }
    if (!leaseEnough()) return leaseShort('before the call');
    let r: CallResult;
    try {
      r = await withToken((headers) => {
        if (!leaseEnough()) return Promise.resolve<CallResult>({ ok: false, failureClass: 'transient', detail: 'entity lease too short for another call', durationMs: 0, notSent: true });
        return target.apply(cmd, { timeoutMs: timeoutMs(), headers });
      });
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      // no token: nothing was sent. Refused credentials pause the connector; anything else (an unreachable token
      // endpoint, a refresh in doubt) is retried: the delivery itself is not in doubt
      r = { ok: false, failureClass: err.failureClass === 'permanent' ? 'permanent' : 'transient', detail: err.message, durationMs: 0, notSent: true };
    }
    if (r.notSent && r.failureClass === 'transient' && !leaseEnough()) return leaseShort('before the call');
    o.metrics.attempts.inc({ connector: name, class: r.failureClass });
    o.metrics.seconds.observe({ connector: name }, r.durationMs / 1000);
    // a target that says how much quota is left slows us before it has to answer 429
    if (r.rateLimit) limiter?.updateFromHeaders(r.rateLimit.remaining, r.rateLimit.resetMs);
    if (r.ok) {
      breaker.recordSuccess();
      limiter?.recordSuccess();
      // fenced: a lease lost mid-call records nothing; the command comes back in doubt and is looked up
      if (!(await g.commit(token, lookup))) return leaseShort('during the call (it answered ok)');
      o.metrics.outcomes.inc({ connector: name, outcome: 'delivered' });
      delivered(cmd);
      audit('delivered', { status: r.status, durationMs: r.durationMs, reason: r.detail });
      return done();
    }
    const failureClass = r.failureClass as Exclude<typeof r.failureClass, 'ok'>;
    // a timeout may have landed: the version stays in doubt; a clear refusal resolves nothing but adds no doubt
    await g.abort(token, { inDoubt: failureClass === 'ambiguous', lookup });
    if (r.status === 429) limiter?.penalize(r.retryAfterMs);
    // the breaker counts the target being down; a 429 is the rate limiter's, an answer like 422 means the target is up
    if (r.status !== 429 && (failureClass === 'transient' || failureClass === 'ambiguous')) breaker.recordFailure();
    else if (failureClass === 'business') breaker.recordSuccess();
    audit('failed', { failureClass, status: r.status, durationMs: r.durationMs, reason: r.detail });
    return failed(failureClass, r.detail, r.status, r.retryAfterMs);
  }

  return {
    handle,
    breaker,
    /** Why the connector is paused, or undefined while it runs. */
    paused: () => paused,
    /** Checks the connector's credentials now (OAuth2: fetches a token); undefined when fine, else why not. */
    async checkCredentials(): Promise<string | undefined> {
      if (!tokens) return undefined;
      return tokens.token().then(scopeMissing, (err: Error) => err.message);
    },
    /** The connector declares required OAuth2 scopes: its credentials check is worth repeating after every refresh. */
    checksScopes: !!requiredScopes?.length,
    tokenExpiresAtMs: () => tokens?.expiresAtMs(),
    async start(): Promise<Consumption> {
      tokens = await oauthFor(o.bus, o.delivery, o.fetchFn, log);
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
        prefetch: o.concurrency ?? 32, // calls can take seconds: pull no further ahead than the handlers
        decode: (b) => {
          const parsed = DeliveryCommand.safeParse(decode(b));
          if (!parsed.success) throw new EnvelopeError(toFieldIssues(parsed.error.issues), 'delivery command');
          return parsed.data;
        },
        handler: handle,
        // paused or circuit open: stop pulling, so the stream holds the backlog instead of cycling through it
        holdOff: () => (paused ? 5_000 : breaker.msUntilProbe()),
      });
      const fold = o.fold ?? { idleMs: 600_000, everyMs: 60_000 };
      const folder = fold.idleMs > 0
        ? startFolder({ bus: o.bus, connector: name, idleMs: fold.idleMs, everyMs: fold.everyMs, log,
          onPass: (r) => {
            o.metrics.folded.inc({ connector: name }, r.folded);
            o.metrics.hotKeys.set({ connector: name }, r.looked - r.folded);
          } })
        : undefined;
      return {
        get inFlight() {
          return consumption.inFlight;
        },
        finished: consumption.finished,
        async stop() {
          stopWatch();
          await folder?.stop();
          await consumption.stop();
          await target.close?.();
        },
      };
    },
  };
}
export type Deliverer = ReturnType<typeof createDeliverer>;
