export { createCircuitBreaker } from './breaker.js';
export type { BreakerOptions, BreakerSnapshot, BreakerState, CircuitBreaker } from './breaker.js';
