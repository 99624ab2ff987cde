export { createRateLimiter } from './bucket.js';
export type { RateLimiter, RateLimiterState, TakeResult } from './bucket.js';
export type { RateLimiterOptions, SetTimer } from './options.js';
