import { BusError } from '@bus/errors';
import type { RetryPolicy } from './policy.js';

/**
 * The longest Retry-After honoured, ms (1 hour). A target asking for more (a day, a
 * misread epoch) is treated as an outage: the retry goes after this bound instead, where
 * the target can say it again. Without the bound one bad header parks a message for days.
 */
export const MAX_RETRY_AFTER_MS = 3_600_000;

/** Options of nextDelay / decide. */
export interface DelayOptions {
  /** The target's Retry-After (or rate-limit reset), ms from now. Optional; negative or NaN is ignored. */
  retryAfterMs?: number;
  /** Uniform in [0, 1). Default Math.random; inject for deterministic tests. */
  random?: () => number;
}

/** The un-jittered delay after `attempt` failed, whole ms: the exponential value capped, or the schedule's entry. */
export function baseDelay(policy: RetryPolicy, attempt: number): number {
  if (policy.kind === 'schedule') return policy.delaysMs[Math.min(attempt, policy.delaysMs.length) - 1]!;
  return Math.min(policy.maxDelayMs, Math.round(policy.initialDelayMs * policy.multiplier ** (attempt - 1)));
}

/**
 * How long to wait after `attempt` (1-based: the attempt that just failed), in whole ms;
 * undefined when the policy's attempts are used up (attempt >= maxAttempts).
 * - jitter 'full': random in [0, baseDelay] (AWS "full jitter"), so many messages failing
 *   together do not retry together; 'none': baseDelay.
 * - opts.retryAfterMs is a floor: the result is never shorter than it, except that a
 *   Retry-After above MAX_RETRY_AFTER_MS counts as MAX_RETRY_AFTER_MS.
 * Throws BusError `RETRY_ATTEMPT_INVALID` (permanent) when attempt is not a whole number >= 1.
 */
export function nextDelay(policy: RetryPolicy, attempt: number, opts: DelayOptions = {}): number | undefined {
  if (!Number.isInteger(attempt) || attempt < 1)
    throw new BusError('RETRY_ATTEMPT_INVALID', 'permanent',
      `nextDelay: attempt must be a whole number >= 1 (the attempt that just failed), got ${attempt}; a bug in the caller`);
  if (attempt >= policy.maxAttempts) return undefined;
  const cap = baseDelay(policy, attempt);
  const delay = policy.jitter === 'full' ? Math.floor(unit((opts.random ?? Math.random)()) * cap) : cap;
  return Math.max(delay, retryAfterFloor(opts.retryAfterMs));
}

/** A random value forced into [0, 1] (NaN → 1, so a broken source errs on the long side). */
function unit(r: number): number {
  return Number.isNaN(r) ? 1 : Math.min(1, Math.max(0, r));
}

function retryAfterFloor(ms: number | undefined): number {
  return typeof ms === 'number' && ms > 0 ? Math.min(Math.ceil(ms), MAX_RETRY_AFTER_MS) : 0;
}
