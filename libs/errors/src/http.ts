import type { FailureClass } from './failure.js';

/**
 * Classifies one HTTP attempt. `status` is undefined when no answer came; then it
 * matters whether the request left us: if it did, the target may have applied it.
 */
export function classifyHttp(status: number | undefined, requestSent: boolean): FailureClass {
  if (status === undefined) return requestSent ? 'ambiguous' : 'transient';
  if (status === 408 || status === 425 || status === 429 || status >= 500) return 'transient';
  if (status === 401 || status === 403) return 'permanent'; // only after a token refresh failed
  if (status >= 400) return 'business';
  return 'transient'; // 1xx/3xx where a 2xx was expected: the target is misbehaving, try again
}
