export { defineRetryPolicy, mergeRetryPolicy, nextDelay, MAX_RETRY_AFTER_MS } from './policy.js';
export type { ExponentialPolicy, RetryPolicy, RetryPolicyInput, SchedulePolicy } from './policy.js';
export { parseRetryAfter } from './retry-after.js';
export { decide } from './decide.js';
export type { Decision } from './decide.js';
