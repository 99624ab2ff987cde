import { BusError } from '@bus/errors';

/** 'full': each delay is random in [0, computed delay] (AWS "full jitter"); 'none': exactly the computed delay. */
export type Jitter = 'full' | 'none';

/** Exponential backoff: the delay after attempt n is min(maxDelayMs, initialDelayMs × multiplier^(n-1)). */
export interface ExponentialPolicy {
  kind: 'exponential';
  /** Delay after the first failed attempt, ms. Default 500; 1 … 3 600 000. */
  initialDelayMs: number;
  /** Growth per attempt. Default 2; 1 … 10. */
  multiplier: number;
  /** Cap on any one computed delay, ms. Default 60 000; initialDelayMs … 86 400 000. */
  maxDelayMs: number;
  /** Default 'full'. */
  jitter: Jitter;
  /** Attempts in all, the first included (so maxAttempts - 1 retries). Default 8; whole, 1 … 100. */
  maxAttempts: number;
  /** Time limit of each attempt, ms (enforced by the caller). Default 10 000; 100 … 600 000. */
  attemptTimeoutMs: number;
}

/** A fixed schedule ("schedule as data"): the delay after attempt n is delaysMs[n-1]; the last one repeats. */
export interface SchedulePolicy {
  kind: 'schedule';
  /** Required, at least one; each 0 … 86 400 000 ms. */
  delaysMs: readonly number[];
  /** Default 'full'. */
  jitter: Jitter;
  /** Attempts in all. Default delaysMs.length + 1 (every delay used once); whole, 1 … 100. */
  maxAttempts: number;
  /** Time limit of each attempt, ms. Default 10 000; 100 … 600 000. */
  attemptTimeoutMs: number;
}

/** A validated, frozen policy: only defineRetryPolicy / mergeRetryPolicy make one. */
export type RetryPolicy = Readonly<ExponentialPolicy> | Readonly<SchedulePolicy>;

/** What a connector declares: `kind` defaults to 'exponential'; every other field but delaysMs has a default. */
export type RetryPolicyInput =
  | ({ kind?: 'exponential' } & Partial<Omit<ExponentialPolicy, 'kind'>>)
  | ({ kind: 'schedule'; delaysMs: readonly number[] } & Partial<Omit<SchedulePolicy, 'kind' | 'delaysMs'>>);

/** A per-event-type override: any subset of fields; `kind` defaults to the base policy's. */
export type RetryPolicyOverride = { kind?: RetryPolicy['kind'] } & Partial<Omit<ExponentialPolicy, 'kind'>> &
  Partial<Omit<SchedulePolicy, 'kind'>>;

/** The defaults defineRetryPolicy fills in (a schedule's maxAttempts defaults to delaysMs.length + 1). */
export const RETRY_POLICY_DEFAULTS = Object.freeze({
  initialDelayMs: 500,
  multiplier: 2,
  maxDelayMs: 60_000,
  jitter: 'full' as Jitter,
  maxAttempts: 8,
  attemptTimeoutMs: 10_000,
});

const FIELDS = {
  exponential: ['kind', 'initialDelayMs', 'multiplier', 'maxDelayMs', 'jitter', 'maxAttempts', 'attemptTimeoutMs'],
  schedule: ['kind', 'delaysMs', 'jitter', 'maxAttempts', 'attemptTimeoutMs'],
} as const;

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : String(v));

/** Pushes one problem when `value` is not a number in [min, max] (whole when `whole`). */
function checkNumber(problems: string[], field: string, value: unknown, min: number, max: number, whole = false): void {
  if (typeof value !== 'number' || Number.isNaN(value)) problems.push(`${field} must be a number, got ${show(value)}`);
  else if (whole && Number.isFinite(value) && !Number.isInteger(value)) problems.push(`${field} must be a whole number, got ${value}`);
  else if (value < min) problems.push(`${field} must be >= ${min}, got ${value}`);
  else if (value > max) problems.push(`${field} must be <= ${max}, got ${value}`);
}

/**
 * Validates a retry policy field by field and fills the defaults (RETRY_POLICY_DEFAULTS).
 * Every problem is named in one BusError `RETRY_POLICY_INVALID` (permanent), e.g.
 * `retry policy: multiplier must be >= 1, got 0.5; maxAttempts must be a whole number, got 2.5`.
 * Unknown fields are refused too (a typo must not silently fall back to a default).
 * @param where prefixes the message, e.g. `connector crm.retry`. Default 'retry policy'.
 * @returns a frozen policy (its delaysMs frozen too).
 */
export function defineRetryPolicy(input: RetryPolicyInput = {}, where = 'retry policy'): RetryPolicy {
  const fail = (problems: string[]): never => {
    throw new BusError('RETRY_POLICY_INVALID', 'permanent', `${where}: ${problems.join('; ')}`);
  };
  if (typeof input !== 'object' || input === null || Array.isArray(input)) fail([`must be an object, got ${show(input)}`]);
  const raw = input as Record<string, unknown>;
  const kind = raw.kind ?? 'exponential';
  if (kind !== 'exponential' && kind !== 'schedule') fail([`kind must be 'exponential' or 'schedule', got ${show(kind)}`]);
  const allowed: readonly string[] = FIELDS[kind as RetryPolicy['kind']];
  const problems = Object.keys(raw)
    .filter((k) => raw[k] !== undefined && !allowed.includes(k))
    .map((k) => `unknown field ${k} (a ${kind} policy takes ${allowed.slice(1).join(', ')})`);

  const d = RETRY_POLICY_DEFAULTS;
  const jitter = raw.jitter ?? d.jitter;
  if (jitter !== 'full' && jitter !== 'none') problems.push(`jitter must be 'full' or 'none', got ${show(jitter)}`);
  const attemptTimeoutMs = raw.attemptTimeoutMs ?? d.attemptTimeoutMs;
  checkNumber(problems, 'attemptTimeoutMs', attemptTimeoutMs, 100, 600_000);

  let policy: RetryPolicy;
  if (kind === 'schedule') {
    const delaysMs = raw.delaysMs;
    if (!Array.isArray(delaysMs) || delaysMs.length === 0) problems.push(`delaysMs must list at least one delay, got ${show(delaysMs)}`);
    else for (const [i, ms] of delaysMs.entries()) checkNumber(problems, `delaysMs[${i}]`, ms, 0, 86_400_000);
    const maxAttempts = raw.maxAttempts ?? (Array.isArray(delaysMs) ? delaysMs.length : 0) + 1;
    checkNumber(problems, 'maxAttempts', maxAttempts, 1, 100, true);
    const frozenDelays = Object.freeze([...(Array.isArray(delaysMs) ? (delaysMs as number[]) : [])]);
    policy = { kind, delaysMs: frozenDelays, jitter, maxAttempts, attemptTimeoutMs } as SchedulePolicy;
  } else {
    const initialDelayMs = raw.initialDelayMs ?? d.initialDelayMs;
    const maxDelayMs = raw.maxDelayMs ?? d.maxDelayMs;
    const multiplier = raw.multiplier ?? d.multiplier;
    const maxAttempts = raw.maxAttempts ?? d.maxAttempts;
    checkNumber(problems, 'initialDelayMs', initialDelayMs, 1, 3_600_000);
    checkNumber(problems, 'multiplier', multiplier, 1, 10);
    checkNumber(problems, 'maxDelayMs', maxDelayMs, 1, 86_400_000);
    if (typeof initialDelayMs === 'number' && typeof maxDelayMs === 'number' && maxDelayMs < initialDelayMs && maxDelayMs >= 1)
      problems.push(`maxDelayMs must be >= initialDelayMs (${initialDelayMs}), got ${maxDelayMs}`);
    checkNumber(problems, 'maxAttempts', maxAttempts, 1, 100, true);
    policy = { kind, initialDelayMs, multiplier, maxDelayMs, jitter, maxAttempts, attemptTimeoutMs } as ExponentialPolicy;
  }
  if (problems.length) fail(problems);
  return Object.freeze(policy);
}

/**
 * A per-event-type override on top of a connector's policy; the result is validated as a
 * whole (problems are named with `where`, default 'retry policy override').
 * - same kind (the default): the override's fields replace the base's; a schedule whose
 *   delaysMs is overridden without maxAttempts gets the default maxAttempts for the new list;
 * - another kind: only jitter and attemptTimeoutMs carry over, the rest is the override's or default.
 * Fields set to undefined are ignored. No override → the base itself.
 */
export function mergeRetryPolicy(base: RetryPolicy, override: RetryPolicyOverride | undefined, where = 'retry policy override'): RetryPolicy {
  if (override === undefined) return base;
  if (typeof override !== 'object' || override === null) return defineRetryPolicy(override as never, where);
  const given = Object.fromEntries(Object.entries(override).filter(([, v]) => v !== undefined)) as RetryPolicyOverride;
  const kind = given.kind ?? base.kind;
  const inherited: Record<string, unknown> =
    kind === base.kind ? { ...base } : { jitter: base.jitter, attemptTimeoutMs: base.attemptTimeoutMs };
  if (kind === 'schedule' && given.delaysMs !== undefined && given.maxAttempts === undefined) delete inherited.maxAttempts;
  return defineRetryPolicy({ ...inherited, ...given, kind } as RetryPolicyInput, where);
}
