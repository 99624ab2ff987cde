export { createCircuitBreaker } from './breaker.js';
export type { BreakerOptions, BreakerState, CircuitBreaker } from './breaker.js';
