import { BusError } from '@bus/errors';
import type { AttemptRecord } from './history.js';

/** Options of RetryExhaustedError. */
export interface RetryExhaustedOptions {
  /** What was tried, e.g. `delivery of contact 42 to crm`. Required. */
  what: string;
  /** Attempts made, the first included. Required. */
  attempts: number;
  /** The last attempt, for its status, code and message. Optional. */
  last?: AttemptRecord;
  /** The last error. Optional. */
  cause?: unknown;
}

/**
 * The retry policy is used up. Code `RETRY_EXHAUSTED`; failure class transient (that is
 * what kept failing), but final: `retryable` is false, the message is dead-lettered.
 */
export class RetryExhaustedError extends BusError {
  readonly attempts: number;
  readonly last: AttemptRecord | undefined;

  constructor(o: RetryExhaustedOptions) {
    const last = o.last
      ? ` Last: ${[o.last.status, o.last.code, o.last.message].filter((x) => x !== undefined).join(' ') || o.last.failureClass}.`
      : '';
    super('RETRY_EXHAUSTED', 'transient',
      `${o.what} failed ${o.attempts} attempts; not retried further.${last} ` +
        'It is dead-lettered with its history; once the target is healthy, replay it from the DLQ.',
      o.cause === undefined ? undefined : { cause: o.cause });
    this.attempts = o.attempts;
    this.last = o.last;
  }

  /** Always false: the attempts are used up. */
  override get retryable(): boolean {
    return false;
  }
}
