import { BusError, type FailureClass } from '@bus/errors';
import { type DelayOptions, nextDelay } from './delay.js';
import { attemptsMade, type RetryHistory } from './history.js';
import type { RetryPolicy } from './policy.js';

/**
 * What to do after a failed attempt.
 * - retry: the same command again after delayMs.
 * - lookup-then-retry: the target may have applied it; after delayMs look the record up,
 *   or send again with the same idempotency key.
 * - dead-letter: stop; the message goes to the DLQ with `reason` and its history.
 * - pause: pause the connector (and dead-letter this message): nothing else will work either.
 */
export type Decision =
  | { action: 'retry'; delayMs: number }
  | { action: 'lookup-then-retry'; delayMs: number }
  | { action: 'dead-letter'; reason: string }
  | { action: 'pause'; reason: string };

/**
 * The one place where a failure class becomes handling (docs/architecture.md → Failure classes):
 * | class     | decision                                                          |
 * | transient | retry after nextDelay; once exhausted, dead-letter                |
 * | ambiguous | lookup-then-retry after nextDelay; once exhausted, dead-letter    |
 * | business  | dead-letter at once (retrying cannot change the answer)           |
 * | permanent | pause the connector, and dead-letter                              |
 * @param attempt the 1-based attempt that just failed, or the history that already
 *   holds it (its attemptsMade is used, so a trimmed history still counts every attempt).
 * @param opts retryAfterMs (a floor, capped) and random: see nextDelay.
 */
export function decide(policy: RetryPolicy, attempt: number | RetryHistory, failureClass: FailureClass, opts: DelayOptions = {}): Decision {
  const n = typeof attempt === 'number' ? attempt : attemptsMade(attempt);
  switch (failureClass) {
    case 'business':
      return { action: 'dead-letter', reason: 'the target refused it (business failure); retrying cannot change that' };
    case 'permanent':
      return { action: 'pause', reason: 'permanent failure: nothing sent to this target can succeed until the cause is fixed' };
    case 'transient':
    case 'ambiguous': {
      const delayMs = nextDelay(policy, n, opts);
      if (delayMs === undefined) return { action: 'dead-letter', reason: `attempts exhausted after ${n} attempts` };
      return failureClass === 'transient' ? { action: 'retry', delayMs } : { action: 'lookup-then-retry', delayMs };
    }
    default:
      throw new BusError('RETRY_CLASS_UNKNOWN', 'permanent',
        `decide: unknown failure class ${JSON.stringify(failureClass)}; expected transient, business, permanent or ambiguous`);
  }
}
