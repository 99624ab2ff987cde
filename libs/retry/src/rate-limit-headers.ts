import { parseHttpDate } from './retry-after.js';

/** Response headers: a fetch `Headers` (or anything with get), or a plain record (any key case). */
export type HeaderSource =
  | { get(name: string): string | null }
  | Readonly<Record<string, string | readonly string[] | number | undefined>>;

/** What a target said about its quota. Each field undefined when absent or unreadable. */
export interface RateLimitInfo {
  /** Requests left in the current window (RateLimit-Remaining / X-RateLimit-Remaining), whole >= 0. */
  remaining: number | undefined;
  /** Ms from now until the window resets (RateLimit-Reset / X-RateLimit-Reset), >= 0. */
  resetMs: number | undefined;
}

/** A reset value at or above this is an epoch, not a delta: 1e9 s is ~31.7 years as a delta, 2001-09-09 as an epoch. */
const EPOCH_SECONDS_FROM = 1e9;
/** …and at or above this, epoch milliseconds (1e12 s would be the year 33658). */
const EPOCH_MS_FROM = 1e12;

/** One header's value from either kind of headers (a fetch Headers, or a record with any case of names), trimmed; the first of a repeated one. */
export function headerValue(headers: HeaderSource, name: string): string | undefined {
  let v: unknown;
  if (typeof headers.get === 'function') v = (headers as { get(n: string): string | null }).get(name);
  else {
    const record = headers as Readonly<Record<string, unknown>>;
    const key = Object.keys(record).find((k) => k.toLowerCase() === name);
    v = key === undefined ? undefined : record[key];
  }
  if (Array.isArray(v)) v = v[0];
  if (typeof v === 'number') v = String(v);
  return typeof v === 'string' ? v.trim() : undefined;
}

/** The first of the names present (the IETF draft's unprefixed name wins over the X- one). */
function first(headers: HeaderSource, names: string[]): string | undefined {
  for (const n of names) {
    const v = headerValue(headers, n);
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}

/**
 * Reads a target's quota headers. Remaining: a whole number, else undefined.
 * Reset — vendors disagree, so by size (documented heuristic):
 * - below 1e9: delta seconds (IETF draft RateLimit-Reset; decimals allowed);
 * - 1e9 up to 1e12: epoch seconds (GitHub, Twitter/X X-RateLimit-Reset);
 * - 1e12 and above: epoch milliseconds;
 * - an HTTP-date is read too. An epoch in the past gives 0. Garbage gives undefined.
 * No upper bound here: the caller caps what it honours (the rate limiter's maxBlockMs).
 * @param nowMs epoch ms. Default Date.now().
 */
export function parseRateLimitReset(headers: HeaderSource, nowMs: number = Date.now()): RateLimitInfo {
  const rem = first(headers, ['ratelimit-remaining', 'x-ratelimit-remaining']);
  const reset = first(headers, ['ratelimit-reset', 'x-ratelimit-reset']);
  return {
    remaining: rem !== undefined && /^\d+$/.test(rem) && Number.isSafeInteger(Number(rem)) ? Number(rem) : undefined,
    resetMs: reset === undefined ? undefined : resetToMs(reset, nowMs),
  };
}

function resetToMs(v: string, nowMs: number): number | undefined {
  if (/^\d+(\.\d+)?$/.test(v)) {
    const n = Number(v);
    if (!Number.isFinite(n)) return undefined;
    if (n >= EPOCH_MS_FROM) return Math.max(0, Math.ceil(n - nowMs));
    if (n >= EPOCH_SECONDS_FROM) return Math.max(0, Math.ceil(n * 1000 - nowMs));
    return Math.ceil(n * 1000);
  }
  const at = parseHttpDate(v, nowMs);
  return at === undefined ? undefined : Math.max(0, at - nowMs);
}
