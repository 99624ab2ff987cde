import { setTimeout as sleep } from 'node:timers/promises';
import { BusError, classifyHttp, type FailureClass } from '@bus/errors';
import { createRateLimiter, type RateLimiter } from '@bus/ratelimit';
import { defineRetryPolicy, nextDelay, parseRetryAfter, type RetryPolicyInput } from '@bus/retry';

/**
 * A source's own API (its listing and its records), as data: where it is, how to authenticate, how fast it may be
 * called and how a failed call is retried. One client per source serves both the listing (`changes.list`, as
 * `ctx.client`) and refetch (transform), so they share auth, pace and failure classes.
 */
export interface SourceApi {
  /** Environment variable with the API's base URL; `defaultBaseUrl` when unset. */
  baseUrlEnv: string;
  defaultBaseUrl?: string;
  /** A bearer token from this environment variable (e.g. a Stripe restricted key), or none. */
  auth?: { kind: 'bearer'; env: string } | { kind: 'none' };
  /** Calls per second (token bucket; a 429 halves it and honours Retry-After). Default none. */
  rateLimit?: { ratePerSec: number; burst?: number };
  /** Retries of a transient failure (5xx, 429, unreachable) within one call. Default 3 attempts, 200 ms to 2 s. */
  retry?: RetryPolicyInput;
  /** One request's timeout. Default 10 000 ms. */
  timeoutMs?: number;
}

/** What a call answered: 404 is an answer (the record is gone), not a failure. */
export interface SourceAnswer {
  status: number;
  body: unknown;
  /** The source's own clock (the HTTP Date header), ms since epoch; undefined when it sent none. */
  dateMs?: number;
}

/** A failed call to a source's API, classified: transient (retried, gave out), business (4xx), permanent (401/403: the key). */
export class SourceApiError extends BusError {
  constructor(code: string, failureClass: FailureClass, message: string, readonly status?: number, options?: ErrorOptions) {
    super(code, failureClass, message, options);
  }
}

export interface SourceClient {
  /** GET `path` (after the base URL) with the source's auth, pace and retries. Throws SourceApiError; a 404 is returned. */
  get(path: string, opts?: { query?: Record<string, string>; signal?: AbortSignal }): Promise<SourceAnswer>;
}

/** Builds a source's one client; its settings are checked now (a missing variable names itself when the first call is made). */
export function createSourceClient(source: string, api: SourceApi, env: NodeJS.ProcessEnv, fetchFn: typeof fetch = fetch): SourceClient {
  const policy = defineRetryPolicy(api.retry ?? { maxAttempts: 3, initialDelayMs: 200, maxDelayMs: 2_000 }, `source "${source}".api.retry`);
  const limiter: RateLimiter | undefined = api.rateLimit ? createRateLimiter(api.rateLimit) : undefined;
  const timeoutMs = api.timeoutMs ?? 10_000;
  const who = `source "${source}"'s API`;

  return {
    async get(path, opts = {}) {
      const base = (env[api.baseUrlEnv] || api.defaultBaseUrl || '').replace(/\/+$/, '');
      if (!base) throw new SourceApiError('SOURCE_API_CONFIG', 'permanent', `${who}: set ${api.baseUrlEnv} (its base URL)`);
      const headers: Record<string, string> = { accept: 'application/json' };
      if (api.auth?.kind === 'bearer') {
        const key = env[api.auth.env];
        if (!key) throw new SourceApiError('SOURCE_API_CONFIG', 'permanent', `${who}: set ${api.auth.env} (its API key)`);
        headers.authorization = `Bearer ${key}`;
      }
      const url = `${base}${path}${opts.query ? `?${new URLSearchParams(opts.query)}` : ''}`;
      for (let attempt = 1; ; attempt++) {
        await limiter?.take(opts.signal);
        let failure: { cls: FailureClass; status?: number; detail: string; retryAfterMs?: number };
        try {
          const res = await fetchFn(url, { headers, signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(opts.signal ? [opts.signal] : [])]) });
          const dateMs = res.headers.get('date') ? Date.parse(res.headers.get('date')!) : undefined;
          if (res.ok || res.status === 404) {
            limiter?.recordSuccess();
            const text = await res.text();
            let body: unknown = text;
            try {
              body = text ? JSON.parse(text) : undefined;
            } catch {
              if (res.ok) throw new SourceApiError('SOURCE_API_MALFORMED', 'permanent', `${who} answered ${res.status} with a body that is not JSON at ${path}`);
            }
            return { status: res.status, body, ...(Number.isFinite(dateMs) ? { dateMs } : {}) };
          }
          const said = (await res.text().catch(() => '')).slice(0, 200);
          if (res.status === 429) limiter?.penalize(parseRetryAfter(res.headers.get('retry-after') ?? undefined));
          failure = { cls: classifyHttp(res.status, true), status: res.status, detail: `${res.status}${said ? ` "${said}"` : ''}`,
            retryAfterMs: parseRetryAfter(res.headers.get('retry-after') ?? undefined) };
          // a GET changes nothing at the source: a 5xx or a timeout is simply tried again
          if (failure.cls === 'ambiguous') failure.cls = 'transient';
        } catch (err) {
          if (err instanceof SourceApiError) throw err;
          if (opts.signal?.aborted) throw err;
          failure = { cls: 'transient', detail: `no answer (${(err as Error).message})` };
        }
        if (failure.cls !== 'transient' || attempt >= policy.maxAttempts) {
          const what = failure.status === 401 || failure.status === 403 ? `; check ${api.auth?.kind === 'bearer' ? api.auth.env : 'its credentials'} (a restricted key needs read access)` : '';
          throw new SourceApiError(`SOURCE_API_${failure.status ?? 'UNREACHABLE'}`, failure.cls,
            `${who} answered ${failure.detail} for GET ${path}${failure.cls === 'transient' ? ` after ${attempt} attempts` : ''}${what}`, failure.status);
        }
        await sleep(nextDelay(policy, attempt, { retryAfterMs: failure.retryAfterMs }) ?? 0, undefined, { signal: opts.signal });
      }
    },
  };
}
