import { BusError } from '@bus/errors';

/** Schedules `fn` after `ms`; returns a function that cancels it. */
export type SetTimer = (fn: () => void, ms: number) => () => void;

/** Options of createRateLimiter. Only ratePerSec is required. */
export interface RateLimiterOptions {
  /** The rate the target allows, requests per second. Required; > 0, <= 1 000 000. */
  ratePerSec: number;
  /** Requests that may go at once after a quiet period. Default max(1, ratePerSec); >= 1. */
  burst?: number;
  /** The effective rate never drops below this (429s halve it), requests per second. Default ratePerSec / 20; > 0, <= ratePerSec. */
  minRatePerSec?: number;
  /** A 429 multiplies the effective rate by this (multiplicative decrease). Default 0.5; > 0, < 1. */
  decreaseFactor?: number;
  /** Each success adds this to the effective rate, up to ratePerSec (additive increase), requests per second. Default ratePerSec / 50; > 0. */
  increasePerSuccess?: number;
  /** 429s within this long of a decrease do not decrease again: requests already in flight report the same overload. Default 1 000 ms; >= 0. */
  decreaseCooldownMs?: number;
  /** The longest a Retry-After or reset header blocks the limiter, ms (a sanity bound against a misread epoch). Default 3 600 000; >= 1. */
  maxBlockMs?: number;
  /** Clock, ms. Default Date.now. */
  now?: () => number;
  /** Timer used by take(). Default setTimeout/clearTimeout. Inject it together with `now`, or take() waits on the real clock. */
  setTimer?: SetTimer;
}

/** Options with every default filled in. */
export type ResolvedOptions = Required<RateLimiterOptions>;

const realTimer: SetTimer = (fn, ms) => {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
};

/**
 * Fills the defaults and checks every field; all problems go in one BusError
 * `RATE_LIMIT_INVALID` (permanent), e.g. `rate limiter: ratePerSec must be > 0, got 0`.
 */
export function resolveOptions(o: RateLimiterOptions): ResolvedOptions {
  const problems: string[] = [];
  const num = (field: string, v: unknown, ok: (n: number) => boolean, rule: string) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) problems.push(`${field} must be ${rule}, got ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
  };
  if (typeof o !== 'object' || o === null) throw new BusError('RATE_LIMIT_INVALID', 'permanent', `rate limiter: options must be an object, got ${String(o)}`);
  num('ratePerSec', o.ratePerSec, (n) => n > 0 && n <= 1_000_000, '> 0 and <= 1000000');
  const rate = typeof o.ratePerSec === 'number' && o.ratePerSec > 0 ? o.ratePerSec : 1;
  const r: ResolvedOptions = {
    ratePerSec: o.ratePerSec,
    burst: o.burst ?? Math.max(1, rate),
    minRatePerSec: o.minRatePerSec ?? rate / 20,
    decreaseFactor: o.decreaseFactor ?? 0.5,
    increasePerSuccess: o.increasePerSuccess ?? rate / 50,
    decreaseCooldownMs: o.decreaseCooldownMs ?? 1_000,
    maxBlockMs: o.maxBlockMs ?? 3_600_000,
    now: o.now ?? Date.now,
    setTimer: o.setTimer ?? realTimer,
  };
  num('burst', r.burst, (n) => n >= 1, '>= 1');
  num('minRatePerSec', r.minRatePerSec, (n) => n > 0 && n <= rate, `> 0 and <= ratePerSec (${rate})`);
  num('decreaseFactor', r.decreaseFactor, (n) => n > 0 && n < 1, '> 0 and < 1');
  num('increasePerSuccess', r.increasePerSuccess, (n) => n > 0, '> 0');
  num('decreaseCooldownMs', r.decreaseCooldownMs, (n) => n >= 0, '>= 0');
  num('maxBlockMs', r.maxBlockMs, (n) => n >= 1, '>= 1');
  if (typeof r.now !== 'function') problems.push('now must be a function returning ms');
  if (typeof r.setTimer !== 'function') problems.push('setTimer must be a function');
  if (problems.length) throw new BusError('RATE_LIMIT_INVALID', 'permanent', `rate limiter: ${problems.join('; ')}`);
  return r;
}
