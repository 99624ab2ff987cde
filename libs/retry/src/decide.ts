import type { FailureClass } from '@bus/errors';
import { nextDelay, type RetryPolicy } from './policy.js';

/** What to do after a failed attempt. */
export type Decision =
  | { action: 'retry'; delayMs: number }
  | { action: 'lookup-then-retry'; delayMs: number }
  | { action: 'dead-letter'; reason: string }
  | { action: 'pause'; reason: string };

/**
 * The one place where a failure class becomes handling (DESIGN.md, Failure classes):
 * transient → retry until the policy is exhausted, then dead-letter; business → dead-letter
 * now; permanent → pause the connector (and dead-letter); ambiguous → look the record up
 * (or retry with the same idempotency key) until exhausted.
 */
export function decide(policy: RetryPolicy, attempt: number, failureClass: FailureClass, opts: { retryAfterMs?: number; random?: () => number } = {}): Decision {
  if (failureClass === 'business') return { action: 'dead-letter', reason: 'business error: not retried' };
  if (failureClass === 'permanent') return { action: 'pause', reason: 'permanent error: the connector needs a fix before anything else is sent' };
  const delayMs = nextDelay(policy, attempt, opts);
  if (delayMs === undefined) return { action: 'dead-letter', reason: `attempts exhausted after ${attempt} of ${policy.maxAttempts}` };
  return failureClass === 'ambiguous' ? { action: 'lookup-then-retry', delayMs } : { action: 'retry', delayMs };
}
