import { BusError, describeError } from '@bus/errors';
import { type BusMetrics, gaugeOf, type Logger, tally } from '@bus/observability';
import type { JetStreamClient, JsMsg, MsgRequest } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { appendAttempt, type AttemptRecord, continueHistory } from '@bus/retry';
import { forgetHistory, type HandlerContext, historyKey, loadHistory, MessageContext, saveHistory } from './consume-context.js';
import { type DeadLetter, PRIOR_HISTORY_HEADER, REPLAYS_HEADER } from './dead-letter.js';
import { classifyNatsError } from './nats-errors.js';
import { removeAcknowledgedLeftovers } from './leftovers.js';
import { deadLetter, type Outcome, retryAfter } from './outcome.js';
import { deliveryLimitOf, NO_DELIVERY_LIMIT } from './topology.js';

export type { HandlerContext } from './consume-context.js';

export interface ConsumeOptions<T> {
  stream: string;
  /** The durable consumer, created beforehand (applyTopology / ensureConsumer). */
  durable: string;
  /** Stage name for DLQ subjects and audit: ingest, transform, deliver… */
  stage: string;
  connector?: string;
  /** Messages handled at once by this process. Default 16. */
  concurrency?: number;
  /**
   * Messages pulled ahead of the handlers (the client's buffer). Default twice `concurrency`, so
   * handlers never wait for a pull round trip (the client asks again at half). A buffered message
   * ages toward ack_wait before its handler starts: handlers that wait on slow calls (deliver)
   * keep it at `concurrency`.
   */
  prefetch?: number;
  /** Turns bytes into a value; a throw is a business failure (dead-lettered, never retried). */
  decode: (data: Uint8Array, ctx: HandlerContext) => T;
  handler: (value: T, ctx: HandlerContext) => Promise<Outcome>;
  /** Delay before retrying after a thrown transient error. Default exponential from 1 s to 60 s with full jitter. */
  retryDelayMs?: (attempt: number) => number;
  /** How long stop() waits for handlers in flight. Default 30 000 ms. */
  drainTimeoutMs?: number;
  /** When the DLQ itself cannot be written, the message is retried after this. Default 5 000 ms. */
  deadLetterRetryMs?: number;
  /**
   * Deliveries (deferrals included) after which a retry or a deferral is dead-lettered as
   * ATTEMPTS_EXHAUSTED; -1 = never. Counted here, not by JetStream (whose max_deliver is -1,
   * see ensureConsumer). Default: the consumer definition's maxDeliver, as ensureConsumer
   * applied it in this process; without one, never.
   */
  maxDeliver?: number;
  /** How often the consumer's pending / ack-pending counts are read into metrics. Default 10 000 ms; 0 = never. */
  statsIntervalMs?: number;
  /**
   * Ms to hold off pulling (0 = go): while it says so, messages already pulled go back with
   * that delay, one a second, and no more are pulled, so the stream — not this process —
   * keeps the backlog (an open circuit, a paused connector). Asked before every message.
   */
  holdOff?: () => number;
}

export interface Consumption {
  /** Stops pulling, lets handlers in flight finish (bounded), and resolves. */
  stop(): Promise<void>;
  /** Rejects if consuming failed for good (e.g. the consumer was deleted). */
  readonly finished: Promise<void>;
  readonly inFlight: number;
}

export interface ConsumeDeps {
  js: JetStreamClient;
  log: Logger;
  metrics?: BusMetrics;
  attempts: () => Promise<KV>;
  deadLetter: (entry: DeadLetter) => Promise<unknown>;
  /** Runs before acks and naks leave: the audit records of the steps they settle go out first (a crash loses neither alone). */
  beforeSettle?: () => void;
  /**
   * Moves when a work-queue stream may have lost removals of acknowledged messages (store-epoch.ts: a reconnect, a
   * leader change): the look for leftovers then reads the consumer's subject from the stream's start again.
   */
  storeEpoch?: (stream: string) => number;
}

const defaultRetryDelay = (attempt: number) => Math.random() * Math.min(60_000, 1_000 * 2 ** (attempt - 1));

/**
 * The outcome of a thrown error: retryable classes retry, everything else is dead-lettered.
 * A NATS or JetStream client error is classified first (classifyNatsError), so a blip is
 * retried with backoff; anything else that is not a BusError is a bug: permanent.
 */
export function outcomeOfError(err: unknown, attempt: number, retryDelayMs = defaultRetryDelay): Outcome {
  const classified = classifyNatsError(err) ?? err;
  const { code, failureClass, message } = describeError(classified);
  if (classified instanceof BusError && classified.retryable) return retryAfter(retryDelayMs(attempt), message, { failureClass, code });
  return deadLetter(failureClass, code, message);
}

/**
 * A message delivered past its limit is not handled again; it is dead-lettered with what its
 * last delivery decided. Either that was a dead-letter the DLQ did not take (consume recorded
 * it without delayMs: a retry's record always has one), or the delivery never finished (the
 * process died or the handler outlived ack_wait).
 */
function pastLimitOutcome(history: AttemptRecord[], attempt: number, limit: number): Outcome {
  const last = history.at(-1);
  if (last && last.delayMs === undefined && last.failureClass !== 'ok') {
    return deadLetter(last.failureClass, last.code ?? 'ATTEMPTS_EXHAUSTED', last.message ?? 'dead-lettered on an earlier delivery');
  }
  return deadLetter(last?.failureClass === 'ok' || !last ? 'transient' : last.failureClass, 'ATTEMPTS_EXHAUSTED',
    `delivered ${attempt} times, past maxDeliver (${limit}), with no outcome recorded for the last delivery (the process stopped, the handler ` +
    `outlived ack_wait, or the retry history could not be written); not handled again${last?.message ? `. Last recorded attempt: ${last.message}` : ''}`);
}

/**
 * Deliveries consume allows: the option, else the definition applied in this process. A
 * consumer whose JetStream max_deliver is still set (made before consume counted, or an
 * update that was refused) is bounded by it as well, and said to be at risk.
 */
function deliveryLimit(opts: ConsumeOptions<unknown>, serverMaxDeliver: number, log: Logger): number {
  const own = opts.maxDeliver ?? deliveryLimitOf(opts.stream, opts.durable) ?? -1;
  if (serverMaxDeliver <= 0 || serverMaxDeliver >= NO_DELIVERY_LIMIT) return own > 0 ? own : -1;
  log.warn({ maxDeliver: serverMaxDeliver }, `JetStream max_deliver is ${serverMaxDeliver} on this consumer: a message whose dead-letter fails on its ` +
    'last delivery would be dropped. Restart the service that owns it (it applies its consumers at start; ensureConsumer sets -1) so consume counts deliveries');
  return own > 0 ? Math.min(own, serverMaxDeliver) : serverMaxDeliver;
}

/**
 * A durable pull consumer with bounded concurrency. The handler returns an Outcome; this
 * function alone turns it into ack / nak(delay) / dead-letter + term. A message that
 * cannot be dead-lettered (the DLQ publish failed) is nak'd, never dropped.
 */
export async function consume<T>(deps: ConsumeDeps, opts: ConsumeOptions<T>): Promise<Consumption> {
  const concurrency = opts.concurrency ?? 16;
  const consumer = await deps.js.consumers.get(opts.stream, opts.durable);
  const base = deps.log.child({ stream: opts.stream, consumer: opts.durable });
  // Deliveries are counted here, not by JetStream's max_deliver (always -1, see ensureConsumer):
  // JetStream gives up on a message after its last delivery whatever happened to it, so a
  // dead-letter that failed then (DLQ down) lost it. Counted here, such a message is nak'd,
  // comes back past the limit and is dead-lettered without running the handler again — until
  // the DLQ takes it. Retrying in-process with working() instead would lose it to a crash or a
  // stop() during a DLQ outage, since JetStream would not deliver it again.
  const limit = deliveryLimit(opts as ConsumeOptions<unknown>, (await consumer.info()).config.max_deliver ?? -1, base);
  const messages = await consumer.consume({ max_messages: Math.max(1, opts.prefetch ?? 2 * concurrency) });
  const label = { consumer: opts.durable };
  // counted in plain numbers, added to the metrics when they are read: prom-client hashes the
  // labels on every inc(), even on a child, which cost more than the rest of the bookkeeping
  const m$ = deps.metrics && {
    done: tally(deps.metrics.consumed, { ...label, outcome: 'done' }),
    deferred: tally(deps.metrics.consumed, { ...label, outcome: 'deferred' }),
    retry: tally(deps.metrics.consumed, { ...label, outcome: 'retry' }),
    deadLetter: tally(deps.metrics.consumed, { ...label, outcome: 'dead_letter' }),
    failedDeadLetter: tally(deps.metrics.consumed, { ...label, outcome: 'failed_dead_letter' }),
    redelivered: tally(deps.metrics.redelivered, label),
    inFlight: gaugeOf(deps.metrics.inFlight, label, () => inFlight),
    seconds: deps.metrics.handlerSeconds.labels(label),
  };
  const closeMetrics = () => {
    if (!m$) return;
    for (const t of [m$.done, m$.deferred, m$.retry, m$.deadLetter, m$.failedDeadLetter, m$.redelivered, m$.inFlight]) t.close();
  };
  let stopping = false;
  let inFlight = 0;
  /** What the last delivered message said was still pending for the consumer after it (no server call: see the stats below). */
  let lastPending: number | undefined;
  let slotFree: (() => void) | undefined;
  let idle: (() => void) | undefined;

  // acks decided in one event-loop turn leave in one socket write: the client writes each
  // publish's buffer on its own microtask, and one write per ack was a quarter of consume's CPU
  let acks: JsMsg[] = [];
  const flushAcks = () => {
    const batch = acks;
    acks = [];
    deps.beforeSettle?.();
    try {
      for (const m of batch) m.ack();
    } catch (err) {
      // the connection closed: JetStream redelivers these after ack_wait (at least once, as ever)
      base.warn({ err, unacknowledged: batch.length }, 'could not acknowledge handled messages; they will be redelivered after ack_wait');
    }
  };
  const ack = (m: JsMsg) => {
    if (acks.push(m) === 1) setImmediate(flushAcks);
  };
  const nak = (m: JsMsg, delayMs?: number) => {
    deps.beforeSettle?.();
    m.nak(delayMs);
  };

  /** The success path stays light: no history, headers, logger or timestamps unless something needs them. */
  const handle = async (m: JsMsg) => {
    try {
      const started = performance.now();
      const attempt = m.info.deliveryCount;
      lastPending = m.info.pending;
      const ctx = new MessageContext(m, attempt, limit > 0 && attempt >= limit, base, opts.stage, opts.connector);
      if (attempt > 1) {
        m$?.redelivered.inc();
        ctx.history = await loadHistory(deps.attempts, historyKey(opts.durable, m.seq), ctx.log);
      }
      const pastLimit = limit > 0 && attempt > limit;
      let outcome: Outcome;
      if (pastLimit) {
        outcome = pastLimitOutcome(ctx.history, attempt, limit);
      } else {
        try {
          outcome = await opts.handler(opts.decode(m.data, ctx), ctx);
        } catch (err) {
          outcome = outcomeOfError(err, attempt, opts.retryDelayMs);
        }
      }
      const durationMs = Math.round(performance.now() - started);
      m$?.seconds.observe(durationMs / 1000);
      if (outcome.kind === 'done') {
        ack(m);
        m$?.done.inc();
        if (ctx.history.length) await forgetHistory(deps.attempts, historyKey(opts.durable, m.seq), ctx.log);
        return;
      }
      await settle(m, ctx, outcome, durationMs, pastLimit);
    } catch (err) {
      base.error({ err }, 'message handling crashed; it will be redelivered after ack_wait');
    } finally {
      inFlight--;
      slotFree?.();
      slotFree = undefined;
      if (inFlight === 0) idle?.();
    }
  };

  /** Every outcome but done: nak with a delay, or dead-letter and term; the history is kept for the next delivery. */
  const settle = async (m: JsMsg, ctx: MessageContext, decided: Outcome, durationMs: number, pastLimit: boolean) => {
    let outcome = decided;
    let history = ctx.history;
    const key = historyKey(opts.durable, m.seq);
    // the last delivery the limit allows: a retry or a deferral becomes a dead-letter
    if ((outcome.kind === 'retry' || outcome.kind === 'defer') && ctx.finalAttempt) {
      outcome = deadLetter(outcome.kind === 'retry' ? (outcome.failureClass ?? 'transient') : 'transient', 'ATTEMPTS_EXHAUSTED',
        `maxDeliver (${limit}) reached; last attempt: ${outcome.reason}`);
    }
    if (outcome.kind === 'done') return; // not reached: done is settled by handle
    if (outcome.kind === 'defer') {
      nak(m, outcome.delayMs);
      m$?.deferred.inc();
      return;
    }
    const at = new Date().toISOString();
    if (outcome.kind === 'retry') {
      const { delayMs, reason, failureClass = 'transient', status, code } = outcome;
      history = appendAttempt(history, { failureClass, status, code, message: reason, delayMs, durationMs, at });
      await saveHistory(deps.attempts, key, history, ctx.log);
      ctx.log.warn({ delayMs, failureClass, code, status }, `handling failed; will retry: ${reason}`);
      nak(m, delayMs);
      m$?.retry.inc();
      return;
    }
    const { failureClass, code, reason, details } = outcome;
    const attempt = ctx.attempt;
    // past the limit nothing was attempted: the history already ends with the dead-letter that failed
    if (!pastLimit) history = appendAttempt(history, { failureClass, code, message: reason, durationMs, at });
    // a replay that fails again: one entry with the attempts before the replay and this round's, numbered on
    const before = ctx.prior;
    const { [PRIOR_HISTORY_HEADER]: _carried, ...originalHeaders } = ctx.headers;
    const entry: DeadLetter = {
      id: `${opts.stream}.${m.seq}`, stage: opts.stage, connector: opts.connector, failureClass, code, reason, details,
      attempts: (before?.attempts ?? 0) + (pastLimit ? limit : attempt), history: before ? continueHistory(before.history, history) : history,
      deadLetteredAt: at, correlationId: ctx.facts.correlationId,
      original: { stream: opts.stream, seq: m.seq, subject: m.subject, msgId: ctx.facts.msgId, headers: originalHeaders, data: m.data },
      replays: Number(ctx.headers[REPLAYS_HEADER] ?? 0) || 0,
    };
    try {
      await deps.deadLetter(entry);
      deps.beforeSettle?.();
      m.term(); // no reason text: nats-server 2.9 does not understand +TERM with a reason
      m$?.deadLetter.inc();
      deps.metrics?.deadLettered.inc({ stage: opts.stage, failure_class: failureClass });
      ctx.log[failureClass === 'permanent' ? 'error' : 'warn']({ failureClass, code }, `dead-lettered: ${reason}`);
      await forgetHistory(deps.attempts, key, ctx.log);
    } catch (err) {
      // the DLQ is unreachable: keep the message in its stream and try again. JetStream redelivers
      // it whatever the count (max_deliver -1); past the limit it is dead-lettered, not handled again
      if (!pastLimit) await saveHistory(deps.attempts, key, history, ctx.log);
      const delayMs = opts.deadLetterRetryMs ?? 5_000;
      nak(m, delayMs);
      m$?.failedDeadLetter.inc();
      ctx.log.error({ err, failureClass, code, delayMs, maxDeliver: limit },
        `could not dead-letter (${code}): the DLQ publish failed; the message stays in ${opts.stream} and its dead-letter is tried again in ${delayMs} ms`);
    }
  };

  // Queue depth for dashboards (the consumer's own view, shared by every process on it) and, on a work queue, the
  // acknowledged messages a nats-server crash can leave behind: both from one consumer info. nats-server 2.9 counts a
  // filtered consumer's pending by walking every subject of its stream while holding it (measured: 35–45 ms with
  // 200,000 subjects, the backlog of a paused connector on DELIVERIES — every publish and delivery of the stream waits
  // meanwhile). So the info is asked at most once per 1,000 times its last answer took (10 s while it answers in
  // 10 ms, 40 s at 40 ms), and meanwhile the pending gauge follows the count each delivered message carries.
  const statsMs = opts.statsIntervalMs ?? 10_000;
  const jsm = await deps.js.jetstreamManager();
  const workQueue = (await jsm.streams.info(opts.stream)).config.retention === 'workqueue';
  const labels = { stream: opts.stream, consumer: opts.durable };
  let nextInfoAt = 0;
  let asking = false;
  // Leftovers are looked for only while the server may have lost removals: at start; after a store-epoch move, with
  // every info for 5 minutes — lost removals can surface a while after the restart, below what a look right after the
  // reconnect found clear (seen in the chaos suite's nats-restart); and as a net for a loss this process cannot see
  // (in a cluster, the restart of a server it is not connected to), every 10 minutes or 10,000 times the last look
  // took. Not with every info: a look reads the consumer's subject from the stream's start, and nats-server 2.9 loads
  // every block in front of its first message — another connector's backlog on DELIVERIES: 0.4–1.7 s stalls. Even a
  // look from where the last one found clear loaded the other connector's messages since (the soak at 300/s with crm
  // paused: 95,000 sequences, nats-server +90 MB, a 0.5 s stall every minute or two, as infos grow rarer); and it
  // finds nothing without a loss.
  const epoch = () => deps.storeEpoch?.(opts.stream) ?? 0;
  let seenEpoch = epoch();
  let movedAt = Number.NEGATIVE_INFINITY;
  let nextLookAt = 0;
  const stats = (deps.metrics || workQueue) && statsMs > 0
    ? setInterval(() => {
        if (lastPending !== undefined) deps.metrics?.consumerPending.set(labels, lastPending);
        if (asking || performance.now() < nextInfoAt) return;
        asking = true;
        const started = performance.now();
        const epochAtInfo = epoch();
        consumer.info().then(async (i) => {
          nextInfoAt = performance.now() + (performance.now() - started) * 1_000 - statsMs;
          lastPending = undefined; // until the next delivery: this answer is newer
          if (deps.metrics) {
            deps.metrics.consumerPending.set(labels, i.num_pending);
            deps.metrics.consumerAckPending.set(labels, i.num_ack_pending);
            // the oldest unfinished message: the first of the consumer's subject after its ack floor (one direct read)
            const oldest = i.num_pending + i.num_ack_pending === 0 ? null : await jsm.streams
              .getMessage(opts.stream, { next_by_subj: i.config.filter_subject || '>', seq: i.ack_floor.stream_seq + 1 } as unknown as MsgRequest).catch(() => null);
            deps.metrics.consumerOldestAge.set(labels, oldest ? Math.max(0, (Date.now() - Date.parse(oldest.timestamp)) / 1000) : 0);
          }
          if (workQueue) {
            if (epochAtInfo !== seenEpoch) [seenEpoch, movedAt] = [epochAtInfo, performance.now()];
            if (performance.now() - movedAt < 300_000 || performance.now() >= nextLookAt) { // at start too: nextLookAt 0
              const looked = performance.now();
              const removed = await removeAcknowledgedLeftovers(jsm, opts.stream, i);
              nextLookAt = performance.now() + Math.max(600_000, (performance.now() - looked) * 10_000);
              if (removed) base.warn({ removed }, 'removed messages this consumer had acknowledged but the work queue still held (nats-server lost their removal in a crash)');
            }
          }
        }).catch(() => undefined).finally(() => {
          asking = false;
        });
      }, statsMs)
    : undefined;
  stats?.unref();

  const finished = (async () => {
    for await (const m of messages) {
      if (stopping) {
        nak(m); // handed to another process at once instead of after ack_wait
        continue;
      }
      const holdMs = opts.holdOff?.() ?? 0;
      if (holdMs > 0) {
        nak(m, holdMs);
        m$?.deferred.inc();
        // the client pulls more only as this loop iterates: pausing it here stops the pulling,
        // handing back at most one buffered message a second until the hold ends
        await new Promise((r) => setTimeout(r, Math.min(holdMs, 1_000)));
        continue;
      }
      while (inFlight >= concurrency) await new Promise<void>((r) => (slotFree = r));
      inFlight++;
      void handle(m);
    }
  })();

  return {
    get inFlight() {
      return inFlight;
    },
    finished,
    async stop() {
      if (stopping) return;
      stopping = true;
      clearInterval(stats);
      await messages.close();
      await finished.catch(() => undefined);
      if (inFlight > 0) {
        const timeoutMs = opts.drainTimeoutMs ?? 30_000;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((r) => (idle = r)),
          new Promise<void>((r) => (timer = setTimeout(r, timeoutMs))),
        ]);
        clearTimeout(timer);
        if (inFlight > 0) base.warn({ inFlight, timeoutMs }, 'stopped with handlers still running; their messages will be redelivered');
      }
      flushAcks(); // now, not on the next turn: the caller may close the connection next
      closeMetrics();
    },
  };
}
