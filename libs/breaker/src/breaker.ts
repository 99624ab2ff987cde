/** closed: calls go; open: nothing goes until the probe time; half-open: a few probes go. */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive target failures (transient or ambiguous) that open it. Default 5. */
  failureThreshold?: number;
  /** How long it stays open before probing. Default 30 000 ms. */
  openMs?: number;
  /** Probes allowed at once in half-open. Default 1. */
  halfOpenProbes?: number;
  now?: () => number;
  onStateChange?: (from: BreakerState, to: BreakerState) => void;
}

/**
 * A circuit breaker per connector. Only failures of the target count (transient,
 * ambiguous): a business error (422) means the target is up. While open, the consumer stops
 * pulling, so the stream — not memory — holds the backlog.
 */
export function createCircuitBreaker(o: BreakerOptions = {}) {
  const threshold = o.failureThreshold ?? 5;
  const openMs = o.openMs ?? 30_000;
  const probes = o.halfOpenProbes ?? 1;
  const now = o.now ?? Date.now;
  if (!(threshold >= 1) || !(openMs >= 1) || !(probes >= 1)) throw new Error('breaker: failureThreshold, openMs and halfOpenProbes must be >= 1');
  let state: BreakerState = 'closed';
  let failures = 0;
  let openedAt: number | undefined;
  let probing = 0;
  const move = (to: BreakerState) => {
    if (to === state) return;
    const from = state;
    state = to;
    o.onStateChange?.(from, to);
  };
  const refresh = () => {
    if (state === 'open' && openedAt !== undefined && now() - openedAt >= openMs) {
      probing = 0;
      move('half-open');
    }
  };
  return {
    /** May a call go now? In half-open, each true is one probe: report its result. */
    canPass(): boolean {
      refresh();
      if (state === 'closed') return true;
      if (state === 'half-open' && probing < probes) {
        probing++;
        return true;
      }
      return false;
    },
    recordSuccess(): void {
      failures = 0;
      openedAt = undefined;
      move('closed');
    },
    recordFailure(): void {
      failures++;
      if (state === 'half-open' || failures >= threshold) {
        openedAt = now();
        move('open');
      }
    },
    /** Milliseconds until a probe may go (0 when calls may go now). */
    msUntilProbe(): number {
      refresh();
      return state === 'open' && openedAt !== undefined ? Math.max(0, openedAt + openMs - now()) : 0;
    },
    state() {
      refresh();
      return { state, consecutiveFailures: failures, openedAt, nextProbeAt: state === 'open' && openedAt !== undefined ? openedAt + openMs : undefined };
    },
  };
}
export type CircuitBreaker = ReturnType<typeof createCircuitBreaker>;
