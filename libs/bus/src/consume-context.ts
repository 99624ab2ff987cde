import { readHeaderFacts, type HeaderFacts } from '@bus/envelope';
import { logFor, type Logger } from '@bus/observability';
import type { JsMsg } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { AttemptRecord } from '@bus/retry';
import { PRIOR_HISTORY_HEADER, type PriorHistory, readPriorHistory } from './dead-letter.js';

/** What a handler knows about the message besides its decoded value. */
export interface HandlerContext {
  subject: string;
  /** Stream sequence: unique per stored message. */
  seq: number;
  /** 1 on first delivery; JetStream's delivery count (deferrals count too). */
  attempt: number;
  /** When the message was stored (ms since epoch): how long it has been waiting. */
  storedAtMs: number;
  /** True on the last delivery the consumer's maxDeliver allows: a retry or a deferral now becomes a dead-letter. */
  finalAttempt: boolean;
  /**
   * Earlier failed attempts of this message, numbered by attempt (deferrals are not attempts); the newest 50.
   * A replayed message starts a fresh round here (so retry limits give it a fresh set of attempts);
   * the attempts before its replay are in `prior`, and its DLQ entry, should it fail again, has both.
   */
  history: AttemptRecord[];
  /** When this message was replayed from a DLQ entry of this stage and connector: the attempts before the replay. */
  readonly prior: PriorHistory | undefined;
  headers: Record<string, string>;
  facts: HeaderFacts;
  /** Bound to the message's correlation id, stream, seq and attempt. */
  log: Logger;
  /** Resets the ack timer: call it from long handlers so the message is not redelivered meanwhile. */
  working(): void;
}

function headerRecord(m: JsMsg): Record<string, string> {
  const out: Record<string, string> = {};
  if (!m.headers) return out;
  for (const [k, v] of m.headers) if (v[0] !== undefined) out[k] = v[0];
  return out;
}

/**
 * One delivery's context. Made for every message, so what only failures, logs or replays
 * need (headers, facts, the child logger, the prior history) is computed on first use: on
 * the success path of most handlers none of it is.
 */
export class MessageContext implements HandlerContext {
  readonly subject: string;
  readonly seq: number;
  readonly storedAtMs: number;
  history: AttemptRecord[] = [];
  #headers: Record<string, string> | undefined;
  #facts: HeaderFacts | undefined;
  #log: Logger | undefined;
  #prior: { value: PriorHistory | undefined } | undefined;

  constructor(
    readonly msg: JsMsg,
    readonly attempt: number,
    readonly finalAttempt: boolean,
    private readonly base: Logger,
    private readonly stage: string,
    private readonly connector: string | undefined,
  ) {
    this.subject = msg.subject;
    this.seq = msg.seq;
    this.storedAtMs = Math.floor(msg.info.timestampNanos / 1e6);
  }

  get headers(): Record<string, string> {
    this.#headers ??= headerRecord(this.msg);
    return this.#headers;
  }

  get facts(): HeaderFacts {
    this.#facts ??= readHeaderFacts((n) => this.headers[n]);
    return this.#facts;
  }

  get log(): Logger {
    this.#log ??= logFor(this.base, { correlationId: this.facts.correlationId, msgId: this.facts.msgId, seq: this.seq, attempt: this.attempt });
    return this.#log;
  }

  /** Asked on every delivery by some handlers (deliver): reads the one header, not all of them. */
  get prior(): PriorHistory | undefined {
    this.#prior ??= { value: readPriorHistory(this.#headers ? this.#headers[PRIOR_HISTORY_HEADER] : this.msg.headers?.get(PRIOR_HISTORY_HEADER), this.stage, this.connector) };
    return this.#prior.value;
  }

  working(): void {
    this.msg.working();
  }
}

/** Where a message's retry history is kept between deliveries (bus_attempts). */
export function historyKey(durable: string, seq: number): string {
  return `${durable}.${seq}`;
}

export async function loadHistory(attempts: () => Promise<KV>, key: string, log: Logger): Promise<AttemptRecord[]> {
  try {
    const e = await (await attempts()).get(key);
    return e?.value.length ? (e.json() as AttemptRecord[]) : [];
  } catch (err) {
    log.warn({ err }, 'could not read retry history; continuing without it');
    return [];
  }
}

export async function saveHistory(attempts: () => Promise<KV>, key: string, history: AttemptRecord[], log: Logger): Promise<void> {
  try {
    await (await attempts()).put(key, JSON.stringify(history));
  } catch (err) {
    log.warn({ err }, 'could not save retry history; the retry still happens');
  }
}

export async function forgetHistory(attempts: () => Promise<KV>, key: string, log: Logger): Promise<void> {
  try {
    await (await attempts()).purge(key);
  } catch (err) {
    log.debug({ err }, 'could not purge retry history; it expires with the bucket ttl');
  }
}
