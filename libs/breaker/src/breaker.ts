import { BusError } from '@bus/errors';

/** closed: calls go; open: nothing goes until openMs has passed; half-open: only probes go. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** A breaker's state, for callers, metrics and onStateChange. */
export interface BreakerSnapshot {
  state: BreakerState;
  /** Clock ms when it last opened; set while open or half-open. */
  openedAt?: number;
  /** Clock ms when the next probe may go; set while open, and in half-open while every probe is out. */
  nextProbeAt?: number;
  /** Target failures in a row (reset by a success in closed, or by closing). */
  consecutiveFailures: number;
}

/** Options of createCircuitBreaker; all optional. */
export interface BreakerOptions {
  /** Target failures in a row that open the breaker. Default 5; whole, >= 1. */
  failureThreshold?: number;
  /** How long it stays open before probing, ms; also how long a probe may go unreported before its slot is freed. Default 30 000; > 0. */
  openMs?: number;
  /** Probes let through in half-open; all must succeed to close. Default 1; whole, >= 1. */
  halfOpenProbes?: number;
  /** Clock, ms. Default Date.now. */
  now?: () => number;
  /** Called synchronously after each change, with the new snapshot. Must not throw (it would reach the caller of the method that caused the change). */
  onStateChange?: (from: BreakerState, to: BreakerState, snapshot: BreakerSnapshot) => void;
}

/** A circuit breaker for one target. Synchronous; no timers: open → half-open happens when it is next asked. */
export interface CircuitBreaker {
  /** May a call go now? In half-open each true is a probe: report its outcome with recordSuccess / recordFailure. */
  canPass(): boolean;
  /** The target is up: it answered 2xx, or refused the request on business grounds (400/409/422: it is up). */
  recordSuccess(): void;
  /**
   * The target failed: report only failures of the target itself — transient and
   * ambiguous (connection refused, timeout, 5xx). Never a business failure (a 422 means
   * the target is up) nor a failure on our side (mapping, config, a missing token).
   */
  recordFailure(): void;
  /** The state now. */
  state(): BreakerSnapshot;
  /** Ms until a call may be let through (0 when one may go now), so a consumer can stop pulling until then. */
  msUntilProbe(): number;
}

function resolve(o: BreakerOptions) {
  const r = { failureThreshold: o.failureThreshold ?? 5, openMs: o.openMs ?? 30_000, halfOpenProbes: o.halfOpenProbes ?? 1, now: o.now ?? Date.now };
  const problems: string[] = [];
  const whole = (field: string, v: number) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) problems.push(`${field} must be a whole number >= 1, got ${String(v)}`);
  };
  whole('failureThreshold', r.failureThreshold);
  whole('halfOpenProbes', r.halfOpenProbes);
  if (typeof r.openMs !== 'number' || !Number.isFinite(r.openMs) || r.openMs <= 0) problems.push(`openMs must be > 0, got ${String(r.openMs)}`);
  if (typeof r.now !== 'function') problems.push('now must be a function returning ms');
  if (o.onStateChange !== undefined && typeof o.onStateChange !== 'function') problems.push('onStateChange must be a function');
  if (problems.length) throw new BusError('BREAKER_INVALID', 'permanent', `circuit breaker: ${problems.join('; ')}`);
  return r;
}

/**
 * A circuit breaker per connector: closed → (failureThreshold target failures in a row)
 * → open → (openMs) → half-open → (halfOpenProbes successes) → closed, or (a probe fails)
 * → open again. While open the consumer stops pulling, so the stream — not memory —
 * holds the backlog. Outcomes reported while open come from calls let through before it
 * opened: they are ignored, as are outcomes in half-open when no probe is out.
 * Throws BusError `BREAKER_INVALID` (permanent) naming every bad option.
 */
export function createCircuitBreaker(options: BreakerOptions = {}): CircuitBreaker {
  const { failureThreshold, openMs, halfOpenProbes, now } = resolve(options);
  let state: BreakerState = 'closed';
  let failures = 0;
  let openedAt = 0;
  let probesOut = 0;
  let probeSuccesses = 0;
  let lastProbeAt = 0;

  const nextProbeAt = (): number | undefined => {
    if (state === 'open') return openedAt + openMs;
    if (state === 'half-open' && probesOut >= halfOpenProbes) return lastProbeAt + openMs;
    return undefined;
  };
  const snapshot = (): BreakerSnapshot => {
    const next = nextProbeAt();
    return {
      state,
      ...(state === 'closed' ? {} : { openedAt }),
      ...(next === undefined ? {} : { nextProbeAt: next }),
      consecutiveFailures: failures,
    };
  };
  const move = (to: BreakerState) => {
    const from = state;
    state = to;
    probesOut = 0;
    probeSuccesses = 0;
    options.onStateChange?.(from, to, snapshot());
  };
  const open = (t: number) => {
    openedAt = t;
    move('open');
  };
  /** Time-driven changes: open → half-open after openMs; unreported probes free their slots after openMs. */
  const refresh = (t: number) => {
    if (state === 'open' && t >= openedAt + openMs) move('half-open');
    if (state === 'half-open' && probesOut >= halfOpenProbes && t >= lastProbeAt + openMs) probesOut = 0;
  };

  return {
    canPass() {
      const t = now();
      refresh(t);
      if (state === 'closed') return true;
      if (state === 'open' || probesOut >= halfOpenProbes) return false;
      probesOut++;
      lastProbeAt = t;
      return true;
    },
    recordSuccess() {
      refresh(now());
      if (state === 'closed') failures = 0;
      if (state !== 'half-open' || probesOut === 0) return;
      probesOut--;
      if (++probeSuccesses < halfOpenProbes) return;
      failures = 0;
      move('closed');
    },
    recordFailure() {
      const t = now();
      refresh(t);
      if (state === 'open' || (state === 'half-open' && probesOut === 0)) return;
      failures++;
      if (state === 'half-open' || failures >= failureThreshold) open(t);
    },
    state() {
      refresh(now());
      return snapshot();
    },
    msUntilProbe() {
      const t = now();
      refresh(t);
      const next = nextProbeAt();
      return next === undefined ? 0 : Math.max(0, next - t);
    },
  };
}
