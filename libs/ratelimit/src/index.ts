export { createRateLimiter } from './bucket.js';
export type { RateLimiter, RateLimiterOptions } from './bucket.js';
