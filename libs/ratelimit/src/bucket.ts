import { type RateLimiterOptions, resolveOptions } from './options.js';

/** The outcome of tryTake: a token, or how long until one can be had. */
export type TakeResult = { ok: true } | { ok: false; waitMs: number };

/** For metrics and health pages. */
export interface RateLimiterState {
  /** The rate now, requests per second: ratePerSec, lowered by 429s and quota headers. */
  effectiveRatePerSec: number;
  /** Tokens in the bucket now (fractional), 0 … burst. */
  tokens: number;
  /** Clock ms before which nothing is handed out; undefined when not blocked. */
  blockedUntil: number | undefined;
}

/** A token bucket for one connector. Synchronous and single-threaded: no locks needed. */
export interface RateLimiter {
  /** A token now, or the ms until one will be available (at the current rate) — never blocks. */
  tryTake(): TakeResult;
  /**
   * Resolves when a token is taken, waiting with a timer as long as needed. Rejects with
   * `signal.reason` when the signal aborts (no token is taken then). Waiters are not queued
   * in order: each wakes when a token should be there and tries again.
   */
  take(signal?: AbortSignal): Promise<void>;
  /**
   * The target answered 429: the effective rate is cut (× decreaseFactor, at most once per
   * decreaseCooldownMs, never below minRatePerSec), the bucket is emptied, and no token is
   * handed out before `retryAfterMs` from now (capped at maxBlockMs; missing, negative or
   * NaN → no block). Tokens start to refill only after the block.
   */
  penalize(retryAfterMs?: number): void;
  /** A call succeeded: the effective rate grows by increasePerSuccess, up to ratePerSec. */
  recordSuccess(): void;
  /**
   * The target's quota headers (parseRateLimitReset from @bus/retry reads them): with
   * `remaining` requests left for `resetMs`, the rate is lowered to remaining / resetSec when
   * that is slower (not below minRatePerSec); with none left, nothing is handed out until the
   * reset (capped at maxBlockMs). Either value missing or invalid → no change.
   */
  updateFromHeaders(remaining: number | undefined, resetMs: number | undefined): void;
  /** The state now. */
  state(): RateLimiterState;
}

const EPSILON = 1e-9; // float refill of exactly one token may land a hair below 1

/**
 * An adaptive token bucket per connector (AIMD): a 429 cuts the rate and blocks until its
 * Retry-After, successes raise it back step by step, and quota headers slow it down before
 * the target has to say 429. Pure: no I/O; clock and timer are injectable.
 * Throws BusError `RATE_LIMIT_INVALID` (permanent) naming every bad option.
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const o = resolveOptions(options);
  const { now } = o;
  let rate = o.ratePerSec;
  let tokens = o.burst;
  let last = now();
  let blockedUntil = Number.NEGATIVE_INFINITY;
  let lastDecreaseAt = Number.NEGATIVE_INFINITY;

  /** Adds the tokens earned since the last look; nothing is earned while blocked. A clock going back earns nothing. */
  const refill = (t: number) => {
    const from = Math.max(last, blockedUntil);
    if (t > from) tokens = Math.min(o.burst, tokens + ((t - from) / 1000) * rate);
    last = Math.max(last, t);
  };
  const block = (t: number, ms: number | undefined) => {
    if (typeof ms === 'number' && ms > 0) blockedUntil = Math.max(blockedUntil, t + Math.min(ms, o.maxBlockMs));
  };

  const tryTake = (): TakeResult => {
    const t = now();
    refill(t);
    if (t >= blockedUntil && tokens >= 1 - EPSILON) {
      tokens = Math.max(0, tokens - 1);
      return { ok: true };
    }
    const blockedMs = Math.max(0, blockedUntil - t);
    const refillMs = (Math.max(0, 1 - tokens) / rate) * 1000;
    return { ok: false, waitMs: Math.max(1, Math.ceil(blockedMs + refillMs)) };
  };

  const sleep = (ms: number, signal: AbortSignal | undefined) =>
    new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        cancel();
        reject(signal?.reason);
      };
      const cancel = o.setTimer(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });

  return {
    tryTake,
    async take(signal) {
      for (;;) {
        signal?.throwIfAborted();
        const r = tryTake();
        if (r.ok) return;
        await sleep(r.waitMs, signal);
      }
    },
    penalize(retryAfterMs) {
      const t = now();
      refill(t);
      if (t - lastDecreaseAt >= o.decreaseCooldownMs) {
        rate = Math.max(o.minRatePerSec, rate * o.decreaseFactor);
        lastDecreaseAt = t;
      }
      tokens = 0;
      block(t, retryAfterMs);
    },
    recordSuccess() {
      refill(now());
      rate = Math.min(o.ratePerSec, rate + o.increasePerSuccess);
    },
    updateFromHeaders(remaining, resetMs) {
      if (typeof remaining !== 'number' || !(remaining >= 0) || typeof resetMs !== 'number' || !(resetMs > 0)) return;
      const t = now();
      refill(t);
      if (remaining < 1) return block(t, resetMs);
      const allowed = remaining / (Math.min(resetMs, o.maxBlockMs) / 1000);
      if (allowed < rate) rate = Math.max(o.minRatePerSec, allowed);
    },
    state() {
      const t = now();
      refill(t);
      return { effectiveRatePerSec: rate, tokens, blockedUntil: t < blockedUntil ? blockedUntil : undefined };
    },
  };
}
