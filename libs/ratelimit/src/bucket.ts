export interface RateLimiterOptions {
  /** Sustained requests per second the target allows. Required, > 0. */
  ratePerSec: number;
  /** Requests that may go at once after a quiet period. Default max(1, ratePerSec). */
  burst?: number;
  /** The effective rate never drops below this fraction of ratePerSec. Default 0.05. */
  minFraction?: number;
  /** Each success gives back this fraction of ratePerSec (additive increase). Default 0.02. */
  recoveryFraction?: number;
  now?: () => number;
}

/**
 * A token bucket per connector that adapts: a 429 halves the effective rate and blocks
 * until its Retry-After; successes raise the rate back step by step (AIMD); a target
 * saying few requests remain slows it down before it answers 429.
 */
export function createRateLimiter(o: RateLimiterOptions) {
  if (!(o.ratePerSec > 0)) throw new Error(`rate limiter: ratePerSec must be > 0, got ${o.ratePerSec}`);
  const burst = o.burst ?? Math.max(1, o.ratePerSec);
  if (!(burst >= 1)) throw new Error(`rate limiter: burst must be >= 1, got ${burst}`);
  const now = o.now ?? Date.now;
  const floor = o.ratePerSec * (o.minFraction ?? 0.05);
  const step = o.ratePerSec * (o.recoveryFraction ?? 0.02);
  let rate = o.ratePerSec;
  let tokens = burst;
  let last = now();
  let blockedUntil = 0;

  const refill = () => {
    const t = now();
    tokens = Math.min(burst, tokens + ((t - last) / 1000) * rate);
    last = t;
  };
  const tryTake = (): { ok: true } | { ok: false; waitMs: number } => {
    refill();
    const t = now();
    if (t < blockedUntil) return { ok: false, waitMs: blockedUntil - t };
    if (tokens >= 1) {
      tokens -= 1;
      return { ok: true };
    }
    return { ok: false, waitMs: Math.ceil(((1 - tokens) / rate) * 1000) };
  };

  return {
    tryTake,
    /** Waits for a token (timer based; abortable). */
    async take(signal?: AbortSignal): Promise<void> {
      for (;;) {
        const r = tryTake();
        if (r.ok) return;
        if (signal?.aborted) throw signal.reason ?? new Error('aborted');
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, r.waitMs);
          signal?.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(signal.reason ?? new Error('aborted'));
          }, { once: true });
        });
      }
    },
    /** After a 429 / Retry-After: nothing goes before then, and the rate is halved. */
    penalize(retryAfterMs = 0): void {
      rate = Math.max(floor, rate / 2);
      tokens = Math.min(tokens, 0);
      blockedUntil = Math.max(blockedUntil, now() + retryAfterMs);
    },
    /** A success: creep back towards the configured rate. */
    recordSuccess(): void {
      rate = Math.min(o.ratePerSec, rate + step);
    },
    /** From X-RateLimit-Remaining / -Reset: spread what remains over the time left. */
    updateFromHeaders(remaining: number | undefined, resetMs: number | undefined): void {
      if (remaining === undefined || resetMs === undefined || resetMs <= 0) return;
      if (remaining <= 0) {
        blockedUntil = Math.max(blockedUntil, now() + resetMs);
        return;
      }
      rate = Math.max(floor, Math.min(rate, remaining / (resetMs / 1000)));
    },
    state() {
      refill();
      return { effectiveRatePerSec: rate, tokens, blockedUntil };
    },
  };
}
export type RateLimiter = ReturnType<typeof createRateLimiter>;
