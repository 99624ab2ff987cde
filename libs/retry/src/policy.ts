import { BusError } from '@bus/errors';

/** Exponential backoff: initial × multiplier^(attempt-1), capped, with optional full jitter. */
export interface ExponentialPolicy {
  kind: 'exponential';
  /** Default 500 ms. */
  initialDelayMs: number;
  /** Default 2. */
  multiplier: number;
  /** Default 60 000 ms. */
  maxDelayMs: number;
  /** 'full' (default): a random delay between 0 and the capped value (AWS "full jitter"). */
  jitter: 'full' | 'none';
  /** Attempts in all, the first included. Default 8. */
  maxAttempts: number;
  /** Each attempt's time limit. Default 10 000 ms. */
  attemptTimeoutMs: number;
}

/** A fixed schedule: the delay after attempt n is delaysMs[n-1] (the last one repeats). */
export interface SchedulePolicy {
  kind: 'schedule';
  delaysMs: number[];
  jitter: 'full' | 'none';
  /** Default delaysMs.length + 1. */
  maxAttempts: number;
  attemptTimeoutMs: number;
}

export type RetryPolicy = Readonly<ExponentialPolicy> | Readonly<SchedulePolicy>;
export type RetryPolicyInput =
  | ({ kind?: 'exponential' } & Partial<Omit<ExponentialPolicy, 'kind'>>)
  | ({ kind: 'schedule'; delaysMs: number[] } & Partial<Omit<SchedulePolicy, 'kind' | 'delaysMs'>>);

/** A Retry-After longer than this is capped: a target asking for a day is treated as an outage, not obeyed. */
export const MAX_RETRY_AFTER_MS = 3_600_000;

function check(problems: string[], field: string, value: number, min: number, max: number): void {
  if (!Number.isFinite(value) || value < min || value > max) problems.push(`${field} must be between ${min} and ${max}, got ${value}`);
}

/** Validates every field (each bad one named) and fills defaults; the result is frozen. */
export function defineRetryPolicy(input: RetryPolicyInput = {}, where = 'retry policy'): RetryPolicy {
  const problems: string[] = [];
  const jitter = input.jitter ?? 'full';
  if (jitter !== 'full' && jitter !== 'none') problems.push(`jitter must be 'full' or 'none', got ${String(jitter)}`);
  const attemptTimeoutMs = input.attemptTimeoutMs ?? 10_000;
  check(problems, 'attemptTimeoutMs', attemptTimeoutMs, 100, 600_000);
  let policy: RetryPolicy;
  if (input.kind === 'schedule') {
    const delaysMs = input.delaysMs;
    if (!Array.isArray(delaysMs) || delaysMs.length === 0) problems.push('delaysMs must list at least one delay');
    else for (const [i, d] of delaysMs.entries()) check(problems, `delaysMs[${i}]`, d, 0, 86_400_000);
    const maxAttempts = input.maxAttempts ?? (delaysMs?.length ?? 0) + 1;
    check(problems, 'maxAttempts', maxAttempts, 1, 100);
    policy = { kind: 'schedule', delaysMs: [...(delaysMs ?? [])], jitter, maxAttempts, attemptTimeoutMs };
  } else {
    const p = input as Partial<ExponentialPolicy>;
    const e: ExponentialPolicy = {
      kind: 'exponential', initialDelayMs: p.initialDelayMs ?? 500, multiplier: p.multiplier ?? 2, maxDelayMs: p.maxDelayMs ?? 60_000,
      jitter, maxAttempts: p.maxAttempts ?? 8, attemptTimeoutMs,
    };
    check(problems, 'initialDelayMs', e.initialDelayMs, 1, 3_600_000);
    check(problems, 'multiplier', e.multiplier, 1, 10);
    check(problems, 'maxDelayMs', e.maxDelayMs, e.initialDelayMs, 86_400_000);
    check(problems, 'maxAttempts', e.maxAttempts, 1, 100);
    policy = e;
  }
  if (problems.length) throw new BusError('RETRY_POLICY_INVALID', 'permanent', `${where}: ${problems.join('; ')}`);
  return Object.freeze(policy);
}

/** A per-event-type override on top of a connector's policy (validated as a whole). */
export function mergeRetryPolicy(base: RetryPolicy, override: RetryPolicyInput | undefined, where?: string): RetryPolicy {
  if (!override) return base;
  const kind = override.kind ?? (base.kind === 'schedule' && !('initialDelayMs' in override) ? 'schedule' : 'exponential');
  return defineRetryPolicy({ ...(kind === base.kind ? base : {}), ...override, kind } as RetryPolicyInput, where);
}

/**
 * The delay after `attempt` (1-based) failed, or undefined when attempts are exhausted. A
 * target's Retry-After is a floor (capped at MAX_RETRY_AFTER_MS).
 */
export function nextDelay(policy: RetryPolicy, attempt: number, opts: { retryAfterMs?: number; random?: () => number } = {}): number | undefined {
  if (attempt >= policy.maxAttempts) return undefined;
  const cap = policy.kind === 'exponential'
    ? Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** (attempt - 1))
    : policy.delaysMs[Math.min(attempt, policy.delaysMs.length) - 1]!;
  const delay = policy.jitter === 'full' ? Math.floor((opts.random ?? Math.random)() * cap) : cap;
  const floor = Math.min(opts.retryAfterMs ?? 0, MAX_RETRY_AFTER_MS);
  return Math.max(delay, floor);
}
