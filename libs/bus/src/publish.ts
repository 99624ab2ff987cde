import { BusError } from '@bus/errors';
import { ClosedConnectionError, DrainingConnectionError, type NatsConnection, NoRespondersError, TimeoutError } from '@nats-io/nats-core';
import { JetStreamApiError } from '@nats-io/jetstream';
import type { BusMetrics } from '@bus/observability';
import { encodedHeaders, jsPublisher } from './js-ack.js';
import { endOfTurn } from './turn.js';

/** What JetStream said about one stored message. */
export interface Published {
  stream: string;
  seq: number;
  /** True when the Nats-Msg-Id was seen within the duplicate window: nothing new was stored. */
  duplicate: boolean;
}

export interface PublishOptions {
  /** Nats-Msg-Id: the dedup id. Required: a publish without one could store twice on retry. */
  msgId: string;
  headers?: Record<string, string>;
  /** PubAck wait; default from BUS_PUBLISH_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Store only if the stream's last sequence is this (optimistic concurrency). */
  expectLastSequence?: number;
}

/**
 * Why a publish was not stored. Transient: NATS unreachable, no JetStream answering, the
 * PubAck timed out (the message MAY be stored: retry with the same msgId, which dedups).
 * Permanent: no stream takes the subject, or the message breaks a stream limit.
 */
export class PublishError extends BusError {}

const permanentApiCodes = new Set([
  10059, // stream not found
  10054, // message size exceeds maximum allowed
]);

export function classifyPublishError(err: unknown, subject: string): PublishError {
  if (err instanceof PublishError) return err;
  const cause = err instanceof Error ? err : new Error(String(err)); // plain on purpose: only the cause of the coded error made below
  if (err instanceof TimeoutError) {
    return new PublishError('PUBLISH_TIMEOUT', 'transient',
      `no PubAck for ${subject} in time: JetStream may be down or overloaded, and the message may or may not be stored. Retry with the same Nats-Msg-Id; it dedups.`, { cause });
  }
  // v3 reports "nobody answered the JetStream publish" as JetStreamNotEnabled caused by a RequestError
  const noResponders = err instanceof NoRespondersError || cause.name === 'JetStreamNotEnabled' || cause.cause instanceof NoRespondersError
    || /no responders/i.test(cause.message) || (cause.cause as Error | undefined)?.name === 'RequestError';
  if (noResponders) {
    return new PublishError('PUBLISH_NO_STREAM_RESPONDED', 'transient',
      `no JetStream server answered for ${subject}: JetStream is unavailable, or no stream takes this subject. Check 'bus streams status' and the server.`, { cause });
  }
  if (err instanceof ClosedConnectionError || err instanceof DrainingConnectionError) {
    return new PublishError('PUBLISH_CONNECTION_CLOSED', 'transient', `the NATS connection is closing; ${subject} was not published`, { cause });
  }
  if (err instanceof JetStreamApiError) {
    const api = err.apiError();
    const permanent = permanentApiCodes.has(api.err_code ?? 0);
    return new PublishError(`PUBLISH_REJECTED_${api.err_code ?? api.code}`, permanent ? 'permanent' : 'transient',
      `JetStream refused ${subject}: ${api.description}${permanent ? '. Fix the stream definition or the message; retrying will not help.' : '. Will succeed once the stream has room or the server recovers.'}`, { cause });
  }
  return new PublishError('PUBLISH_FAILED', 'transient', `publishing ${subject} failed: ${cause.message}`, { cause });
}

export type Publish = (subject: string, data: Uint8Array, opts: PublishOptions) => Promise<Published>;

/**
 * publish(): sets Nats-Msg-Id, awaits the PubAck with a timeout, reports duplicates, and
 * turns every failure into a classified PublishError. Nothing is retried here: the
 * caller knows whether its own caller (a provider, a consumer) will retry.
 */
export function createPublish(nc: NatsConnection, defaultTimeoutMs: number, metrics?: BusMetrics): Publish {
  // one reply subscription for every PubAck, headers written as bytes once (js-ack.ts); publishes started in one
  // event-loop turn leave in one socket write, as consume's acks do (turn.ts)
  const send = jsPublisher(nc);
  return async (subject, data, opts) => {
    if (!opts.msgId) {
      throw new PublishError('PUBLISH_NO_MSG_ID', 'permanent', `publish to ${subject} without a msgId: every publish needs one so a retry stores once`);
    }
    const h = encodedHeaders({
      ...opts.headers, 'Nats-Msg-Id': opts.msgId,
      ...(opts.expectLastSequence !== undefined ? { 'Nats-Expected-Last-Sequence': String(opts.expectLastSequence) } : {}),
    });
    await endOfTurn();
    const started = performance.now();
    try {
      const ack = await send(subject, data, h, opts.timeoutMs ?? defaultTimeoutMs);
      metrics?.publishSeconds.observe({ stream: ack.stream }, (performance.now() - started) / 1000);
      metrics?.published.inc({ stream: ack.stream, outcome: ack.duplicate ? 'duplicate' : 'stored' });
      return ack;
    } catch (err) {
      metrics?.published.inc({ stream: subject.split('.')[0] ?? subject, outcome: 'failed' });
      throw classifyPublishError(err, subject);
    }
  };
}
